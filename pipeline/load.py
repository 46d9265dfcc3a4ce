"""Write the analytics: stage each batch on disk, then apply it in one short transaction.

Batches are written to a staging SQLite file beside the target, so memory does not grow
with the run and the target is locked only for the final copy (the target is often the
live source itself, whose producer drops rows when it cannot get the write lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.busy import ATTEMPT_TIMEOUT_S, is_busy, retry_when_busy
from pipeline.errors import TargetError
from pipeline.queries import quote_sql_string, sql
from pipeline.transform.redact import redact_frame

# The tool_executions columns a call takes from its response: staged with a new call,
# or apart (execution_responses) for a call an earlier run inserted.
RESPONSE_COLUMNS = (
    "interaction_response_id",
    "response_time",
    "duration_ms",
    "output_size",
    "result_type",
    "result_summary",
    "error_code",
    "has_structured_content",
    "status",
    "answered_by",
)

# The page size of the files the ETL creates (a new target, the staging file). Its
# rows are wide and a full run writes and sorts every one of them: 16 KiB pages made
# the 1M full run about 1 s faster than SQLite's default 4 KiB (a quarter of the read
# and write calls, and of the index builds' sorter I/O; docs/performance.md).
PAGE_SIZE = 16384

# The indexes of tool_executions on its request and response rows (queries/schema.sql):
# a rebuild builds them before load_calls.sql, whose joins and scan of the unanswered
# calls use them (and whose updates change neither).
CALL_ROW_INDEXES = ("idx_tool_executions_request_row", "idx_tool_executions_response_row")
# Tables whose secondary indexes a full rebuild drops and builds after filling them:
# one sort per index instead of a B-tree update per row and index. The errors insert,
# updating its eight indexes row by row, took 2.9 s at 5M interactions (0.4 s at 1M):
# the time per row grows once the indexes outgrow SQLite's page cache.
REINDEXED_TABLES = ("tool_executions", "etl_requests", "errors")
# SQLite's page cache (KiB) for an incremental run's load. Its inserts update the
# indexes row by row, and two of the eleven on tool_executions (duration, JSON id) take
# keys all over the index: with the default 2 MB a page is read again for nearly every
# row. 16 MB made the load of a +1% run 0.26 s to 0.20 s at 1M interactions and 1.35 s
# to 1.04 s at 5M. At 5M those two indexes alone outgrow 16 MB, and the insert spilled
# dirty pages (with a journal sync) before the commit: 64 MB took the load from
# 0.79-0.86 s to 0.66-0.74 s (four alternating pairs), at no measurable peak RSS;
# 256 MB made the commit longer instead. A full rebuild keeps the default: its index
# builds got slower with more cache (docs/performance.md).
INCREMENTAL_CACHE_KIB = 65536

# The staged calls' columns (answered ones in `executions`, unanswered in
# `executions_open`): tool_executions' own, id included (staged_calls_tables).
STAGED_CALL_COLUMNS = (
    "id",
    "session_id",
    "request_id",
    "tool_name",
    "tool_method",
    "request_time",
    "input_size",
    "argument_count",
    "arguments",
    "interaction_request_id",
    "source_session_id",
    "client_name",
    "request_id_type",
    "request_id_json",
    "route",
    "is_proxy_tool",
    "request_date",
    *RESPONSE_COLUMNS,
    "interaction_cancel_id",
    "cancel_time",
    "cancel_reason",
)

# Staged tables and their columns, in the order the frames are written.
STAGED: dict[str, tuple[str, ...]] = {
    "client_map": (
        "session_id",
        "client_name",
        "target_repl",
        "capabilities",
        "initialized_at",
        "event_id",
    ),
    "executions": STAGED_CALL_COLUMNS,
    "executions_open": STAGED_CALL_COLUMNS,
    "requests": (
        "interaction_id",
        "id_json",
        "method",
        "session_id",
        "source_session_id",
        "client_name",
        "route",
        "request_time",
        "input_size",
        "params",
    ),
    "execution_responses": ("interaction_request_id", *RESPONSE_COLUMNS),
    "request_responses": (
        "interaction_request_id",
        "interaction_response_id",
        "response_time",
        "output_size",
        "response_is_error",
    ),
    "execution_cancels": (
        "interaction_request_id",
        "interaction_cancel_id",
        "cancel_time",
        "cancel_reason",
    ),
    "errors": (
        "session_id",
        "timestamp",
        "error_type",
        "error_code",
        "error_category",
        "tool_name",
        "method",
        "request_id",
        "message",
        "stack_trace",
        "client_info",
        "input_that_caused_error",
        "interaction_id",
        "event_id",
        "error_key",
        "error_source",
        "interaction_request_id",
        "source_session_id",
    ),
    "rejects": ("source_table", "source_id", "reason", "excerpt"),
    "repl_events": ("event_id", "repl_id", "event_type", "timestamp", "data"),
    "other_messages": ("interaction_id", "direction", "kind", "method"),
    "stateless_clients": (
        "session_id",
        "client_name",
        "client_version",
        "protocol_version",
        "capabilities",
        "first_seen",
        "interaction_id",
    ),
}


# Appends queued for the staging writer before append() waits (a batch makes about ten).
MAX_QUEUED_APPENDS = 12

# The request row each big staged table is read by (Staging.finish indexes them). The
# staged calls need none: their rowid is the request row (staged_calls_tables).
STAGED_KEYS = {
    "requests": "interaction_id",
    "request_responses": "interaction_request_id",
}


def statements(text: str) -> list[str]:
    """Split a queries/ file into statements.

    Our files never put ';' or '--' inside string literals, so comments can be cut at
    '--' and statements split at ';'.
    """
    body = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    return [s.strip() for s in body.split(";") if s.strip()]


def run_file(conn: sqlite3.Connection, name: str, params: Mapping[str, Any] | None = None) -> None:
    """Run every statement of queries/<name>.sql, each bound to the params it names."""
    given = params or {}
    for statement in statements(sql(name)):
        conn.execute(statement, {k: v for k, v in given.items() if f"${k}" in statement})


# Staged columns that may carry what agents typed: redacted before they are written.
REDACTED_COLUMNS: dict[str, tuple[str, ...]] = {
    "executions": ("arguments", "result_summary", "cancel_reason"),
    "executions_open": ("arguments", "result_summary", "cancel_reason"),
    "execution_responses": ("result_summary",),
    "execution_cancels": ("cancel_reason",),
    "requests": ("params",),
    "errors": ("message", "stack_trace", "input_that_caused_error"),
    "rejects": ("excerpt",),
    "repl_events": ("data",),
}


class Staging:
    """A scratch SQLite file that collects one run's output rows batch by batch.

    DuckDB writes it (attach() to the run's source connection): its SQLite writer binds
    values in C++, five times faster than Python's executemany over Polars rows, which
    made staging the run's largest cost. The run's write transaction reads it back
    with Python's SQLite (write_transaction). The two never have it open at once: two
    copies of SQLite in one process do not see each other's locks (pipeline/run.py).

    Every row the run writes passes through append(), which redacts secrets
    (pipeline/transform/redact.py) unless redaction is off.
    """

    def __init__(self, directory: Path, redact: bool = True) -> None:
        self.redact = redact
        self.counts: dict[str, int] = dict.fromkeys(STAGED, 0)
        self.seconds = 0.0  # time spent writing, for the run's stage timings
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        # Tables in the file: the staged calls' from the start (staged_calls_tables), the
        # others once the writer thread has created them.
        self._created = {"executions", "executions_open"}
        self._queued: set[str] = set()  # tables with a frame queued (caller's thread)
        _remove_abandoned_staging(directory)
        try:
            fd, name = tempfile.mkstemp(prefix=STAGING_PREFIX, suffix=STAGING_SUFFIX, dir=directory)
            # Held until close(): tells later runs this file is not abandoned.
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock_fd = fd
        except OSError as exc:
            msg = (
                f"cannot create a staging file in {directory}: {exc.strerror}; "
                "check its permissions and free space"
            )
            raise TargetError(msg) from exc
        self.path = Path(name)
        try:
            # DuckDB's SQLite keeps the page size of the (empty) file it attaches.
            init = sqlite3.connect(self.path)
            try:
                init.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                init.execute("VACUUM")
                for statement in staged_calls_tables():
                    init.execute(statement)
            finally:
                init.close()
        except sqlite3.Error as exc:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(fd)
            raise _staging_error(directory, exc) from exc

    def attach(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Write through a cursor of this DuckDB connection, on a writer thread, until
        detach()."""
        try:
            conn.execute(f"ATTACH {quote_sql_string(str(self.path))} AS stg (TYPE sqlite)")
        except duckdb.Error as exc:
            raise _staging_error(self.path.parent, exc) from exc
        self._duck = conn.cursor()
        # One writer thread keeps the appends in order. DuckDB writes without the GIL,
        # so staging overlaps the transform of the next batch instead of following it.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="staging")

    def detach(self) -> None:
        """Wait for the queued writes, then stop: DuckDB's SQLite closes the file before
        Python's opens it. Raises the first write's error, if any."""
        if self._duck is None:
            return
        try:
            self.flush()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True, cancel_futures=True)
                self._writer = None
            with contextlib.suppress(duckdb.Error):
                self._duck.execute("DETACH stg")
                self._duck.close()
            self._duck = None

    def flush(self) -> None:
        """Wait until every queued append is written; raise the first failure."""
        while self._pending:
            self._pending.popleft().result()

    def append(self, table: str, frame: pl.DataFrame) -> None:
        """Queue a frame for the staging table (written in call order).

        An empty frame is written only when it is the table's first: it creates the
        table with its declared types, which DuckDB needs to read it back
        (derive.read_staged_facts); a table Staging.finish creates has none.
        """
        if frame.is_empty() and table in self._queued:
            return
        self._queued.add(table)
        if self._writer is None:
            msg = "Staging.append() before attach()"
            raise RuntimeError(msg)
        # Bound the frames waiting in memory: at most a couple of batches' worth.
        while len(self._pending) >= MAX_QUEUED_APPENDS:
            self._pending.popleft().result()
        self._pending.append(self._writer.submit(self._write, table, frame))

    def _write(self, table: str, frame: pl.DataFrame) -> None:
        if self._duck is None:
            return
        started = time.perf_counter()
        if self.redact and table in REDACTED_COLUMNS:
            frame = redact_frame(frame, REDACTED_COLUMNS[table])
        # A column of only nulls has no type DuckDB can declare in SQLite.
        frame = frame.select(STAGED[table]).with_columns(pl.col(pl.Null).cast(pl.String))
        # The first batch's types become the table's declared types, so SQLite stores
        # integers as integers (comparisons in queries/load_*.sql depend on it).
        verb = (
            f"INSERT INTO stg.{table} BY NAME "
            if table in self._created
            else f"CREATE TABLE stg.{table} AS "
        )
        try:
            # The frame goes over as an Arrow C stream (a PyCapsule), not as a Polars or
            # pyarrow object: for those DuckDB imports pyarrow.dataset to tell datasets
            # apart, 0.1 s holding the GIL in every run (docs/performance.md). The
            # capsule is read once, by the statement below.
            self._duck.register("staged_frame", frame.__arrow_c_stream__())
            try:
                # Table names come from STAGED (our constants).
                self._duck.execute(f"{verb}SELECT * FROM staged_frame")  # noqa: S608
            finally:
                self._duck.unregister("staged_frame")
        except duckdb.Error as exc:
            raise _staging_error(self.path.parent, exc) from exc
        self._created.add(table)
        self.counts[table] += frame.height
        self.seconds += time.perf_counter() - started

    def finish(self) -> None:
        """With Python's SQLite, after detach(): create the tables no batch wrote (empty)
        and index the staged rows by their request row.

        The load reads staged calls in request order and joins on the request row: an
        index each makes that a walk instead of a sort of the wide rows (a third of the
        time of the full load at 1M interactions). Done here, before the write
        transaction, so that nothing writes this file while the run reads it from two
        connections (derive.read_staged_facts).
        """
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                for table, columns in STAGED.items():
                    if table not in self._created:
                        # Names from our own constant, never from data.
                        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)})")
                for table, column in STAGED_KEYS.items():
                    conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_key ON {table} ({column})")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise _staging_error(self.path.parent, exc) from exc

    def abandon(self) -> None:
        """Stop writing without raising (a run that is failing already has its error)."""
        with contextlib.suppress(Exception):
            self.detach()

    def close(self) -> None:
        self.abandon()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for leftover in (self.path.with_name(self.path.name + "-journal"),):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        os.close(self._lock_fd)


