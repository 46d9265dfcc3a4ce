"""run(config) -> RunSummary: the one place that sequences a run.

source (validate, bounds) → events (client map, proxy errors) → interactions in id-range
batches (decode, resolve, pair, outcomes; staged on disk) → one write transaction.
"""

from __future__ import annotations

import json
import resource
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar, cast
from uuid import uuid4

import duckdb
import polars as pl

from pipeline.busy import ATTEMPT_TIMEOUT_S, is_busy, retry_when_busy
from pipeline.config import EtlConfig
from pipeline.derive import (
    DeriveParams,
    StagedFacts,
    derive,
    mark_after,
    mark_before,
    read_staged_facts,
)
from pipeline.errors import TargetError
from pipeline.load import (
    SCHEMA_VERSION,
    Staging,
    apply_run,
    flushing,
    open_target,
    read_metadata,
    read_target,
    rollback_journal_when_alone,
    use_wal,
    write_metadata,
    write_transaction,
)
from pipeline.memory import release_free_heap
from pipeline.progress import Progress, open_progress
from pipeline.queries import quote_sql_string, sql
from pipeline.source import (
    SourceBounds,
    SourceReader,
    connect_source,
    read_bounds,
    validate_source,
)
from pipeline.transform.decode import REJECT_UNPAIRED, classify, rejects, ts_ms
from pipeline.transform.outcomes import client_info, error_category, response_fields
from pipeline.transform.pair import pair_responses
from pipeline.transform.resolve import ANY_ROUTE, PROXY_ROUTE, resolve_routes, resolve_sessions
from pipeline.transform.sessions import format_ts, parse_ts

T = TypeVar("T")


@dataclass
class RunSummary:
    """What a run did, for the CLI summary and the tests."""

    mode: str
    interactions_read: int = 0
    events_read: int = 0
    executions_new: int = 0
    responses_paired: int = 0
    errors_new: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    settled_interaction_id: int = 0
    seconds: float = 0.0
    run_id: str = ""
    # Days whose rows changed in a partitioned table (tool_executions, errors,
    # performance_metrics, session_lifecycle); None after a full run: all of them.
    touched_days: list[str] | None = None
    # Wall seconds per stage: scan (DuckDB reads of the source), decode, transform
    # (attribute, pair, outcomes), stage (writes to the staging file), apply (the write
    # transaction's load steps), derive (metrics, sessions, lifecycles); write_lock is
    # the whole write transaction, apply and derive included, from lock to commit;
    # derive_read (full runs) reads derive's inputs from the staging file meanwhile.
    timings: dict[str, float] = field(default_factory=dict)
    # The target's journal mode during the write transaction: a first rebuild of a log
    # in WAL mode runs in rollback mode when nothing else has the file open.
    write_journal: str = ""

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started


@dataclass(frozen=True)
class RunClock:
    """Wall and CPU time at the start of a run, for its own performance_metrics row."""

    wall: float
    cpu: float
    local_start: datetime

    @staticmethod
    def start() -> RunClock:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return RunClock(time.perf_counter(), usage.ru_utime + usage.ru_stime, datetime.now())


def _write_run_metric(
    conn: sqlite3.Connection, run_id: str, summary: RunSummary, clock: RunClock
) -> str:
    """The run's own row in performance_metrics (metric_type 'etl'); returns its day.

    Measured up to this point of the run (the commit follows). memory_mb is the peak
    resident set of the process (ru_maxrss), cpu_percent the process's CPU time over the
    wall time (above 100 when DuckDB or Polars use several cores).
    """
    wall = time.perf_counter() - clock.wall
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - clock.cpu
    rows = summary.interactions_read + summary.events_read
    stamp = format_ts(clock.local_start)
    conn.execute(
        "INSERT INTO performance_metrics (session_id, timestamp, metric_type, metric_name, "
        "duration_ms, throughput, memory_mb, cpu_percent, rows_read, metric_date) "
        "VALUES (?, ?, 'etl', ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            stamp,
            f"run_{summary.mode}",
            wall * 1000,
            rows / wall if wall > 0 else None,
            usage.ru_maxrss / 1024,  # KiB on Linux
            100 * cpu / wall if wall > 0 else None,
            rows,
            stamp[:10],
        ),
    )
    return stamp[:10]


def _closed_sessions(src: SourceReader) -> dict[str, str]:
    """Client sessions the producer marked closed (G3 does on DELETE), with the time."""
    rows = src.frame("source_closed_sessions").rows()
    return {str(sid): str(ts) for sid, ts in rows}


# REPL registry events, by the names of the producer's generations (docs/producer.md §5).
REPL_EVENT_TYPES = {
    "repl.registered": "repl.registered",
    "repl.unregistered": "repl.unregistered",
    "julia_session.registered": "repl.registered",
    "julia_session.unregistered": "repl.unregistered",
}

# The columns the pairing state keeps for each open request (answered later, maybe in
# a later batch or run). Errors take their context from here.
OPEN_COLUMNS = {
    "request_iid": pl.Int64,
    "id_key": pl.String,
    "id_text": pl.String,
    "route": pl.String,
    "method": pl.String,
    "tool_name": pl.String,
    "session_id": pl.String,
    "source_session_id": pl.String,
    "client_name": pl.String,
    "arguments": pl.String,
    "ts_ms": pl.Int64,
    "is_tool_call": pl.Boolean,
}
# A call first seen in this run is staged once, whole, when its response comes (or as
# unanswered at the end of the run), so the load writes each row once and joins
# nothing; until then it carries its tool_executions columns here. Calls read back
# from the target (staged: true) are already rows there: their responses are staged
# apart and applied as updates.
CALL_COLUMNS = {
    "request_time": pl.String,
    "input_size": pl.Int64,
    "argument_count": pl.Int64,
    "request_id_type": pl.String,
    "is_proxy_tool": pl.Boolean,
    "staged": pl.Boolean,
    # Its first cancellation, if any (_stage_cancels).
    "cancel_iid": pl.Int64,
    "cancel_time": pl.String,
    "cancel_reason": pl.String,
    "cancel_ts_ms": pl.Int64,
}


