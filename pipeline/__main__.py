"""`python -m pipeline` runs the same command line as `mcp-analytics`."""

from pipeline.cli import console_main

console_main()
