"""The source: a DuckDB connection that attaches the producer's SQLite log read-only.

The connection, with the sqlite extension loaded from the pinned wheel, comes from
pipeline/engine.py, which may have made it ahead of time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl

from pipeline.busy import ATTEMPT_TIMEOUT_S, is_busy, retry_when_busy
from pipeline.engine import prepared_connection
from pipeline.errors import NotKaimonDatabase, SourceMissing, SourceUnreadable
from pipeline.queries import quote_sql_string, sql

T = TypeVar("T")

# What the producer creates (SPEC §1). `interactions` is optional: older logs lack it.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "sessions": ("session_id", "start_time", "last_activity", "status", "metadata"),
    "events": ("id", "session_id", "event_type", "timestamp", "duration_ms", "data"),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "interactions": (
        "id",
        "session_id",
        "timestamp",
        "direction",
        "message_type",
        "request_id",
        "method",
        "content",
        "content_size",
    ),
}
SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class SourceInfo:
    """What validation learned about the source."""

    path: Path
    has_interactions: bool
    # The producer's index of events by type, usable for ranges of types
    # (queries/source_events.sql); older or hand-made logs may lack it.
    events_type_index: bool = False


def validate_source(path: Path, busy_timeout_ms: int) -> SourceInfo:
    """Check the file is a readable Kaimon log; raise a BadInvocation naming what is wrong."""
    if not path.exists():
        msg = f"source database {path} does not exist; give the path of the proxy's events.db"
        raise SourceMissing(msg)
    if path.is_dir():
        msg = f"source {path} is a directory; give the path of the proxy's events.db file"
        raise SourceMissing(msg)
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        msg = f"cannot read source {path}: {exc.strerror}; check its permissions"
        raise SourceUnreadable(msg) from exc
    if header != SQLITE_MAGIC:
        msg = f"source {path} is not a SQLite database; give the proxy's events.db"
        raise NotKaimonDatabase(msg)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=ATTEMPT_TIMEOUT_S)
        try:
            columns = retry_when_busy(lambda: _table_columns(conn), busy_timeout_ms)
            type_index = retry_when_busy(lambda: _has_events_type_index(conn), busy_timeout_ms)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        reason = str(exc)
        if "locked" in reason or "busy" in reason:
            msg = (
                f"source {path} stayed locked for {busy_timeout_ms} ms; "
                "retry when the writer is done or raise --busy-timeout"
            )
        else:
            msg = f"cannot read source {path}: {reason}"
        raise SourceUnreadable(msg) from exc
    for table, needed in REQUIRED_COLUMNS.items():
        _require(path, table, columns.get(table), needed)
    has_interactions = "interactions" in columns
    if has_interactions:
        _require(path, "interactions", columns["interactions"], OPTIONAL_COLUMNS["interactions"])
    return SourceInfo(path=path, has_interactions=has_interactions, events_type_index=type_index)


def _table_columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {
        t: {r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (t,))} for t in tables
    }


EVENTS_TYPE_INDEX = "idx_events_type"


def _has_events_type_index(conn: sqlite3.Connection) -> bool:
    """Whether events has the producer's idx_events_type: a full (not partial) index whose
    first column is event_type in BINARY order, which SQLite can use for the ranges of
    queries/source_events.sql (INDEXED BY fails on any other)."""
    partial = conn.execute(
        "SELECT partial FROM pragma_index_list('events') WHERE name = ?", (EVENTS_TYPE_INDEX,)
    ).fetchone()
    if partial is None or partial[0]:
        return False
    first = conn.execute(
        "SELECT name, coll FROM pragma_index_xinfo(?) WHERE key ORDER BY seqno LIMIT 1",
        (EVENTS_TYPE_INDEX,),
    ).fetchone()
    return first is not None and first[0] == "event_type" and str(first[1]).upper() == "BINARY"


def _require(path: Path, table: str, have: set[str] | None, needed: tuple[str, ...]) -> None:
    if have is None:
        msg = f"source {path} is not a Kaimon database: table '{table}' is missing"
        raise NotKaimonDatabase(msg)
    missing = [c for c in needed if c not in have]
    if missing:
        msg = f"source {path} is not a Kaimon database: table '{table}' lacks column '{missing[0]}'"
        raise NotKaimonDatabase(msg)


def connect_source(info: SourceInfo) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the source attached read-only as `src`.

    On a live source every read must wait out the producer's brief write locks: use
    read_frame() / read_one(), which retry until the user's busy timeout.
    """
    conn = prepared_connection()
    # A JSON text as json_extract_string(x, '$') gives it (strings unquoted, anything
    # else as is), without a parse when the string has no escapes (the usual case).
    conn.execute(
        "CREATE MACRO unquoted(x) AS CASE WHEN NOT starts_with(x, '\"') THEN x "
        "WHEN contains(x, '\\') THEN json_extract_string(x, '$') ELSE x[2:-2] END"
    )
    conn.execute(
        f"ATTACH {quote_sql_string(str(info.path.resolve()))} AS src "
        # SQLite's own wait per attempt stays short; read_frame() retries in finer steps.
        f"(TYPE sqlite, READ_ONLY, BUSY_TIMEOUT {max(1, int(ATTEMPT_TIMEOUT_S * 1000))})"
    )
    return conn