def run(config: EtlConfig) -> RunSummary:
    """One run in three phases, each with its own connection to the target file.

    Two copies of SQLite live in this process (Python's and DuckDB's sqlite scanner).
    They do not see each other's POSIX locks, so when the target is the log itself, one
    closing its handle could drop the other's locks or unmap a WAL log's shared memory
    under it. The phases never overlap: read the target's state (Python's SQLite), read
    the source (DuckDB; the target's open requests too, through the same copy of
    SQLite), write the target (Python's SQLite).
    """
    started = time.perf_counter()
    clock = RunClock.start()
    info = validate_source(config.source, config.busy_timeout_ms)
    redaction = "on" if config.redact else "off"
    target = open_target(config.target, config.busy_timeout_ms)
    try:
        if config.target.resolve() == config.source.resolve():
            use_wal(target, config.busy_timeout_ms)
        meta = read_metadata(target, config.busy_timeout_ms)
        # Tables written with and without redaction must not mix: a change rebuilds.
        full = (
            config.full
            or "interactions_settled_id" not in meta
            or meta.get("redaction", "on") != redaction
        )
        settled_prev = 0 if full else int(meta["interactions_settled_id"])
        events_wm = 0 if full else int(meta.get("events_max_id") or 0)
        client_map = _client_map(target, full, events_wm, config.busy_timeout_ms)
    except sqlite3.Error as exc:
        msg = f"cannot prepare {config.target}: {exc}; retry when it is less busy"
        raise TargetError(msg) from exc
    finally:
        target.close()
    summary = RunSummary(mode="full" if full else "incremental")
    staging = Staging(config.target.resolve().parent, redact=config.redact)
    progress = open_progress(config.quiet)
    try:
        src = SourceReader(connect_source(info), info, config.busy_timeout_ms)
        try:
            staging.attach(src.conn)
            bounds = read_bounds(src.conn, info, config.busy_timeout_ms)
            settled = settled_prev
            carried = settled_prev if info.has_interactions else 0
            if carried:
                _attach_target(src, config)
            # Without interactions the reader has no batches (interactions_max_id is 0).
            reader = BatchReader(src, config, bounds, settled_prev)
            # The open requests, and the per-request events to reject, are read beside
            # the events and the first batches.
            state = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state")
            open_reqs = state.submit(_open_requests, src.cursor(), config, carried)
            broken = state.submit(_broken_request_events, src.cursor(), bounds, events_wm)
            try:
                progress.stage("events", bounds.events_max_id - events_wm)
                client_map = _process_events(src, staging, bounds, events_wm, client_map, summary)
                progress.rows(summary.events_read, bounds.events_max_id - events_wm)
                if info.has_interactions:
                    progress.stage("interactions", bounds.interactions_max_id - settled_prev)
                    settled = _process_interactions(
                        reader,
                        staging,
                        open_reqs,
                        config,
                        bounds,
                        settled_prev,
                        client_map,
                        summary,
                        progress,
                    )
                rejected = broken.result()
                summary.events_read += rejected.height
                _stage_rejects(_event_rejects(rejected), staging, summary)
            finally:
                state.shutdown(wait=True, cancel_futures=True)
                reader.close()
            summary.settled_interaction_id = settled
            closed = _closed_sessions(src)
            staging.detach()  # waits for the staging writer; raises its first error
        finally:
            staging.abandon()
            src.conn.close()
        staging.finish()
        plan = Plan(meta, full, redaction, settled_prev, events_wm, settled, bounds, closed)
        # A full run's derive reads its inputs from the staging file, on a thread, while
        # the load runs (derive.read_staged_facts says why they are the same).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="derive") as pool:
            staged = pool.submit(_timed_read, staging, summary) if full else None
            target = open_target(config.target, config.busy_timeout_ms)
            try:
                # A transient lock error inside the transaction (a busy WAL index on a
                # live log) rolls it back whole; it is then simply run again, until
                # --busy-timeout.
                deadline = time.monotonic() + config.busy_timeout_ms / 1000
                while True:
                    try:
                        _commit(target, staging, config, summary, clock, plan, staged, progress)
                        break
                    except TargetError as exc:
                        cause = exc.__cause__
                        if cause is None or not is_busy(cause) or time.monotonic() >= deadline:
                            raise
            finally:
                target.close()
    finally:
        progress.close()
        staging.close()
    summary.seconds = time.perf_counter() - started
    # The staging writer's busy time; it overlaps the scan and the transform.
    summary.timings["stage"] = staging.seconds
    return summary


@dataclass(frozen=True)
class Plan:
    """What the reading part of a run hands to its write transaction."""

    meta: dict[str, str]  # etl_metadata as the run found it
    full: bool
    redaction: str
    settled_prev: int  # watermarks before the run
    events_wm: int
    settled: int  # the new interactions watermark
    bounds: SourceBounds
    closed: dict[str, str]  # client sessions the producer closed


def _timed_read(staging: Staging, summary: RunSummary) -> StagedFacts:
    # derive_read overlaps the write transaction's apply (RunSummary.timings).
    with summary.timed("derive_read"):
        try:
            return read_staged_facts(staging.path)
        except (sqlite3.Error, duckdb.Error) as exc:
            msg = f"cannot read the staging file {staging.path}: {exc}; rerun"
            raise TargetError(msg) from exc


