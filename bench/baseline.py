"""The pure-SQLite baseline (bench/baseline.sql), the bare read, and their comparison.

Run as a child process by the harness so that each is measured alone:

    python -m bench.baseline script SOURCE TARGET   # the JSON1 script into a new TARGET
    python -m bench.baseline bare-read SOURCE       # read every content and data byte once

Both use Python's sqlite3 module, i.e. the same SQLite library as the sqlite3 shell of
the machine; nothing but SQL runs in between.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BASELINE_SQL",
    "Agreement",
    "agreement",
    "bare_read",
    "readonly_uri",
    "run_baseline",
]

BASELINE_SQL = Path(__file__).resolve().parent / "baseline.sql"


def readonly_uri(path: Path) -> str:
    """The read-only URI of a database file (percent-encoded, so any path works)."""
    return path.resolve().as_uri() + "?mode=ro"


def run_baseline(source: Path, target: Path) -> None:
    """Build the baseline's tables in a new `target` from `source`, attached read-only."""
    if target.exists():
        msg = f"refusing to overwrite existing file: {target}"
        raise FileExistsError(msg)
    con = sqlite3.connect(target, uri=True, isolation_level=None)
    try:
        con.execute("ATTACH DATABASE ? AS src", (readonly_uri(source),))
        con.executescript(BASELINE_SQL.read_text(encoding="utf-8"))
    finally:
        con.close()


def bare_read(source: Path) -> tuple[int, int]:
    """Read every interaction's content and every event's data once: (rows, bytes).

    CAST AS BLOB makes length() count bytes, and SQLite must load each value to do it
    (it only skips loading for length() of a column that is itself a blob).
    """
    con = sqlite3.connect(readonly_uri(source), uri=True)
    try:
        rows, size = con.execute(
            "SELECT count(*), coalesce(sum(length(CAST(content AS BLOB))), 0) FROM interactions"
        ).fetchone()
        ev_rows, ev_size = con.execute(
            "SELECT count(*), coalesce(sum(length(CAST(data AS BLOB))), 0) FROM events"
        ).fetchone()
    finally:
        con.close()
    return int(rows) + int(ev_rows), int(size) + int(ev_size)


@dataclass(frozen=True)
class Agreement:
    """How far the baseline's tool_executions agree with the ETL's, call by call."""

    etl_calls: int
    baseline_calls: int
    common_calls: int
    same_response: int
    same_status: int
    same_duration: int

    @property
    def response_rate(self) -> float:
        """Share of the ETL's calls the baseline paired with the same response (or none)."""
        return self.same_response / self.etl_calls if self.etl_calls else 1.0

    @property
    def status_rate(self) -> float:
        """Share of the ETL's calls with the same status in the baseline."""
        return self.same_status / self.etl_calls if self.etl_calls else 1.0


def agreement(etl_target: Path, baseline_target: Path) -> Agreement:
    """Compare the two tool_executions tables on the request row."""
    con = sqlite3.connect(readonly_uri(baseline_target), uri=True)
    try:
        con.execute("ATTACH DATABASE ? AS etl", (readonly_uri(etl_target),))
        row = con.execute(
            "SELECT (SELECT count(*) FROM etl.tool_executions),"
            " (SELECT count(*) FROM main.tool_executions),"
            " count(*),"
            " coalesce(sum(b.interaction_response_id IS e.interaction_response_id), 0),"
            " coalesce(sum(b.status = e.status), 0),"
            " coalesce(sum(b.duration_ms IS e.duration_ms), 0)"
            " FROM etl.tool_executions AS e"
            " JOIN main.tool_executions AS b USING (interaction_request_id)"
        ).fetchone()
    finally:
        con.close()
    return Agreement(*(int(v) for v in row))


def main(argv: list[str]) -> int:
    """Entry point of the child processes (see the module docstring)."""
    if len(argv) == 3 and argv[0] == "script":
        run_baseline(Path(argv[1]), Path(argv[2]))
        return 0
    if len(argv) == 2 and argv[0] == "bare-read":
        rows, size = bare_read(Path(argv[1]))
        print(f"{rows} {size}")
        return 0
    print(
        "usage: python -m bench.baseline script SOURCE TARGET | bare-read SOURCE",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
