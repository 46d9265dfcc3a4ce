"""mcp-analytics: a typed star schema from the Kaimon / MCPRepl.jl proxy log."""

__version__ = "0.1.0"
