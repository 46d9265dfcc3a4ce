"""Derive performance_metrics, client_sessions and session_lifecycle from the facts.

Runs inside the run's write transaction, after the new rows are applied (load.py), so
the derived tables always agree with tool_executions, errors and the ETL's bookkeeping.
Only what the run's rows touched is recomputed: the day buckets of the executions it
added, reset or answered; the client sessions it attributed requests to; REPLs are few
and recomputed whole. A lifecycle is replaced only when it changed, so the set of days
whose rows changed (for the Parquet export) stays as small as the change.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import polars as pl
import pyarrow as pa

from pipeline.engine import duckdb_connect
from pipeline.load import run_file
from pipeline.queries import quote_sql_string, sql
from pipeline.transform.decode import ts_ms
from pipeline.transform.metrics import METRIC_COLUMNS, latency_metrics
from pipeline.transform.sessions import (
    LIFECYCLE_COLUMNS,
    SESSION_COLUMNS,
    Activity,
    SessionFacts,
    client_lifecycle,
    client_sessions,
    lifecycle_start,
    repl_lifecycle,
)


@dataclass(frozen=True)
class DeriveParams:
    newest_ts: str | None
    idle_timeout_ms: int
    init_window_ms: int
    closed_sessions: Mapping[str, str]  # client session -> time the producer closed it


def mark_before(
    conn: sqlite3.Connection, settled_iid: int, events_wm: int, recheck_all: bool
) -> None:
    """Before the rollback: remember what it is about to undo."""
    run_file(
        conn,
        "derive_mark_before",
        {"settled_iid": settled_iid, "events_wm": events_wm, "recheck_all": int(recheck_all)},
    )


def mark_after(conn: sqlite3.Connection, settled_iid: int) -> None:
    """After the staged rows are applied: add what they touch."""
    run_file(conn, "derive_mark_after", {"settled_iid": settled_iid})


@dataclass(frozen=True)
class StagedFacts:
    """What derive reads from tool_executions and etl_requests, read from a full run's
    staging file instead (read_staged_facts)."""

    latency: dict[str, pl.DataFrame]  # day -> its performance_metrics rows
    activity: list[tuple[Any, ...]]  # etl_session_activity rows (ACTIVITY_COLUMNS)
    times: pl.DataFrame | None  # every session's activity times (_activity_times)


def read_staged_facts(staging: Path) -> StagedFacts:
    """A full run's derive inputs, read from its staging file while its load runs.

    After a full load, tool_executions and etl_requests hold exactly the staged rows:
    the load only copies them, and what it changes afterwards (the status and duration
    of unanswered calls) is read by none of these. Reading them here, on a thread, takes
    the three largest reads of derive (4 s of the 1M full run) out of the write
    transaction, where they ran on the one busy core.

    All three go through DuckDB (queries/derive_staged_*.sql). The large two fill
    Arrow columns in C++ without the GIL: reading them into Python rows cost 3 s of
    CPU that the load then had to share its core with. The session totals are
    queries/derive_session_activity.sql's, aggregated by hashing instead of SQLite's
    sort. Two copies of SQLite reading one file is safe here (pipeline/run.py says when
    it is not): nothing writes the file any more (Staging.finish), and no other process
    opens it.
    """
    duck = duckdb_connect()
    try:
        duck.execute(
            f"ATTACH {quote_sql_string(str(staging.resolve()))} AS stg (TYPE sqlite, READ_ONLY)"
        )
        activity = duck.execute(sql("derive_staged_activity")).fetchall()
        latency = _staged_latency(
            duck.execute(sql("derive_staged_latency")).to_arrow_reader(FETCH_ROWS)
        )
        times = None
        if activity:
            sessions = pl.Enum([row[0] for row in activity])  # every staged session, sorted
            reader = duck.execute(sql("derive_staged_times")).to_arrow_reader(FETCH_ROWS)
            chunks = [_times_frame(_frame(batch), sessions) for batch in reader]
            times = pl.concat(chunks) if chunks else None
    finally:
        duck.close()
    return StagedFacts(latency, activity, times)


def _frame(batch: pa.RecordBatch) -> pl.DataFrame:
    return cast(pl.DataFrame, pl.from_arrow(batch))


def _staged_latency(reader: pa.RecordBatchReader) -> dict[str, pl.DataFrame]:
    """Each day's metric rows from the answered calls (LATENCY_COLUMNS, request_date),
    read in day order."""
    latency: dict[str, pl.DataFrame] = {}
    day: str | None = None
    parts: list[pl.DataFrame] = []
    for batch in reader:
        for part in _frame(batch).partition_by("request_date", maintain_order=True):
            if part["request_date"][0] != day:
                if day is not None:
                    latency[day] = latency_metrics(pl.concat(parts))
                day, parts = part["request_date"][0], []
            parts.append(part.drop("request_date"))
    if day is not None:
        latency[day] = latency_metrics(pl.concat(parts))
    return latency


def derive(
    conn: sqlite3.Connection, params: DeriveParams, staged: StagedFacts | None = None
) -> list[str]:
    """Recompute the derived tables where needed; return the days whose rows changed.

    staged: a full run's inputs, read from its staging file (read_staged_facts).
    """
    _latency(conn, None if staged is None else staged.latency)
    before = {
        row[0]: (row[1], row[2])
        for row in conn.execute("SELECT session_id, status, disconnect_time FROM client_sessions")
    }
    sessions = _client_sessions(conn, params, None if staged is None else staged.activity)
    days = {str(d) for (d,) in conn.execute("SELECT day FROM temp.touched_days") if d}
    days |= _client_lifecycles(
        conn, sessions, before, params, None if staged is None else staged.times
    )
    days |= _repl_lifecycles(conn)
    return sorted(days)


def _insert(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    marks = ", ".join("?" for _ in columns)
    # Table and column names are our constants; values are bound.
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
    conn.executemany(statement, rows)


# The answered calls whose durations make the latency metrics.
LATENCY_COLUMNS = "tool_name, request_time, duration_ms, status"
LATENCY_FILTER = "status IN ('success', 'error') AND duration_ms IS NOT NULL"


def _latency(conn: sqlite3.Connection, staged: Mapping[str, pl.DataFrame] | None) -> None:
    """performance_metrics tool_execution rows of every touched day, from scratch.

    Day by day: buckets never cross a day, and memory stays that of the busiest day
    whatever the size of the log. staged: each day's rows, already computed.
    """
    conn.execute(
        "DELETE FROM performance_metrics WHERE metric_type = 'tool_execution' "
        "AND metric_date IN (SELECT day FROM temp.dirty_days)"
    )
    days = [d for (d,) in conn.execute("SELECT day FROM temp.dirty_days ORDER BY day")]
    for day in days:
        if staged is not None:
            metrics = staged.get(day)
        else:
            metrics = _latency_metrics(
                conn.execute(
                    f"SELECT {LATENCY_COLUMNS} FROM tool_executions "  # noqa: S608
                    f"WHERE request_date = ? AND {LATENCY_FILTER}",
                    (day,),
                ).fetchall()
            )
        if metrics is not None:
            _insert(conn, "performance_metrics", METRIC_COLUMNS, metrics.iter_rows())


def _latency_metrics(rows: list[Any]) -> pl.DataFrame | None:
    """The metric rows of one day's answered calls (LATENCY_COLUMNS), None for none."""
    if not rows:
        return None
    executions = pl.DataFrame(
        rows,
        schema={
            "tool_name": pl.String,
            "request_time": pl.String,
            "duration_ms": pl.Float64,
            "status": pl.String,
        },
        orient="row",
    )
    return latency_metrics(executions)


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


