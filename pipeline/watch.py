"""`etl --watch`: an incremental run every S seconds until SIGINT or SIGTERM.

The design document's scheduler, as a loop around pipeline.run.run (and the Parquet
export when asked). A run writes everything in one SQLite transaction, so a cycle is
all or nothing:

- a failing cycle is logged as one line on stderr and retried after an exponential
  backoff (interval × 2^failures, at most MAX_BACKOFF_S or the interval if longer); the
  first successful cycle resets it;
- the first SIGINT or SIGTERM lets the cycle in progress finish (commit) and then stops;
  while waiting between cycles it stops at once. A second signal abandons the cycle in
  progress: its transaction is rolled back and the tables stay as the last finished
  cycle left them. Either way the exit code is 0.
- a bad invocation found by the first cycle (the source is missing, not a Kaimon
  database) stops with exit 2 as `etl` does; later, the same errors (a source locked
  past the busy timeout, a file being replaced) are retried like any failure.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

import duckdb

from pipeline import engine
from pipeline.config import EtlConfig
from pipeline.errors import BadInvocation, PipelineError

# The longest wait between two tries after failures (unless the interval is longer).
MAX_BACKOFF_S = 300.0
# What a failing cycle may raise and still be retried: the project's errors and the
# environment's (a locked or vanished file, a full disk). Anything else is a bug and
# keeps its traceback.
RETRIED = (PipelineError, sqlite3.Error, duckdb.Error, OSError)


class _Abandon(BaseException):
    """Raised by the second signal inside a cycle; unwinds the run (rollback)."""


@dataclass
class WatchSummary:
    """What a watch did, for its last line and the tests."""

    cycles: int = 0
    failed: int = 0
    abandoned: bool = False


def backoff_s(interval_s: float, failures: int) -> float:
    """Seconds to wait after `failures` consecutive failed cycles (0: the interval)."""
    cap = max(MAX_BACKOFF_S, interval_s)
    return float(min(interval_s * 2.0**failures, cap))


@contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise _Abandon
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def watch(
    config: EtlConfig,
    interval_s: float,
    parquet: Path | None = None,
    echo: Callable[[str], None] = print,
    log: Callable[[str], None] = print,
) -> WatchSummary:
    """Run the ETL every interval_s seconds until a signal; echo a line per cycle, log
    failures (one line each)."""
    from pipeline.parquet import export_parquet
    from pipeline.run import run

    summary = WatchSummary()
    stop = threading.Event()
    failures = 0
    with _signals(stop):
        try:
            while not stop.is_set():
                summary.cycles += 1
                started = time.perf_counter()
                # --full rebuilds once; every later cycle continues from the watermarks.
                # Only the first cycle, the long one, draws progress bars.
                first = summary.cycles == 1
                cycle_config = replace(
                    config, full=config.full and first, quiet=config.quiet or not first
                )
                try:
                    result = run(cycle_config)
                    line = (
                        f"cycle {summary.cycles}: {result.mode} run, "
                        f"{result.interactions_read} interactions and {result.events_read} "
                        f"events read, {result.executions_new} executions, "
                        f"{result.responses_paired} responses paired, {result.errors_new} errors"
                    )
                    if parquet is not None:
                        exported = export_parquet(config.target, parquet)
                        line += f"; parquet {exported.mode}, {exported.partitions_written} files"
                    echo(f"{line} ({time.perf_counter() - started:.2f} s)")
                    failures = 0
                except RETRIED as exc:
                    if isinstance(exc, BadInvocation) and summary.cycles == 1:
                        raise
                    failures += 1
                    summary.failed += 1
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    log(
                        f"etl --watch: cycle {summary.cycles} failed: {reason}; "
                        f"retrying in {backoff_s(interval_s, failures):g} s"
                    )
                if not stop.is_set():
                    # The next cycle's DuckDB connection loads its extension meanwhile.
                    engine.prepare()
                stop.wait(backoff_s(interval_s, failures))
        except _Abandon:
            summary.abandoned = True
    return summary


__all__ = ["MAX_BACKOFF_S", "WatchSummary", "backoff_s", "watch"]
