"""Shared test helpers: build demo sources, grow a live source, snapshot the outputs."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck

from pipeline.config import EtlConfig
from pipeline.demo import generate_demo
from pipeline.run import RunSummary, run

# Health checks the hostile-log property tests switch off: each example builds a real
# SQLite log in a per-test temporary folder and runs the ETL on it (slow by design), and
# the strategies draw megabyte strings and 5000-deep nesting on purpose.
HOSTILE_INPUT_CHECKS = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.large_base_example,
    HealthCheck.data_too_large,
]

REPO = Path(__file__).resolve().parent.parent
PRODUCER_SCHEMA = (REPO / "queries" / "producer_schema.sql").read_text(encoding="utf-8")


def run_python(
    code: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a new Python process from the repository (sys.argv[1:] = args), for
    what only a process shows: its imports, its threads, how it exits."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
        check=False,
    )


# Output tables compared between runs, without their surrogate ids.
COMPARED: dict[str, str] = {
    "tool_executions": "interaction_request_id",
    "errors": "error_key",
    "etl_rejects": "source_table, source_id",
    "etl_requests": "interaction_id",
    "etl_client_map": "session_id",
    "performance_metrics": "metric_name, timestamp, tool_name",
    "client_sessions": "session_id",
    "session_lifecycle": "entity_type, session_id, timestamp, to_state, from_state",
    "etl_session_activity": "session_id",
    "etl_repl_events": "event_id",
    "etl_stateless_clients": "session_id",
}
# Rows that describe a run rather than the source are left out of comparisons.
COMPARED_WHERE: dict[str, str] = {"performance_metrics": "metric_type <> 'etl'"}


def make_demo(
    tmp: Path, calls: int, seed: int, consistent: bool = False
) -> tuple[Path, dict[str, Any]]:
    source = tmp / f"demo-{seed}-{calls}-{int(consistent)}.db"
    truth = tmp / f"{source.name}.truth.json"
    generate_demo(source, calls=calls, seed=seed, truth=truth, consistent_sessions=consistent)
    return source, json.loads(truth.read_text())


def etl(source: Path, target: Path | None = None, full: bool = False, **kw: Any) -> RunSummary:
    return run(EtlConfig(source=source, target=target or source, full=full, quiet=True, **kw))


def table_rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    """Every row of a table without its surrogate id, in a deterministic order."""
    conn = sqlite3.connect(db)
    try:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "id"]
        order = COMPARED.get(table, ", ".join(cols))
        where = COMPARED_WHERE.get(table, "true")
        select = f"SELECT {', '.join(cols)} FROM {table} WHERE {where} ORDER BY {order}"  # noqa: S608
        return conn.execute(select).fetchall()
    finally:
        conn.close()


def outputs(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {table: table_rows(db, table) for table in COMPARED}


def new_live_source(path: Path) -> None:
    """An empty producer database, as the proxy creates it."""
    conn = sqlite3.connect(path)
    conn.executescript(PRODUCER_SCHEMA)
    conn.close()


def shift_ts(ts: str, ms: int) -> str:
    moved = datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%f") + timedelta(milliseconds=ms)
    return moved.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def copy_until(full: Path, live: Path, cut_ts: str, events_lag_ms: int = 0) -> None:
    """Append to `live` the rows of `full` logged up to cut_ts that it lacks (same ids).

    events_lag_ms leaves the newest events out, as when a snapshot is read between an
    interaction row and the request.received event the producer logs just after it.
    """
    conn = sqlite3.connect(live)
    conn.execute("ATTACH DATABASE ? AS full_db", (str(full),))
    with conn:
        for table, cut in (
            ("events", shift_ts(cut_ts, -events_lag_ms)),
            ("interactions", cut_ts),
        ):
            conn.execute(
                f"INSERT INTO main.{table} SELECT * FROM full_db.{table} "  # noqa: S608
                f"WHERE timestamp <= ? AND id > (SELECT COALESCE(MAX(id), 0) FROM main.{table})",
                (cut,),
            )
        conn.execute("INSERT OR IGNORE INTO main.sessions SELECT * FROM full_db.sessions")
    conn.execute("DETACH DATABASE full_db")
    conn.close()