ACTIVITY_COLUMNS = (
    "session_id",
    "requests",
    "errors",
    "bytes_in",
    "bytes_out",
    "first_activity",
    "last_activity",
    "top_repl",
)


def _client_sessions(
    conn: sqlite3.Connection, params: DeriveParams, staged: list[tuple[Any, ...]] | None
) -> list[dict[str, Any]]:
    """Rebuild client_sessions (one row per client session; small) from the facts.

    staged: the etl_session_activity rows of the dirty sessions, already computed.
    """
    if staged is None:
        run_file(conn, "derive_session_activity")
    else:
        conn.execute(
            "DELETE FROM etl_session_activity "
            "WHERE session_id IN (SELECT session_id FROM temp.dirty_sessions)"
        )
        _insert(conn, "etl_session_activity", ACTIVITY_COLUMNS, staged)
    activity = {
        row[0]: Activity(*row[1:])
        for row in conn.execute(
            f"SELECT {', '.join(ACTIVITY_COLUMNS)} FROM etl_session_activity"  # noqa: S608
        )
    }
    facts = SessionFacts(
        initialized=_dicts(
            conn.execute(
                "SELECT session_id, client_name, target_repl, capabilities, initialized_at, "
                "event_id FROM etl_client_map ORDER BY session_id"
            )
        ),
        inits=_dicts(conn.execute(sql("derive_initialize_requests"))),
        stateless=_dicts(
            conn.execute(
                "SELECT session_id, client_name, client_version, protocol_version, "
                "capabilities, first_seen FROM etl_stateless_clients ORDER BY session_id"
            )
        ),
        activity=activity,
        closed=params.closed_sessions,
    )
    rows = client_sessions(facts, params.newest_ts, params.idle_timeout_ms, params.init_window_ms)
    conn.execute("DELETE FROM client_sessions")
    _insert(
        conn, "client_sessions", SESSION_COLUMNS, ([r[c] for c in SESSION_COLUMNS] for r in rows)
    )
    return rows