STAGING_PREFIX = ".mcp-analytics-"
STAGING_SUFFIX = ".staging.db"


def staged_calls_tables() -> list[str]:
    """The staging file's calls: `executions` (answered during the run), `executions_open`
    (still unanswered when it ends) and the view `calls` of both.

    Both tables are tool_executions' own CREATE TABLE, their id being the request row
    (run._stage_executions), so that a rebuild copies them with `INSERT … SELECT *`
    (queries/load_copy_calls.sql). SQLite copies the records of a table into one of
    the same shape as they are, in rowid order, without decoding them: 0.32 s against
    0.8 s for the 500k calls of the 1M log, and no index on the scratch file is needed
    (0.18 s). The shape must match column for column: affinity, NOT NULL and the
    INTEGER PRIMARY KEY. DuckDB, which writes the file, reads a DATETIME column as a
    TIMESTAMP and would write its own text for it, so those columns are declared STAMP:
    the same (numeric) affinity for SQLite, text for DuckDB.

    The unanswered calls have a table of their own because their ids are spread over
    the whole log: inserted among the answered ones by key, the 33k of the 1M log took
    the staging writer 0.6 s after the last batch, which the run waited for.
    """
    ddl = next(
        s
        for s in statements(sql("schema"))
        if s.startswith("CREATE TABLE IF NOT EXISTS tool_executions ")
    )
    ddl = re.sub(r"\bDATETIME\b", "STAMP", ddl)
    return [
        ddl.replace("CREATE TABLE IF NOT EXISTS tool_executions", f"CREATE TABLE {name}", 1)
        for name in ("executions", "executions_open")
    ] + ["CREATE VIEW calls AS SELECT * FROM executions UNION ALL SELECT * FROM executions_open"]