@dataclass(frozen=True)
class SourceBounds:
    """The snapshot a run reads: ids up to these maxima, and the newest timestamp."""

    interactions_max_id: int
    events_max_id: int
    newest_ts: str | None
    newest_event_ts: str | None


def read_bounds(
    conn: duckdb.DuckDBPyConnection, info: SourceInfo, busy_timeout_ms: int = 5_000
) -> SourceBounds:
    ev = read_one(conn, sql("source_bounds_events"), {}, info, busy_timeout_ms)
    it = (
        read_one(conn, sql("source_bounds_interactions"), {}, info, busy_timeout_ms)
        if info.has_interactions
        else None
    )
    ev_id, ev_ts = _bound(ev)
    it_id, it_ts = _bound(it)
    newest = max((t for t in (ev_ts, it_ts) if t is not None), default=None)
    return SourceBounds(it_id, ev_id, newest, ev_ts)


def _bound(row: tuple[Any, ...] | None) -> tuple[int, str | None]:
    """(highest id, newest valid timestamp) of a bounds row; (0, None) for no rows."""
    if row is None or row[0] is None:
        return 0, None
    return int(row[0]), None if row[1] is None else str(row[1])


def _locked(info: SourceInfo, busy_timeout_ms: int) -> SourceUnreadable:
    return SourceUnreadable(
        f"source {info.path} stayed locked for {busy_timeout_ms} ms; "
        "retry when the writer is done or raise --busy-timeout"
    )


def _waiting(action: Callable[[], T], info: SourceInfo, busy_timeout_ms: int) -> T:
    """Run a read of the source, retried while the producer holds its lock."""
    try:
        return retry_when_busy(action, busy_timeout_ms)
    except duckdb.Error as exc:
        if is_busy(exc):
            raise _locked(info, busy_timeout_ms) from exc
        raise


def read_frame(
    conn: duckdb.DuckDBPyConnection,
    query: str,
    params: dict[str, object],
    info: SourceInfo,
    busy_timeout_ms: int,
) -> pl.DataFrame:
    """Run a source query to a Polars frame, waiting out the producer's locks."""
    return _waiting(lambda: conn.execute(query, params).pl(), info, busy_timeout_ms)


def read_one(
    conn: duckdb.DuckDBPyConnection,
    query: str,
    params: dict[str, object],
    info: SourceInfo,
    busy_timeout_ms: int,
) -> tuple[Any, ...] | None:
    """Run a source query for its first row, waiting out the producer's locks."""
    return _waiting(lambda: conn.execute(query, params).fetchone(), info, busy_timeout_ms)


@dataclass(frozen=True)
class SourceReader:
    """The run's reads of the source, each retried while the producer holds its lock."""

    conn: duckdb.DuckDBPyConnection
    info: SourceInfo
    busy_timeout_ms: int

    def frame(self, name: str, params: dict[str, object] | None = None) -> pl.DataFrame:
        """The rows of queries/<name>.sql as a Polars frame."""
        return read_frame(self.conn, sql(name), params or {}, self.info, self.busy_timeout_ms)

    def interactions(self, lo: int, hi: int) -> pl.DataFrame:
        """Interactions with lo < id <= hi, decoded, in id order."""
        # DuckDB may return the rows of a parallel plan in any order. With one thread
        # they come in id order, and sorting them anyway copied every column of the
        # batch (0.19 s of the reader thread per million rows).
        frame = self.frame("source_interactions", {"lo": lo, "hi": hi})
        if frame["interaction_id"].is_sorted():
            return frame
        return frame.sort("interaction_id")

    def events(self, lo: int, hi: int) -> pl.DataFrame:
        """Events other than the per-request ones with lo < id <= hi
        (queries/source_events.sql), without its INDEXED BY when the source lacks the
        index (SQLite then reads the id range in row order)."""
        query = sql("source_events")
        if not self.info.events_type_index:
            query = query.replace(f" INDEXED BY {EVENTS_TYPE_INDEX}", "")
        return read_frame(self.conn, query, {"lo": lo, "hi": hi}, self.info, self.busy_timeout_ms)

    def cursor(self) -> SourceReader:
        """A reader on its own DuckDB connection (same database), for another thread."""
        return SourceReader(self.conn.cursor(), self.info, self.busy_timeout_ms)
