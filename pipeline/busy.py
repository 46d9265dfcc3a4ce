"""Waiting for a live database's lock, politely and persistently.

The proxy commits one row at a time, hundreds per second, each commit locking the file
for a moment. SQLite's own busy handler sleeps longer and longer between attempts
(up to 100 ms), so at that rate a reader keeps waking up while the file is locked and
gives up although the lock was free most of the time. Retrying every fraction of a
millisecond finds the gaps between the producer's commits; the deadline is still the
user's --busy-timeout.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

T = TypeVar("T")

# SQLite's own wait inside one attempt; our loop does the rest.
ATTEMPT_TIMEOUT_S = 0.002


def is_busy(exc: BaseException) -> bool:
    """A lock held by another connection, as SQLite or DuckDB's sqlite scanner word it."""
    if not isinstance(exc, sqlite3.OperationalError | duckdb.Error):
        return False
    text = str(exc).lower()
    # "locking protocol" (SQLITE_PROTOCOL): a WAL-index race under heavy writing; SQLite
    # documents it as transient.
    return "locked" in text or "busy" in text or "locking protocol" in text


def retry_when_busy(action: Callable[[], T], timeout_ms: int) -> T:
    """Run action until it does not fail on a lock, or until timeout_ms have passed."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            return action()
        except (sqlite3.OperationalError, duckdb.Error) as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        # A short random pause: the producer's commits take about a millisecond.
        time.sleep(random.uniform(0.0002, 0.001))