def _staging_error(directory: Path, exc: sqlite3.Error | duckdb.Error) -> TargetError:
    return TargetError(
        f"cannot write the staging file in {directory}: {exc}; free space there and rerun "
        "(nothing was committed)"
    )


def _remove_abandoned_staging(directory: Path) -> None:
    """Delete staging files of runs that were killed.

    A run holds an exclusive flock on its staging file for its whole life; a file
    nobody holds belongs to a run that died before it could clean up. SQLite's journal
    beside it (DuckDB writes the file in transactions) goes with it, and so does a
    journal whose file is already gone.
    """
    for path in directory.glob(f"{STAGING_PREFIX}*{STAGING_SUFFIX}"):
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live run's
            finally:
                os.close(fd)
            path.unlink()
    for journal in directory.glob(f"{STAGING_PREFIX}*{STAGING_SUFFIX}-journal"):
        if not journal.with_name(journal.name.removesuffix("-journal")).exists():
            with contextlib.suppress(OSError):
                journal.unlink()


# The version of queries/schema.sql. A target written under another version has its
# analytics tables dropped and rebuilt by a full run: they are all derived from the
# source. error_resolutions (a person's work) is never dropped. Version 3:
# tool_executions.id is the request's interaction id (it was a counter).
SCHEMA_VERSION = "3"
REBUILT_ON_UPGRADE = (
    "tool_executions",
    "errors",
    "performance_metrics",
    "client_sessions",
    "session_lifecycle",
    "etl_metadata",
    "etl_rejects",
    "etl_requests",
    "etl_client_map",
    "etl_repl_events",
    "etl_stateless_clients",
    "etl_session_activity",
    "etl_other_messages",
)


