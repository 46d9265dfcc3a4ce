"""A live source and killed runs (issue 6).

A producer process writes like the proxy (one row per transaction, 1 s busy timeout,
a failed insert is a lost row) while incremental runs go back to back on the same file;
runs are killed with SIGKILL at spread-out moments. Real processes, real SQLite locks.
"""

from __future__ import annotations

import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.helpers import etl, make_demo, new_live_source, outputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROWS_PER_SECOND = 600


def _log_rows(full: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(full)
    rows = conn.execute(
        "SELECT 'interactions', id, timestamp, session_id, direction, message_type, "
        "request_id, method, content, content_size FROM interactions "
        "UNION ALL SELECT 'events', id, timestamp, session_id, event_type, data, "
        "duration_ms, NULL, NULL, NULL FROM events ORDER BY 3, 1 DESC, 2"
    ).fetchall()
    conn.close()
    return rows


def produce(full: Path, live: Path, report: Any) -> None:
    """Replay a demo log into `live` at ROWS_PER_SECOND, as the proxy logs.

    Runs in its own process: SQLite's locks are per process, so a producer thread in
    the test's process would not be locked out by the ETL at all.
    """
    rows = _log_rows(full)
    conn = sqlite3.connect(live, timeout=1.0, isolation_level=None)
    failed = written = 0
    longest = 0.0
    started = time.perf_counter()
    for n, row in enumerate(rows):
        due = started + n / ROWS_PER_SECOND
        if (delay := due - time.perf_counter()) > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        try:
            if row[0] == "interactions":
                conn.execute(
                    "INSERT INTO interactions (id, timestamp, session_id, direction, "
                    "message_type, request_id, method, content, content_size) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row[1:],
                )
            else:
                conn.execute(
                    "INSERT INTO events (id, timestamp, session_id, event_type, data, "
                    "duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
                    row[1:7],
                )
            written += 1
        except sqlite3.OperationalError:
            failed += 1  # the proxy drops the row, as it does
        longest = max(longest, time.perf_counter() - t0)
    conn.close()
    report.put((written, failed, longest))


@pytest.mark.slow
def test_runs_beside_a_live_producer_lose_nothing(tmp_path: Path) -> None:
    full, truth = make_demo(tmp_path, calls=2500, seed=41)
    live = tmp_path / "events.db"
    new_live_source(live)
    ctx = multiprocessing.get_context("spawn")
    report = ctx.Queue()
    producer = ctx.Process(target=produce, args=(full, live, report))
    producer.start()
    runs, locks = 0, []
    while producer.is_alive():
        summary = etl(live, busy_timeout_ms=1000)
        runs += 1
        locks.append(summary.timings.get("write_lock", 0.0))
    producer.join()
    written, failed, longest = report.get(timeout=10)
    etl(live)
    assert failed == 0, f"{failed} producer inserts failed"
    assert written == len(_log_rows(full))
    assert runs >= 5
    conn = sqlite3.connect(live)
    counts = conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT interaction_request_id) FROM tool_executions"
    ).fetchone()
    conn.close()
    assert counts == (len(truth["executions"]), len(truth["executions"]))
    reference = tmp_path / "reference.db"
    etl(full, target=reference)
    assert outputs(live) == outputs(reference)
    print(
        f"\n{runs} runs beside the producer; longest write lock {max(locks) * 1000:.0f} ms; "
        f"longest producer insert {longest * 1000:.0f} ms"
    )


def _killed_run(live: Path, target: Path, parquet: Path, delay: float) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "etl",
            str(live),
            "--target",
            str(target),
            "--parquet",
            str(parquet),
            "--quiet",
        ],
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_sigkill_at_any_moment_then_one_run_equals_a_clean_full_run(tmp_path: Path) -> None:
    full, _ = make_demo(tmp_path, calls=2500, seed=43)
    target, parquet = tmp_path / "analytics.db", tmp_path / "parquet"
    # How long a run takes here, to spread the kills over scan, transform, write, export.
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "etl",
            str(full),
            "--target",
            str(tmp_path / "t.db"),
            "--parquet",
            str(tmp_path / "p"),
            "--quiet",
        ],
        check=True,
    )
    duration = time.perf_counter() - started
    reference = outputs(tmp_path / "t.db")
    for fraction in (0.15, 0.3, 0.45, 0.6, 0.75, 0.9):
        _killed_run(full, target, parquet, duration * fraction)
        if target.exists():
            conn = sqlite3.connect(target)
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            has_schema = conn.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'etl_session_activity'"
            ).fetchone()[0]
            conn.close()
            # Either the run committed whole or nothing of it is visible.
            if has_schema:
                state = outputs(target)
                assert state == reference or not any(state.values())
        for part in parquet.glob("**/*.parquet"):
            # Readers skip hidden folders (the export's .staging-*); every visible file
            # must be whole.
            if not any(piece.startswith(".") for piece in part.relative_to(parquet).parts):
                pq.read_table(part)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "etl",
            str(full),
            "--target",
            str(target),
            "--parquet",
            str(parquet),
            "--quiet",
        ],
        check=False,
    )
    assert result.returncode == 0
    assert outputs(target) == reference
    conn = sqlite3.connect(target)
    for table in ("tool_executions", "errors", "performance_metrics", "session_lifecycle"):
        rows = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
        files = sum(
            pq.read_metadata(p).num_rows for p in (parquet / table).glob("date=*/*.parquet")
        )
        assert files == rows, table
    conn.close()
    assert not list(tmp_path.glob(".mcp-analytics-*"))