def _lifecycle_rows(
    conn: sqlite3.Connection, where: str, args: Sequence[Any]
) -> dict[str, list[tuple[Any, ...]]]:
    """Stored lifecycle rows per session: (id, *LIFECYCLE_COLUMNS)."""
    cols = ", ".join(LIFECYCLE_COLUMNS)
    # `where` is one of our constant clauses; values are bound.
    query = f"SELECT id, {cols} FROM session_lifecycle WHERE {where}"  # noqa: S608
    out: dict[str, list[tuple[Any, ...]]] = {}
    for row in conn.execute(query, args):
        out.setdefault(row[1], []).append(tuple(row))
    return out


def _replace_changed(
    conn: sqlite3.Connection,
    old: Mapping[str, list[tuple[Any, ...]]],
    new: Mapping[str, list[dict[str, Any]]],
) -> set[str]:
    """Make the stored lifecycles equal the new ones; return the days whose rows changed.

    Only rows that differ are deleted or inserted: unchanged rows keep their ids, and the
    days they are on stay untouched for the Parquet export.
    """
    days: set[str] = set()
    date_at = LIFECYCLE_COLUMNS.index("lifecycle_date")
    for sid in sorted(set(old) | set(new)):
        remaining = Counter(tuple(r[c] for c in LIFECYCLE_COLUMNS) for r in new.get(sid, []))
        stale: list[int] = []
        for row_id, *values in old.get(sid, []):
            key = tuple(values)
            if remaining[key] > 0:
                remaining[key] -= 1
            else:
                stale.append(row_id)
                days.add(str(key[date_at]))
        added = list(remaining.elements())
        if stale:
            conn.executemany("DELETE FROM session_lifecycle WHERE id = ?", [(i,) for i in stale])
        if added:
            _insert(conn, "session_lifecycle", LIFECYCLE_COLUMNS, added)
            days |= {str(r[date_at]) for r in added}
    return days


def _client_lifecycles(
    conn: sqlite3.Connection,
    sessions: list[dict[str, Any]],
    before: Mapping[str, tuple[Any, ...]],
    params: DeriveParams,
    staged_times: pl.DataFrame | None,
) -> set[str]:
    """Recompute the lifecycle of every client session whose facts changed this run.

    A session is redone when its requests changed (dirty), its ending changed (idle
    timeout, explicit close: `before` holds the previous status and disconnect time),
    or it is new. staged_times: the activity times of every session, already read.
    """
    dirty = {sid for (sid,) in conn.execute("SELECT session_id FROM temp.dirty_sessions")}
    redo = [
        s
        for s in sessions
        if s["session_id"] in dirty
        or before.get(s["session_id"]) != (s["status"], s["disconnect_time"])
    ]
    initialized_at = dict(
        conn.execute("SELECT session_id, initialized_at FROM etl_client_map").fetchall()
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS redo_sessions (session_id TEXT PRIMARY KEY, start TEXT)"
    )
    conn.execute("DELETE FROM temp.redo_sessions")
    conn.executemany(
        "INSERT INTO temp.redo_sessions (session_id, start) VALUES (?, ?)",
        [(s["session_id"], lifecycle_start(s, initialized_at.get(s["session_id"]))) for s in redo],
    )
    times = (
        _activity_times(conn, scan_all=len(redo) * 2 >= len(sessions))
        if staged_times is None
        else staged_times
    )
    activity = _session_gaps(conn, times, params.idle_timeout_ms)
    new = {
        s["session_id"]: client_lifecycle(
            s, initialized_at.get(s["session_id"]), activity, params.idle_timeout_ms
        )
        for s in redo
    }
    old = _lifecycle_rows(
        conn,
        "entity_type = 'client' AND session_id IN (SELECT session_id FROM temp.redo_sessions)",
        (),
    )
    # Sessions that no longer exist (a rebuild found none) lose their lifecycle.
    known = {s["session_id"] for s in sessions}
    for sid, rows in _lifecycle_rows(conn, "entity_type = 'client'", ()).items():
        if sid not in known:
            old[sid] = rows
    return _replace_changed(conn, old, new)