def _schema_current(conn: sqlite3.Connection, schema_hash: str) -> bool:
    """The target was set up with this very schema.sql, under this schema version."""
    try:
        rows = dict(
            conn.execute(
                "SELECT key, value FROM etl_metadata WHERE key IN ('schema_hash', 'schema_version')"
            ).fetchall()
        )
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise
        return False  # no etl_metadata yet
    return (
        rows.get("schema_hash") == schema_hash
        and rows.get("schema_version", SCHEMA_VERSION) == SCHEMA_VERSION
    )


def _stale_schema(conn: sqlite3.Connection) -> bool:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'etl_metadata'"
    ).fetchone()
    if not has_meta:
        return False
    row = conn.execute("SELECT value FROM etl_metadata WHERE key = 'schema_version'").fetchone()
    return row is not None and row[0] != SCHEMA_VERSION


def lock_step(conn: sqlite3.Connection, statement: str, busy_timeout_ms: int) -> None:
    """Run BEGIN IMMEDIATE or COMMIT, retrying in fine steps while another writer holds
    the lock (pipeline/busy.py says why SQLite's own handler starves beside the proxy).
    Statements between them wait with SQLite's handler, up to the same timeout."""
    conn.execute(f"PRAGMA busy_timeout = {max(1, int(ATTEMPT_TIMEOUT_S * 1000))}")
    try:
        retry_when_busy(lambda: conn.execute(statement), busy_timeout_ms)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")