def _commit(
    target: sqlite3.Connection,
    staging: Staging,
    config: EtlConfig,
    summary: RunSummary,
    clock: RunClock,
    plan: Plan,
    staged: Future[StagedFacts] | None,
    progress: Progress,
) -> None:
    """The run's one write transaction: load, derive, record the run and the watermarks.

    staged: a full run's derive inputs, being read from the staging file.
    """
    meta, full, redaction, bounds = plan.meta, plan.full, plan.redaction, plan.bounds
    settled_prev, events_wm, settled, closed = (
        plan.settled_prev,
        plan.events_wm,
        plan.settled,
        plan.closed,
    )
    # A first rebuild writes its pages once where it can (load.rollback_journal_when_alone
    # says why only a first one).
    first = (
        full
        and not read_target(
            target, "SELECT EXISTS (SELECT 1 FROM tool_executions)", (), config.busy_timeout_ms
        )[0][0]
    )
    # write_lock: how long the target (often the live source) is locked.
    with (
        rollback_journal_when_alone(target, config.busy_timeout_ms) if first else nullcontext(),
        summary.timed("write_lock"),
        write_transaction(target, staging, config.busy_timeout_ms) as conn,
    ):
        summary.write_journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        progress.step("load")
        # A rebuild's pages go to disk while it computes, not all at COMMIT.
        with flushing(config.target) if full else nullcontext():
            with summary.timed("apply"):
                # Timeouts are final unless the pending timeout itself changed.
                recheck = full or meta.get("pending_timeout_ms") != str(config.pending_timeout_ms)
                mark_before(conn, settled_prev, events_wm, recheck)
                apply_run(
                    conn,
                    settled_iid=settled_prev,
                    events_wm=events_wm,
                    newest_ts=bounds.newest_ts,
                    pending_timeout_ms=config.pending_timeout_ms,
                    recheck_all=recheck,
                )
                mark_after(conn, settled_prev)
            progress.step("derive")
            with summary.timed("derive"):
                days = derive(
                    conn,
                    DeriveParams(
                        newest_ts=bounds.newest_ts,
                        idle_timeout_ms=config.idle_timeout_ms,
                        init_window_ms=config.init_window_ms,
                        closed_sessions=closed,
                    ),
                    None if staged is None else staged.result(),
                )
        progress.step("commit")
        run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid4().hex[:8]}"
        etl_day = _write_run_metric(conn, run_id, summary, clock)
        summary.run_id = run_id
        summary.touched_days = None if full else sorted({*days, etl_day})
        write_metadata(
            conn,
            {
                "schema_version": SCHEMA_VERSION,
                "interactions_settled_id": settled,
                "interactions_max_id": bounds.interactions_max_id,
                "events_max_id": bounds.events_max_id,
                "newest_timestamp": bounds.newest_ts,
                "source": str(config.source.resolve()),
                "run_id": run_id,
                "pending_timeout_ms": config.pending_timeout_ms,
                "redaction": redaction,
                "previous_run_id": meta.get("run_id"),
                # Days whose rows changed in a partitioned table; null: all.
                "touched_days": json.dumps(summary.touched_days),
            },
        )


def _client_map(
    target: sqlite3.Connection, full: bool, events_wm: int, timeout: int
) -> pl.DataFrame:
    schema = {
        "session_id": pl.String,
        "client_name": pl.String,
        "target_repl": pl.String,
        "capabilities": pl.String,
        "initialized_at": pl.String,
        "event_id": pl.Int64,
    }
    if full:
        return pl.DataFrame(schema=schema)
    rows = read_target(
        target,
        "SELECT session_id, client_name, target_repl, capabilities, initialized_at, event_id "
        "FROM etl_client_map WHERE event_id <= ?",
        (events_wm,),
        timeout,
    )
    return pl.DataFrame(rows, schema=schema, orient="row")


def _process_events(
    src: SourceReader,
    staging: Staging,
    bounds: SourceBounds,
    events_wm: int,
    client_map: pl.DataFrame,
    summary: RunSummary,
) -> pl.DataFrame:
    """Lifecycle and error events after the watermark: the client map and system errors."""
    with summary.timed("scan"):
        frame = src.events(events_wm, bounds.events_max_id)
    summary.events_read += frame.height
    if frame.is_empty():
        return client_map
    frame = frame.with_columns(ev_ts_ms=ts_ms("ts"))
    bad = frame.filter(pl.col("data_invalid") | pl.col("ev_ts_ms").is_null())
    _stage_rejects(_event_rejects(bad), staging, summary)
    good = frame.filter(~pl.col("data_invalid") & pl.col("ev_ts_ms").is_not_null())
    new_map = good.filter(pl.col("event_type") == "session.initialized").select(
        session_id=pl.col("event_session_id"),
        client_name=pl.col("client_name"),
        target_repl=pl.col("target_repl_id"),
        capabilities=pl.col("capabilities"),
        initialized_at=pl.col("ts"),
        event_id=pl.col("event_id"),
    )
    # A session initialized twice keeps its latest facts.
    new_map = new_map.sort("event_id").unique("session_id", keep="last", maintain_order=True)
    staging.append("client_map", new_map)
    merged = pl.concat(
        [client_map.filter(~pl.col("session_id").is_in(new_map["session_id"].implode())), new_map]
    )
    errs = good.filter(pl.col("event_type") == "request.error").select(
        session_id=pl.col("event_session_id"),
        timestamp=pl.col("ts"),
        error_type=pl.lit("system_error"),
        error_code=pl.lit(None, pl.Int64),
        error_category=pl.lit("unknown_error"),
        tool_name=pl.lit(None, pl.String),
        method=pl.col("method"),
        request_id=pl.lit(None, pl.String),
        message=pl.coalesce(
            pl.col("error_message").str.split("\n").list.first(), pl.col("error_type"), pl.lit("")
        ),
        stack_trace=pl.col("error_message"),
        client_info=pl.lit(None, pl.String),
        input_that_caused_error=pl.lit(None, pl.String),
        interaction_id=pl.lit(None, pl.Int64),
        event_id=pl.col("event_id"),
        error_key=pl.format("e:{}", pl.col("event_id")),
        error_source=pl.lit("request_error_event"),
        interaction_request_id=pl.lit(None, pl.Int64),
        source_session_id=pl.col("event_session_id"),
    )
    staging.append("errors", errs)
    summary.errors_new += errs.height
    repl_events = good.filter(pl.col("event_type").is_in(REPL_EVENT_TYPES)).select(
        event_id=pl.col("event_id"),
        repl_id=pl.col("event_session_id"),
        event_type=pl.col("event_type").replace(REPL_EVENT_TYPES),
        timestamp=pl.col("ts"),
        data=pl.col("data"),
    )
    staging.append("repl_events", repl_events)
    return merged


