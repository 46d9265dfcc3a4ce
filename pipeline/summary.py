"""The short summary `etl` prints: what ran, top tools, clients, rejects."""

from __future__ import annotations

import sqlite3

from rich.console import Console
from rich.table import Table

from pipeline.config import EtlConfig
from pipeline.queries import sql
from pipeline.run import RunSummary


def print_summary(config: EtlConfig, summary: RunSummary) -> None:
    console = Console()
    rejected = sum(summary.rejects.values())
    console.print(
        f"[bold]{summary.mode} run[/] of {config.source} → {config.target} in "
        f"{summary.seconds:.2f} s: {summary.interactions_read} interactions and "
        f"{summary.events_read} events read, {summary.executions_new} executions, "
        f"{summary.responses_paired} responses paired, {summary.errors_new} errors, "
        f"{rejected} rows rejected"
    )
    if not config.redact:
        console.print(
            "[bold red]redaction is off[/]: arguments, results and error texts were written "
            "as logged, secrets included"
        )
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in summary.timings.items())
    console.print(f"stages: {stages}", highlight=False)
    conn = sqlite3.connect(f"{config.target.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tools = conn.execute(sql("summary_top_tools")).fetchall()
        rejects = conn.execute(sql("summary_rejects")).fetchall()
        clients = conn.execute(sql("summary_clients")).fetchall()
    finally:
        conn.close()
    table = Table(title="Top tools (all time)")
    for name in ("tool", "calls", "errors", "error rate %", "median ms", "timeouts", "pending"):
        table.add_column(name, justify="left" if name == "tool" else "right")
    for row in tools:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    if clients:
        cli = Table(title="Client sessions")
        for name in ("client", "version", "protocol", "sessions", "active", "requests", "errors"):
            cli.add_column(
                name, justify="left" if name in ("client", "version", "protocol") else "right"
            )
        for row in clients:
            cli.add_row(*(str(v) for v in row))
        console.print(cli)
    if rejects:
        rej = Table(title="Rejected source rows (etl_rejects)")
        rej.add_column("table")
        rej.add_column("reason")
        rej.add_column("rows", justify="right")
        for row in rejects:
            rej.add_row(*(str(v) for v in row))
        console.print(rej)