# Rows per Arrow batch of a full run's staged reads.
FETCH_ROWS = 100_000


# An incremental run reads the activity times of its sessions as texts SQLite joins, one
# per session and table and range of TIMES_KEY_SHIFT bits of row keys (at most 131,072
# rows, about 8 MB): a row's key, request time and response time between unit
# separators, rows between record separators (neither occurs in a key or a timestamp).
# Handed over as one Python tuple per row, the 50,010 rows of the 1M log's last day took
# 0.24 s, as joined texts split by Polars 0.15 s.
TIMES_KEY_SHIFT = 17
TIMES_GROUPS = 8  # joined texts fetched at a time
UNIT_SEP, RECORD_SEP = "\x1f", "\x1e"


def _activity_times(conn: sqlite3.Connection, *, scan_all: bool) -> pl.DataFrame | None:
    """Every activity time (request or response time of a call or other request) of the
    sessions in temp.redo_sessions, as (tbl, key, session_id, t, resp); None for none.

    Only numbers are kept (the session as an enum of those sessions, times in ms, where
    each time is: GAP_TABLES[tbl] row `key`, its response time if resp), so memory stays
    small on long logs. The rows are read in table order when most sessions are redone
    (a full run): through the session index SQLite would look every response time up
    row by row.
    """
    names = [s for (s,) in conn.execute("SELECT session_id FROM temp.redo_sessions")]
    if not names:
        return None
    sessions = pl.Enum(sorted(names))
    hint = " NOT INDEXED" if scan_all else ""
    unit, record = f"char({ord(UNIT_SEP)})", f"char({ord(RECORD_SEP)})"
    query = " UNION ALL ".join(
        f"SELECT {i}, session_id, group_concat({key} || {unit} || request_time || {unit} "  # noqa: S608
        f"|| COALESCE(response_time, ''), {record}) FROM {table}{hint} "
        "WHERE session_id IN (SELECT session_id FROM temp.redo_sessions) "
        f"GROUP BY session_id, {key} >> {TIMES_KEY_SHIFT}"
        for i, (table, key) in enumerate(GAP_TABLES)
    )
    schema = {"tbl": pl.Int8, "session_id": pl.String, "rows": pl.String}
    cursor = conn.execute(query)
    chunks = []
    while groups := cursor.fetchmany(TIMES_GROUPS):
        rows = (
            pl.DataFrame(groups, schema=schema, orient="row")
            .select("tbl", "session_id", pl.col("rows").str.split(RECORD_SEP))
            .explode("rows")
            .select(
                "tbl",
                "session_id",
                pl.col("rows")
                .str.split_exact(UNIT_SEP, 2)
                .struct.rename_fields(["key", "request_time", "response_time"]),
            )
            .unnest("rows")
            .with_columns(
                response_time=pl.when(pl.col("response_time") != "").then("response_time")
            )
        )
        chunks.append(_times_frame(rows, sessions))
    return pl.concat(chunks) if chunks else None


def _times_frame(rows: pl.DataFrame, sessions: pl.Enum) -> pl.DataFrame:
    """Rows (tbl, key, session_id, request_time, response_time) as activity times."""
    frame = rows.select(
        pl.col("tbl").cast(pl.Int8),
        pl.col("key").cast(pl.Int64),
        pl.col("session_id").cast(sessions),
        ts_ms("request_time"),
        ts_ms("response_time"),
    )
    return pl.concat(
        [
            frame.select("tbl", "key", "session_id", t=pl.col("request_time"), resp=pl.lit(False)),
            frame.select(
                "tbl", "key", "session_id", t=pl.col("response_time"), resp=pl.lit(True)
            ).drop_nulls("t"),
        ]
    )