def _event_rejects(bad: pl.DataFrame) -> pl.DataFrame:
    """etl_rejects rows of unusable events (event_id, ts, data): a timestamp that does not
    parse, or else data that is not JSON."""
    return bad.select(
        source_table=pl.lit("events"),
        source_id=pl.col("event_id"),
        reason=pl.when(ts_ms("ts").is_null())
        .then(pl.lit("invalid_timestamp"))
        .otherwise(pl.lit("invalid_json")),
        excerpt=pl.col("data").str.slice(0, 200),
    )


def _broken_request_events(src: SourceReader, bounds: SourceBounds, events_wm: int) -> pl.DataFrame:
    """Per-request events after the watermark whose data is not JSON (event_id, ts, data;
    queries/source_broken_request_events.sql), read on this reader's own cursor."""
    try:
        return src.frame(
            "source_broken_request_events", {"lo": events_wm, "hi": bounds.events_max_id}
        )
    finally:
        src.conn.close()


def _open_requests(src: SourceReader, config: EtlConfig, settled: int) -> pl.DataFrame:
    """Requests still open as of the settled watermark (the state pairing carries).

    Read through DuckDB from the target attached as `tgt` (_attach_target): that copy of
    SQLite has the source open already, and the target may be the source itself.
    """
    frame = pl.DataFrame(schema=OPEN_READ_SCHEMA)
    try:
        if settled:
            query, params = sql("state_open_requests"), {"settled_iid": settled}
            frame = _from_target(config, lambda: src.conn.execute(query, params).pl())
    finally:
        src.conn.close()  # this reader's own cursor
    return (
        frame.select(
            ts_ms("request_time").alias(k) if k == "ts_ms" else pl.col(k).cast(v)
            for k, v in OPEN_COLUMNS.items()
        )
        .with_columns(pl.lit(None, dtype).alias(name) for name, dtype in CALL_COLUMNS.items())
        .with_columns(staged=pl.lit(True))
        .sort("request_iid")
    )


def _attach_target(src: SourceReader, config: EtlConfig) -> None:
    """Attach the target read-only to the source's DuckDB connection, as `tgt`."""
    path = quote_sql_string(str(config.target.resolve()))
    _from_target(
        config,
        lambda: src.conn.execute(
            f"ATTACH {path} AS tgt (TYPE sqlite, READ_ONLY, "
            f"BUSY_TIMEOUT {max(1, int(ATTEMPT_TIMEOUT_S * 1000))})"
        ),
    )


def _from_target(config: EtlConfig, action: Callable[[], T]) -> T:
    """A DuckDB read of the target, retried while a writer holds its lock."""
    try:
        return retry_when_busy(action, config.busy_timeout_ms)
    except duckdb.Error as exc:
        msg = f"cannot read the target {config.target}: {exc}; retry when it is less busy"
        raise TargetError(msg) from exc


# The open requests as queries/state_open_requests.sql gives them (the empty frame of a
# run that reads none).
OPEN_READ_SCHEMA = {
    **{k: v for k, v in OPEN_COLUMNS.items() if k != "ts_ms"},
    "request_time": pl.String,
}


def _epoch_ms(ts: str) -> int:
    """Milliseconds since the epoch of a valid producer timestamp (as decode.ts_ms)."""
    return (parse_ts(ts) - datetime(1970, 1, 1)) // timedelta(milliseconds=1)


def _shift(ts: str, ms: int) -> str:
    return format_ts(parse_ts(ts) + timedelta(milliseconds=ms))


class BatchReader:
    """Reads the interactions after the settled watermark batch by batch, ahead of use.

    Reading overlaps the transform: DuckDB scans in C++ without holding the GIL. One
    thread reads batches of interactions, one after another; a second reads each
    batch's context events as soon as the batch is there, while the first goes on with
    the next batch. At most two batches are in memory at once. The first batch is read
    from the moment the reader opens, while the main thread reads the events (0.5 s of
    the 1M full run that nothing overlapped before).
    """

    def __init__(self, src: SourceReader, config: EtlConfig, bounds: SourceBounds, lo: int):
        self._config, self._bounds = config, bounds
        self._ranges = [
            (start, min(start + config.batch_rows, bounds.interactions_max_id))
            for start in range(lo, bounds.interactions_max_id, config.batch_rows)
        ]
        self._reader = src.cursor()
        self._context_reader = src.cursor()
        self._excerpt_reader = src.cursor()  # the main thread's
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scan")
        self._context_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="context")
        self._ahead = [self._pool.submit(self._read, *r) for r in self._ranges[:1]]
        # The id up to which the batch last handed over reaches.
        self.position = lo

    def _read(self, lo: int, hi: int) -> tuple[pl.DataFrame, Future[pl.DataFrame]]:
        batch = self._reader.interactions(lo, hi)
        context = self._context_pool.submit(
            _context_events, self._context_reader, batch, self._config, self._bounds
        )
        return batch, context

    def batches(self, summary: RunSummary) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        """Each batch with its context events, in id order (time waited counts as scan)."""
        for i in range(len(self._ranges)):
            with summary.timed("scan"):
                batch, context_read = self._ahead.pop().result()
            if i + 1 < len(self._ranges):
                self._ahead.append(self._pool.submit(self._read, *self._ranges[i + 1]))
            with summary.timed("scan"):
                context = context_read.result()
            # Handed over without a reference left here, so that the consumer's del
            # frees the batch before the heap is trimmed.
            handed = [(batch, context)]
            del batch, context, context_read
            self.position = self._ranges[i][1]
            yield handed.pop()

    def excerpts(self, ids: pl.Series) -> pl.DataFrame:
        """interaction_id, excerpt of the named interactions (queries/source_excerpts.sql);
        on the main thread."""
        return self._excerpt_reader.frame("source_excerpts", {"ids": json.dumps(ids.to_list())})

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._context_pool.shutdown(wait=True, cancel_futures=True)
        self._reader.conn.close()
        self._context_reader.conn.close()
        self._excerpt_reader.conn.close()