def use_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> str:
    """Put a live log that is also the target in WAL mode; return the journal mode.

    In the proxy's default rollback-journal mode, every one of its commits (hundreds a
    second) locks readers out for a moment and every long read holds its commits back;
    in WAL mode readers and the writer never wait for each other, so the ETL can read a
    busy log without delaying the proxy. The mode is a property of the file and stays;
    SQLite-based writers (the proxy's SQLite.jl included) follow it transparently. Only
    done when the analytics go into the log itself, since that already writes to it.
    """
    mode = str(read_target(conn, "PRAGMA journal_mode", (), busy_timeout_ms)[0][0]).lower()
    if mode != "wal":
        mode = str(
            retry_when_busy(
                lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0], busy_timeout_ms
            )
        ).lower()
    return mode


@contextlib.contextmanager
def rollback_journal_when_alone(conn: sqlite3.Connection, busy_timeout_ms: int) -> Iterator[str]:
    """Around a first rebuild's write transaction: leave WAL mode if no one else has the
    file open, and go back to it afterwards; yield the journal mode the block runs in.

    In WAL mode every page of a rebuild is written twice, into the WAL and then by the
    checkpoint at COMMIT into the file (400 MB each at 1M interactions; the commit alone
    took 1.5-2.0 s). In rollback mode the new pages, all past the file's old end, go to
    the file once and need no journal. Three alternating first runs into the 1M log
    itself: write lock 1.0-2.3 s shorter (docs/performance.md). Only for a first
    rebuild, into tables that hold nothing yet: a rebuild over a previous run's rows
    reuses the pages it freed in the same transaction, and rollback mode journals each
    of them before it is overwritten (a --full run over the 1M log's analytics: 38.8 s
    against 28.5 s in WAL mode). SQLite leaves WAL mode only when no other connection
    has the file open, so beside a live proxy the attempt fails at once and the rebuild
    keeps WAL, where the proxy's readers never wait for it. Leaving and entering WAL
    mode both checkpoint the little the WAL holds.
    """
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode != "wal":
        yield mode
        return
    conn.execute("PRAGMA busy_timeout = 0")  # someone else has it open: no need to wait
    try:
        mode = str(conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]).lower()
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    try:
        yield mode
    finally:
        if mode != "wal":
            # The rebuild is committed (or rolled back) by now: a failure here leaves
            # the file in rollback mode, and the next run's use_wal switches it back.
            with contextlib.suppress(sqlite3.Error):
                use_wal(conn, busy_timeout_ms)