def _session_gaps(
    conn: sqlite3.Connection, times: pl.DataFrame | None, idle_ms: int
) -> dict[str, tuple[str | None, list[tuple[str, str]]]]:
    """For each session in temp.redo_sessions: its first activity at or after its start,
    and every idle gap longer than idle_ms between two consecutive activity times, as
    (before, after). times: from _activity_times, of these sessions or more.

    SQLite's window function took 5 s over the 1M-row log's million activity times;
    Polars sorts and compares them in a fraction of a second. The texts of the few times
    that bound a gap are read back at the end.
    """
    starts = dict(conn.execute("SELECT session_id, start FROM temp.redo_sessions").fetchall())
    if not starts or times is None:
        return {}
    sessions = times.schema["session_id"]
    if not isinstance(sessions, pl.Enum):
        msg = f"activity times need the session as an Enum, not {sessions}"
        raise TypeError(msg)
    known = set(sessions.categories.to_list())
    start_ms = pl.DataFrame(
        {
            "session_id": [s for s in starts if s in known],
            "start": [t for s, t in starts.items() if s in known],
        },
        schema={"session_id": sessions, "start": pl.String},
    ).select("session_id", start=ts_ms("start"))
    found = (
        times.join(start_ms, on="session_id")
        .filter(pl.col("t") >= pl.col("start"))
        .sort("session_id", "t")
        .with_columns(
            before=pl.col("t").shift(1).over("session_id"),
            before_tbl=pl.col("tbl").shift(1).over("session_id"),
            before_key=pl.col("key").shift(1).over("session_id"),
            before_resp=pl.col("resp").shift(1).over("session_id"),
        )
        .filter(pl.col("before").is_null() | ((pl.col("t") - pl.col("before")) > idle_ms))
    )
    activity: dict[str, tuple[str | None, list[tuple[str, str]]]] = {}
    for sid, tbl, key, resp, b_tbl, b_key, b_resp in found.select(
        "session_id", "tbl", "key", "resp", "before_tbl", "before_key", "before_resp"
    ).iter_rows():
        after = _time_text(conn, tbl, key, resp)
        _, gaps = activity.setdefault(sid, (None, []))
        if b_key is None:
            activity[sid] = (after, gaps)  # the first activity
        else:
            gaps.append((_time_text(conn, b_tbl, b_key, b_resp), after))
    return activity


# The tables whose rows are a session's activity, in _activity_times' `tbl` order, with
# the source row that names a row in each (the same in the staged rows).
GAP_TABLES = (("tool_executions", "interaction_request_id"), ("etl_requests", "interaction_id"))


def _time_text(conn: sqlite3.Connection, tbl: int, key: int, resp: bool) -> str:
    """The stored text of one activity time (request or response time of a row)."""
    column = "response_time" if resp else "request_time"
    table, key_column = GAP_TABLES[tbl]
    # Table and column names are our constants.
    query = f"SELECT {column} FROM {table} WHERE {key_column} = ?"  # noqa: S608
    return str(conn.execute(query, (key,)).fetchone()[0])


def _repl_lifecycles(conn: sqlite3.Connection) -> set[str]:
    """Recompute the lifecycle of each REPL whose facts changed this run (temp.dirty_repls,
    derive_mark_before.sql) from its registry events and failed calls."""
    events: dict[str, list[dict[str, Any]]] = {}
    for event_id, repl_id, event_type, ts, data in conn.execute(
        "SELECT event_id, repl_id, event_type, timestamp, data FROM etl_repl_events "
        "WHERE repl_id IN (SELECT repl_id FROM temp.dirty_repls)"
    ):
        events.setdefault(repl_id, []).append(
            {"order_key": event_id, "event_type": event_type, "timestamp": ts, "data": data}
        )
    for error_key, repl_id, ts, message in conn.execute(
        "SELECT error_key, source_session_id, timestamp, message FROM errors "
        "WHERE error_source = 'request_error_event' "
        "AND source_session_id IN (SELECT repl_id FROM temp.dirty_repls)"
    ):
        events.setdefault(repl_id, []).append(
            {
                "order_key": error_key,
                "event_type": "request.error",
                "timestamp": ts,
                "message": message,
            }
        )

    def first_success_after(repl_id: str, ts: str) -> str | None:
        row = conn.execute(
            "SELECT response_time FROM tool_executions WHERE answered_by = ? "
            "AND request_time > ? AND status = 'success' ORDER BY request_time LIMIT 1",
            (repl_id, ts),
        ).fetchone()
        return None if row is None else str(row[0])

    new = {rid: repl_lifecycle(rid, evs, first_success_after) for rid, evs in events.items()}
    old = _lifecycle_rows(
        conn, "entity_type = 'repl' AND session_id IN (SELECT repl_id FROM temp.dirty_repls)", ()
    )
    return _replace_changed(conn, old, new)