def _process_interactions(
    reader: BatchReader,
    staging: Staging,
    open_read: Future[pl.DataFrame],
    config: EtlConfig,
    bounds: SourceBounds,
    settled_prev: int,
    client_map: pl.DataFrame,
    summary: RunSummary,
    progress: Progress,
) -> int:
    """Read interactions after the settled watermark batch by batch; return the new one.

    open_read: the requests still open at the settled watermark (from the target).
    """
    open_reqs: pl.DataFrame | None = None
    settle_point = bounds.newest_event_ts or bounds.newest_ts
    settle_ms = None if settle_point is None else _epoch_ms(settle_point) - config.settle_ms
    settled = settled_prev
    for batch, context in reader.batches(summary):
        progress.rows(summary.interactions_read + batch.height, reader.position - settled_prev)
        if batch.is_empty():
            continue
        summary.interactions_read += batch.height
        with summary.timed("decode"):
            rows = classify(batch.lazy()).collect()
            rej = rejects(rows.lazy(), "interactions", "interaction_id", None).collect()
        del batch
        good = rows.filter(pl.col("reject_reason").is_null())
        if settle_ms is not None:
            ripe = good.filter(pl.col("ts_ms") <= settle_ms)["interaction_id"].max()
            if isinstance(ripe, int):
                settled = max(settled, ripe)
        with summary.timed("transform"):
            open_reqs, unpaired = _process_batch(
                good,
                context,
                client_map,
                open_read if open_reqs is None else open_reqs,
                staging,
                config,
                summary,
            )
        _stage_rejects(_with_excerpts(reader, pl.concat([rej, unpaired])), staging, summary)
        del context, rows, rej, good, unpaired
        # Without this the process grew by about 7 MB a batch (pipeline/memory.py).
        release_free_heap()
    # Calls still unanswered go in with the status load_calls.sql would give them
    # without a cancellation: timeout once older than the pending timeout relative to
    # the newest source time. That pass then rewrites only the cancelled ones (and
    # pending ones at the boundary, where its julianday arithmetic is not exact): in a
    # full run it rewrote every unanswered call, 14k rows at 1M interactions, 0.2 s of
    # the write lock.
    unanswered = pl.lit("pending")
    if bounds.newest_ts is not None:
        age = _epoch_ms(bounds.newest_ts) - pl.col("ts_ms")
        unanswered = (
            pl.when(age > config.pending_timeout_ms)
            .then(pl.lit("timeout"))
            .otherwise(pl.lit("pending"))
        )
    if open_reqs is None:
        open_reqs = open_read.result()
    _stage_executions(
        open_reqs.filter(pl.col("is_tool_call") & ~pl.col("staged")),
        staging,
        unanswered,
    )
    return settled


def _context_events(
    src: SourceReader, batch: pl.DataFrame, config: EtlConfig, bounds: SourceBounds
) -> pl.DataFrame:
    """The request.received and tool.call.start events around a batch's inbound rows.

    Read on the reader thread with the batch itself, so the main thread never waits for
    DuckDB. The time range spans every inbound row with a valid timestamp: a row that is
    rejected later only widens it, and attribution matches each row to events within
    the resolve window of that row's own time.
    """
    inbound = batch.filter(pl.col("direction") == "inbound").with_columns(t=ts_ms("ts"))
    times = inbound.filter(pl.col("t").is_not_null())["ts"]
    if times.is_empty():
        lo_ts = hi_ts = "0000"
    else:
        lo_ts = _shift(str(times.min()), -config.resolve_window_ms)
        hi_ts = _shift(str(times.max()), config.resolve_window_ms)
    frame = src.frame(
        "source_context_events", {"ts_lo": lo_ts, "ts_hi": hi_ts, "max_id": bounds.events_max_id}
    )
    return frame.with_columns(ev_ts_ms=ts_ms("ts")).filter(pl.col("ev_ts_ms").is_not_null())