def open_target(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """Open (creating if needed) the target and make sure the analytics schema exists.

    A target this call created is removed again when the schema cannot be written, so a
    failure leaves nothing behind.
    """
    existed = path.exists()
    conn: sqlite3.Connection | None = None
    schema_text = sql("schema")
    schema_hash = hashlib.sha256(schema_text.encode()).hexdigest()[:16]
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
        # The usual case writes nothing: a live source is locked only when needed.
        if existed and retry_when_busy(lambda: _schema_current(conn, schema_hash), busy_timeout_ms):
            return conn
        # Takes effect only on a new (empty) file; an existing target keeps its size.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        lock_step(conn, "BEGIN IMMEDIATE", busy_timeout_ms)
        if _stale_schema(conn):
            for table in REBUILT_ON_UPGRADE:
                # Names from our own constant, never from data.
                conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in statements(schema_text):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO etl_metadata (key, value, updated_at) "
            "VALUES ('schema_hash', ?, datetime('now')) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (schema_hash,),
        )
        lock_step(conn, "COMMIT", busy_timeout_ms)
    except sqlite3.Error as exc:
        if conn is not None:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            conn.close()
        if not existed:
            for leftover in (path, path.with_name(path.name + "-journal")):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        msg = f"cannot write target {path}: {exc}; check the path, its permissions and free space"
        raise TargetError(msg) from exc
    return conn


def read_target(
    conn: sqlite3.Connection, query: str, params: Any = (), busy_timeout_ms: int = 5_000
) -> list[Any]:
    """All rows of a read on the target, waiting out a live log's transient locks."""
    try:
        return retry_when_busy(lambda: conn.execute(query, params).fetchall(), busy_timeout_ms)
    except sqlite3.Error as exc:
        msg = f"cannot read the target: {exc}; rerun when it is less busy"
        raise TargetError(msg) from exc


def read_metadata(conn: sqlite3.Connection, busy_timeout_ms: int = 5_000) -> dict[str, str]:
    return dict(read_target(conn, "SELECT key, value FROM etl_metadata", (), busy_timeout_ms))


@contextlib.contextmanager
def write_transaction(
    conn: sqlite3.Connection, staging: Staging, busy_timeout_ms: int
) -> Iterator[sqlite3.Connection]:
    """The run's one write transaction on the target, with the staged rows attached
    (after Staging.finish())."""
    try:
        conn.execute("ATTACH DATABASE ? AS stg", (str(staging.path),))
        lock_step(conn, "BEGIN IMMEDIATE", busy_timeout_ms)
    except sqlite3.Error as exc:
        msg = f"cannot lock the target for writing: {exc}"
        raise TargetError(msg) from exc
    try:
        yield conn
        lock_step(conn, "COMMIT", busy_timeout_ms)
    except BaseException as exc:
        # SQLite may already have rolled back (a full disk does that).
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            msg = (
                f"cannot write the target: {exc}; check free space and permissions and "
                "rerun (nothing was committed)"
            )
            raise TargetError(msg) from exc
        raise
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("DETACH DATABASE stg")


# How often a full rebuild's pages are handed to the disk while it runs (flushing).
FLUSH_INTERVAL_S = 0.25


@contextlib.contextmanager
def flushing(path: Path, interval_s: float = FLUSH_INTERVAL_S) -> Iterator[None]:
    """While the block runs, have the kernel write the target's new pages to disk.

    A full rebuild rewrites the whole target (400 MB at 1M interactions) and SQLite
    syncs it only at COMMIT, which then waited 0.36 s for the disk while both cores
    idled. A thread instead syncs the file every interval_s while the load and derive
    compute, so the commit finds little left to write (0.03 s). It writes out only what
    the kernel may write out at any moment anyway: SQLite's own syncs, and their order
    against its journal, are unchanged.

    The sync goes through the file descriptors this process already has open on the
    target (or its WAL), found in /proc/self/fd: opening the file again and closing it
    would drop every POSIX lock the process holds on it, SQLite's included. Where there
    is no /proc/self/fd this does nothing.
    """
    names = {str(path.resolve()), f"{path.resolve()}-wal"}
    stop = threading.Event()

    def sync() -> None:
        while not stop.wait(interval_s):
            for fd in _open_fds(names):
                # The descriptor may have been closed and reused since: a sync of
                # another file is harmless.
                with contextlib.suppress(OSError):
                    os.fdatasync(fd)

    flusher = threading.Thread(target=sync, name="flush", daemon=True)
    flusher.start()
    try:
        yield
    finally:
        stop.set()
        flusher.join()


def _open_fds(names: set[str]) -> list[int]:
    """This process's file descriptors open on any of the named files."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(entry.path) in names:
                    found.append(int(entry.name))
    return found


def apply_run(
    conn: sqlite3.Connection,
    *,
    settled_iid: int,
    events_wm: int,
    newest_ts: str | None,
    pending_timeout_ms: int,
    recheck_all: bool,
) -> None:
    """Inside write_transaction: roll back the provisional tail, apply, finish.

    recheck_all: recompute the status of every unanswered call, timeouts included (a
    full run, or the pending timeout changed).
    """
    if settled_iid == 0 and events_wm == 0:
        run_file(conn, "load_clear")  # the same rows, without a delete per row and index
    else:
        run_file(conn, "load_rollback", {"settled_iid": settled_iid, "events_wm": events_wm})
    rebuild = settled_iid == 0  # a full run: the tables are empty now
    if not rebuild:
        conn.execute(f"PRAGMA cache_size = -{INCREMENTAL_CACHE_KIB}")
    if rebuild:
        for table in REINDEXED_TABLES:
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                "AND tbl_name = ?",
                (table,),
            ).fetchall():
                conn.execute(f'DROP INDEX "{name}"')  # names from our own schema
    run_file(conn, "load_copy_calls" if rebuild else "load_insert_calls")
    run_file(conn, "load_insert")
    calls = {
        "newest_ts": newest_ts,
        "pending_timeout_ms": pending_timeout_ms,
        "recheck_all": int(recheck_all),
        "settled_iid": settled_iid,
    }
    if not rebuild:
        run_file(conn, "load_apply")
        run_file(conn, "load_calls", calls)
        run_file(conn, "load_finish")
        return
    # Each index build is a sort of the whole table: SQLite sorts with helper threads
    # when allowed (measured 20% faster for the eleven at 1M interactions).
    conn.execute("PRAGMA threads = 2")
    indexes = [
        s
        for s in statements(sql("schema"))
        if s.startswith("CREATE") and " INDEX " in s.split("(")[0]
    ]
    # The row indexes first: the cancellations and statuses join on the request row's
    # and find the unanswered calls through the response row's (a scan of the whole
    # table without it: 0.35 s against 0.12 s at 1M). They are set before the other
    # indexes exist, so they update none of them (queries/load_calls.sql says what that
    # saves).
    _build(conn, [s for s in indexes if _index_name(s) in CALL_ROW_INDEXES])
    run_file(conn, "load_calls", calls)
    _build(conn, [s for s in indexes if _indexed_table(s) != "errors"])
    # load_apply.sql inserts the errors; load_finish.sql looks them up by key.
    run_file(conn, "load_apply")
    _build(conn, indexes)
    run_file(conn, "load_finish")


def _index_name(create_index: str) -> str:
    """The name a CREATE INDEX statement of queries/schema.sql gives its index."""
    return create_index.split(" ON ", 1)[0].split()[-1]


def _indexed_table(create_index: str) -> str:
    """The table a CREATE INDEX statement of queries/schema.sql indexes."""
    return create_index.split(" ON ", 1)[1].split("(", 1)[0].strip()


def _build(conn: sqlite3.Connection, create_indexes: list[str]) -> None:
    """Create the indexes not built yet (the schema's statements say IF NOT EXISTS)."""
    for statement in create_indexes:
        conn.execute(statement)


def write_metadata(conn: sqlite3.Connection, metadata: Mapping[str, str | int | None]) -> None:
    """Inside write_transaction: the watermarks and run facts, committed with the rows."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    conn.executemany(
        "INSERT INTO etl_metadata (key, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        [(k, None if v is None else str(v), now) for k, v in metadata.items()],
    )