def _process_batch(
    rows: pl.DataFrame,
    context: pl.DataFrame,
    client_map: pl.DataFrame,
    open_reqs: pl.DataFrame | Future[pl.DataFrame],
    staging: Staging,
    config: EtlConfig,
    summary: RunSummary,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One batch: attribute, pair, stage outputs; return the open requests after it and
    the responses that answer none (etl_rejects rows, without their excerpts).

    open_reqs: the open requests before the batch, or (first batch) their read from the
    target, still running on a thread.
    """
    window = config.resolve_window_ms
    inbound = rows.filter(
        (pl.col("direction") == "inbound") & pl.col("kind").is_in(["request", "notification"])
    )
    staging.append(
        "other_messages",
        rows.filter(
            ~(
                ((pl.col("direction") == "inbound") & (pl.col("kind") == "request"))
                | ((pl.col("direction") == "outbound") & (pl.col("kind") == "response"))
            ).fill_null(False)
        ).select("interaction_id", "direction", "kind", "method"),
    )
    received = context.filter(pl.col("event_type") == "request.received")
    starts = context.filter(pl.col("event_type") == "tool.call.start")
    inbound = resolve_sessions(inbound, received, window)
    requests = inbound.filter(pl.col("kind") == "request")
    requests = resolve_routes(requests, starts, client_map, window)
    new_reqs = requests.select(
        request_iid=pl.col("interaction_id"),
        id_key=pl.col("id_key"),
        id_text=pl.col("id_text"),
        route=pl.col("route"),
        method=pl.col("method"),
        tool_name=pl.col("tool_name"),
        session_id=pl.col("session_id"),
        source_session_id=pl.col("source_session_id"),
        client_name=pl.col("client_name"),
        arguments=pl.when(pl.col("method") == "tools/call")
        .then(pl.col("arguments"))
        .otherwise(pl.col("params_json")),
        ts_ms=pl.col("ts_ms"),
        is_tool_call=pl.col("method") == "tools/call",
        request_time=pl.col("ts"),
        input_size=pl.col("content_bytes"),
        argument_count=pl.col("argument_count"),
        request_id_type=pl.when(pl.col("id_type") == "VARCHAR")
        .then(pl.lit("string"))
        .otherwise(pl.lit("number")),
        is_proxy_tool=pl.col("is_proxy_tool"),
        staged=pl.lit(False),
        **{name: pl.lit(None, CALL_COLUMNS[name]) for name in CANCEL_COLUMNS},
    )
    _stage_new_requests(requests, staging, summary)

    responses = rows.filter(
        (pl.col("direction") == "outbound") & (pl.col("kind") == "response")
    ).with_columns(
        response_iid=pl.col("interaction_id"), response_route=pl.col("source_session_id")
    )
    # Pairing in two steps gives the one matching (pair.py): every open request of
    # earlier batches is older than this batch's requests, and a response turns to an
    # older request only when each newer one it could answer is held by an earlier
    # response. So the batch's own requests are paired first, and only the responses
    # none of them took can reach the open requests.
    new_pairs = pair_responses(new_reqs, responses)
    waiting = responses.join(new_pairs, on="response_iid", how="anti")
    # Only open requests that one of those responses could pair with (the same JSON id,
    # on a route pair_responses lets it answer) or one of the batch's cancellations
    # names can change here; the rest stay as they are, untouched. Ids repeat across
    # clients and calls never answered stay open: tested against all the batch's
    # responses, a third of the 150k open requests of the 5M log were re-paired and
    # copied in every batch.
    if isinstance(open_reqs, Future):
        # Only this second step needs the requests of earlier runs. The first batch
        # waits for their read here, after its own work: at 5M interactions the read
        # takes 0.5 s (161k never-answered calls) and the main thread waited for all of
        # it before starting the batch. The wait counts as transform.
        open_reqs = open_reqs.result()
    touched = open_reqs.select(_touched(waiting, inbound)).to_series()
    untouched = open_reqs.filter(~touched)
    old = open_reqs.filter(touched)
    candidates = pl.concat([old, new_reqs], how="vertical_relaxed")
    pairs = pl.concat([pair_responses(old, waiting), new_pairs]).sort("request_iid")
    summary.responses_paired += pairs.height
    candidates = _stage_cancels(inbound, candidates, pairs, staging)
    old, new_reqs = candidates.head(old.height), candidates.slice(old.height)
    answered = pairs.join(candidates, on="request_iid").join(
        response_fields(responses), on="response_iid", suffix="_resp"
    )
    _stage_responses(answered, staging)
    _stage_errors(responses, pairs, candidates, staging, summary)
    unpaired = _unpaired(responses, pairs)
    unmatched = ~pl.col("request_iid").is_in(pairs["request_iid"].implode())
    # Polars strings are views into their batch's buffers: a few open requests kept
    # from every batch would keep every batch's buffers alive (memory growing with the
    # log). A copy through Arrow's plain strings holds only these rows' bytes. Rows
    # carried from earlier batches were copied so when they were new.
    fresh = cast(
        pl.DataFrame,
        pl.from_arrow(new_reqs.filter(unmatched).to_arrow(compat_level=pl.CompatLevel.oldest())),
    )
    still_open = pl.concat(
        [untouched, old.filter(unmatched), fresh.select(open_reqs.columns)],
        how="vertical_relaxed",
    ).rechunk()
    return still_open, unpaired


def _touched(responses: pl.DataFrame, inbound: pl.DataFrame) -> pl.Expr:
    """Which open requests a batch's responses might pair with or its cancellations
    name: a superset of what pair_responses and _stage_cancels can match.

    A response logged under 'proxy' may answer a call on any route; one logged under a
    REPL only a call to that REPL or to an unknown route (pipeline/transform/pair.py).
    """
    keyed = responses.filter(pl.col("id_key").is_not_null()).select(
        "id_key", route=pl.col("response_route")
    )
    by_proxy = keyed.filter(pl.col("route") == PROXY_ROUTE)["id_key"].implode()
    by_repl = keyed.filter(pl.col("route") != PROXY_ROUTE)
    on_route = by_repl.select(pl.struct("id_key", "route")).to_series().implode()
    pairable = (
        pl.col("id_key").is_in(by_proxy)
        | pl.struct("id_key", "route").is_in(on_route)
        | ((pl.col("route") == ANY_ROUTE) & pl.col("id_key").is_in(by_repl["id_key"].implode()))
    )
    cancelled = (
        inbound.filter(pl.col("method") == "notifications/cancelled")
        .get_column("cancel_request_id_json")
        .drop_nulls()
        .str.strip_chars('"')
    )
    return (pairable | pl.col("id_text").is_in(cancelled.implode())).fill_null(False)


def _stage_new_requests(requests: pl.DataFrame, staging: Staging, summary: RunSummary) -> None:
    # Calls are staged when answered or at the end of the run (_stage_executions).
    summary.executions_new += int((requests["method"] == "tools/call").sum())
    others = requests.filter(pl.col("method") != "tools/call").select(
        interaction_id=pl.col("interaction_id"),
        id_json=pl.col("id_key"),
        method=pl.col("method"),
        session_id=pl.col("session_id"),
        source_session_id=pl.col("source_session_id"),
        client_name=pl.col("client_name"),
        route=pl.col("route"),
        request_time=pl.col("ts"),
        input_size=pl.col("content_bytes"),
        params=pl.col("params_json"),
    )
    staging.append("requests", others)
    stateless = (
        requests.filter(pl.col("meta_client_name").is_not_null())
        .sort("interaction_id")
        .unique("session_id", keep="first", maintain_order=True)
        .select(
            session_id=pl.col("session_id"),
            client_name=pl.col("meta_client_name"),
            client_version=pl.col("meta_client_version"),
            protocol_version=pl.col("meta_protocol_version"),
            capabilities=pl.col("meta_capabilities"),
            first_seen=pl.col("ts"),
            interaction_id=pl.col("interaction_id"),
        )
    )
    staging.append("stateless_clients", stateless)


def _stage_executions(
    calls: pl.DataFrame, staging: Staging, unanswered: pl.Expr | None = None
) -> None:
    """Whole tool_executions rows for calls first seen this run: answered ones (from
    _stage_responses) to `executions`; with `unanswered` (their status), the calls
    still unanswered at the end of the run, with null response columns, to
    `executions_open` (load.staged_calls_tables says why apart)."""
    if unanswered is not None:
        # A cancelled call gets the status and duration queries/load_calls.sql would
        # give it (its status pass still decides, and writes only what differs).
        cancelled = pl.col("cancel_iid").is_not_null()
        calls = calls.with_columns(
            response_iid=pl.lit(None, pl.Int64),
            ts=pl.lit(None, pl.String),
            ts_ms_resp=pl.col("cancel_ts_ms"),
            content_bytes=pl.lit(None, pl.Int64),
            result_type=pl.lit(None, pl.String),
            result_summary=pl.lit(None, pl.String),
            error_code=pl.lit(None, pl.Int64),
            has_structured_content=pl.lit(None, pl.Boolean),
            status=pl.when(cancelled).then(pl.lit("cancelled")).otherwise(unanswered),
            response_route=pl.lit(None, pl.String),
        )
    # In id order: the staged calls' rowid is the id, and SQLite inserts a batch in key
    # order as appends (the answered calls of a batch came in join order: 1.86 s of the
    # writer's CPU for the 1M log's calls, in id order 1.44 s).
    staging.append(
        "executions" if unanswered is None else "executions_open",
        calls.select(
            # The request row: stable across runs and rebuilds (a counter was not).
            id=pl.col("request_iid"),
            session_id=pl.col("session_id"),
            request_id=pl.col("id_text"),
            tool_name=pl.col("tool_name").fill_null("unknown"),
            tool_method=pl.col("method"),
            request_time=pl.col("request_time"),
            input_size=pl.col("input_size"),
            argument_count=pl.col("argument_count"),
            arguments=pl.col("arguments"),
            interaction_request_id=pl.col("request_iid"),
            source_session_id=pl.col("source_session_id"),
            client_name=pl.col("client_name"),
            request_id_type=pl.col("request_id_type"),
            request_id_json=pl.col("id_key"),
            route=pl.col("route"),
            is_proxy_tool=pl.col("is_proxy_tool"),
            request_date=pl.col("request_time").str.slice(0, 10),
            **_response_columns(),
            interaction_cancel_id=pl.col("cancel_iid"),
            cancel_time=pl.col("cancel_time"),
            cancel_reason=pl.col("cancel_reason"),
        ).sort("id"),
    )


def _response_columns() -> dict[str, pl.Expr]:
    """The tool_executions columns a call takes from its response (answered frames)."""
    return {
        "interaction_response_id": pl.col("response_iid"),
        "response_time": pl.col("ts"),
        "duration_ms": (pl.col("ts_ms_resp") - pl.col("ts_ms")).cast(pl.Float64),
        "output_size": pl.col("content_bytes"),
        "result_type": pl.col("result_type"),
        "result_summary": pl.col("result_summary"),
        "error_code": pl.col("error_code"),
        "has_structured_content": pl.col("has_structured_content"),
        "status": pl.col("status"),
        "answered_by": pl.col("response_route"),
    }


def _stage_responses(answered: pl.DataFrame, staging: Staging) -> None:
    _stage_executions(answered.filter(pl.col("is_tool_call") & ~pl.col("staged")), staging)
    calls = answered.filter(pl.col("is_tool_call") & pl.col("staged"))
    staging.append(
        "execution_responses",
        calls.select(interaction_request_id=pl.col("request_iid"), **_response_columns()),
    )
    staging.append(
        "request_responses",
        answered.filter(~pl.col("is_tool_call")).select(
            interaction_request_id=pl.col("request_iid"),
            interaction_response_id=pl.col("response_iid"),
            response_time=pl.col("ts"),
            output_size=pl.col("content_bytes"),
            response_is_error=pl.col("has_error") | pl.col("is_error"),
        ),
    )


def _stage_cancels(
    inbound: pl.DataFrame, candidates: pl.DataFrame, pairs: pl.DataFrame, staging: Staging
) -> pl.DataFrame:
    """notifications/cancelled from the same client cancels its open call with that id.

    Ids are unique within a client session, so the client and the id (as text: clients
    disagree on quoting) name the call; a cancel counts only while no response came,
    and only the first cancellation of a call counts. Returns the candidates with the
    first cancellation of each call first seen in this run set: such a call is staged
    whole, cancellation included (_stage_executions). A call of an earlier run is a row
    of the target already: its cancellation is staged apart (execution_cancels) and
    applied by queries/load_calls.sql, which keeps the first one. Setting them all
    there took 3.1 s of a 5M full run's write lock.
    """
    cancels = inbound.filter(
        (pl.col("method") == "notifications/cancelled")
        & pl.col("cancel_request_id_json").is_not_null()
    ).select(
        cancel_iid=pl.col("interaction_id"),
        session_id=pl.col("session_id"),
        id_text=pl.col("cancel_request_id_json").str.strip_chars('"'),
        cancel_time=pl.col("ts"),
        cancel_reason=pl.col("cancel_reason"),
        cancel_ts_ms=pl.col("ts_ms"),
    )
    if cancels.is_empty():
        return candidates
    calls = (
        candidates.filter(pl.col("is_tool_call"))
        .join(pairs, on="request_iid", how="left")
        .select(
            "request_iid",
            "session_id",
            "id_text",
            "response_iid",
            "staged",
            cancelled_before=pl.col("cancel_iid").is_not_null(),
        )
        .sort("request_iid")
    )
    hits = (
        cancels.sort("cancel_iid")
        .join_asof(
            calls,
            left_on="cancel_iid",
            right_on="request_iid",
            by=["session_id", "id_text"],
            strategy="backward",
            check_sortedness=False,
        )
        .filter(
            pl.col("request_iid").is_not_null()
            & (pl.col("response_iid").is_null() | (pl.col("response_iid") > pl.col("cancel_iid")))
        )
        .sort("cancel_iid")
        .unique("request_iid", keep="first", maintain_order=True)
    )
    staging.append(
        "execution_cancels",
        hits.filter(pl.col("staged")).select(
            interaction_request_id=pl.col("request_iid"),
            interaction_cancel_id=pl.col("cancel_iid"),
            cancel_time=pl.col("cancel_time"),
            cancel_reason=pl.col("cancel_reason"),
        ),
    )
    # A call cancelled in an earlier batch keeps that cancellation.
    first = hits.filter(~pl.col("staged") & ~pl.col("cancelled_before")).select(
        "request_iid", *(pl.col(c).alias(f"{c}_new") for c in CANCEL_COLUMNS)
    )
    if first.is_empty():
        return candidates
    return (
        candidates.join(first, on="request_iid", how="left", maintain_order="left")
        .with_columns(pl.coalesce(f"{c}_new", c).alias(c) for c in CANCEL_COLUMNS)
        .select(candidates.columns)
    )


CANCEL_COLUMNS = ("cancel_iid", "cancel_time", "cancel_reason", "cancel_ts_ms")


def _unpaired(responses: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """A result that answers no open request is recorded, not dropped: its etl_rejects
    row, without its excerpt (_with_excerpts).

    Responses only pair with earlier requests, so one unpaired now stays unpaired.
    Failed ones are already rows of `errors`.
    """
    lost = responses.join(pairs, on="response_iid", how="anti").filter(
        ~(pl.col("has_error") | pl.col("is_error"))
    )
    return lost.select(
        source_table=pl.lit("interactions"),
        source_id=pl.col("response_iid"),
        reason=pl.lit(REJECT_UNPAIRED),
        excerpt=pl.lit(None, pl.String),
    )


def _stage_rejects(rejected: pl.DataFrame, staging: Staging, summary: RunSummary) -> None:
    """Stage etl_rejects rows and count them by reason in the run's summary."""
    staging.append("rejects", rejected)
    for reason, count in rejected.group_by("reason").len().iter_rows():
        summary.rejects[reason] = summary.rejects.get(reason, 0) + count


def _with_excerpts(reader: BatchReader, rejected: pl.DataFrame) -> pl.DataFrame:
    """etl_rejects rows of interactions, with the excerpts of their rows read from the
    source (queries/source_excerpts.sql says why they are read apart)."""
    if rejected.is_empty():
        return rejected
    texts = reader.excerpts(rejected["source_id"])
    return rejected.drop("excerpt").join(
        texts, left_on="source_id", right_on="interaction_id", how="left", maintain_order="left"
    )


def _stage_errors(
    responses: pl.DataFrame,
    pairs: pl.DataFrame,
    candidates: pl.DataFrame,
    staging: Staging,
    summary: RunSummary,
) -> None:
    """One errors row per JSON-RPC error response and per isError result (SPEC §3)."""
    failed = responses.filter(pl.col("has_error") | pl.col("is_error"))
    if failed.is_empty():
        return
    request_ctx = candidates.select(
        "request_iid",
        "is_tool_call",
        req_session=pl.col("session_id"),
        req_method=pl.col("method"),
        req_tool=pl.col("tool_name"),
        req_id_text=pl.col("id_text"),
        req_client=pl.col("client_name"),
        req_input=pl.col("arguments"),
    )
    ctx = failed.join(pairs, on="response_iid", how="left").join(
        request_ctx, on="request_iid", how="left"
    )
    # isError exists only on tools/call results, so it is a tool error even unpaired.
    is_tool = pl.col("is_tool_call").fill_null(False) | ~pl.col("has_error")
    rows = ctx.select(
        session_id=pl.coalesce("req_session", "source_session_id"),
        timestamp=pl.col("ts"),
        error_type=pl.when(is_tool).then(pl.lit("tool_error")).otherwise(pl.lit("protocol_error")),
        error_code=pl.col("error_code"),
        error_category=error_category(
            pl.col("error_code"), pl.col("error_message").fill_null(""), ~pl.col("has_error")
        ),
        tool_name=pl.col("req_tool"),
        method=pl.coalesce("req_method", "row_method"),
        request_id=pl.coalesce("req_id_text", "id_text"),
        message=pl.when(pl.col("has_error"))
        .then(pl.col("error_message"))
        .otherwise(pl.col("first_text"))
        .fill_null(""),
        stack_trace=pl.col("error_data"),
        client_info=client_info(pl.col("req_client")),
        input_that_caused_error=pl.col("req_input"),
        interaction_id=pl.col("response_iid"),
        event_id=pl.lit(None, pl.Int64),
        error_key=pl.format("i:{}", pl.col("response_iid")),
        error_source=pl.when(pl.col("has_error"))
        .then(pl.lit("jsonrpc_error"))
        .otherwise(pl.lit("is_error_result")),
        interaction_request_id=pl.col("request_iid"),
        source_session_id=pl.col("source_session_id"),
    )
    staging.append("errors", rows)
    summary.errors_new += rows.height


__all__ = ["RunSummary", "run"]
