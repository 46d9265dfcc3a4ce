"""Export the five analytics tables as hive-partitioned Parquet for notebooks and BI tools.

Layout (docs/bi.md): DIR/<table>/date=YYYY-MM-DD/part-0.parquet for the partitioned
tables, DIR/client_sessions/part-0.parquet (small, dimension-like, unpartitioned) and
DIR/_manifest.json. Every partition is one file, so replacing a partition is one
os.replace: a reader sees the old file or the new one, never half of either. New files
are all written into a staging folder first and only then renamed into place, so an
export killed while writing leaves every previous file as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import BadInvocation, PipelineError
from pipeline.source import SourceInfo, connect_source

MANIFEST = "_manifest.json"
# Bumped when the folder layout or the manifest's meaning changes; a dataset written
# under another version is rewritten whole.
LAYOUT_VERSION = 1
PARTITION_KEY = "date"
PART_FILE = "part-0.parquet"
STAGING_PREFIX = ".staging-"
LOCK_FILE = ".export.lock"
# Rows per Arrow batch read from DuckDB: bounds memory, not the files.
BATCH_ROWS = 65_536
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

TS = pa.timestamp("ms")


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


# One explicit Arrow schema per table, column for column as in queries/schema.sql, so
# the files never depend on what a batch happens to contain. SQLite types map as
# INTEGER → int64, REAL → float64, TEXT → string, DATETIME → timestamp[ms] (local
# producer time, no zone, like the source), BOOLEAN → bool, and the TEXT *_date
# columns → date32. NOT NULL columns are non-nullable fields.
SCHEMAS: dict[str, pa.Schema] = {
    "tool_executions": pa.schema(
        [
            _f("id", pa.int64(), False),
            _f("session_id", pa.string(), False),
            _f("request_id", pa.string(), False),
            _f("tool_name", pa.string(), False),
            _f("tool_method", pa.string()),
            _f("request_time", TS, False),
            _f("response_time", TS),
            _f("duration_ms", pa.float64()),
            _f("input_size", pa.int64()),
            _f("output_size", pa.int64()),
            _f("argument_count", pa.int64()),
            _f("arguments", pa.string()),
            _f("status", pa.string(), False),
            _f("result_type", pa.string()),
            _f("result_summary", pa.string()),
            _f("interaction_request_id", pa.int64()),
            _f("interaction_response_id", pa.int64()),
            _f("source_session_id", pa.string()),
            _f("client_name", pa.string()),
            _f("error_code", pa.int64()),
            _f("has_structured_content", pa.int64()),
            _f("request_id_type", pa.string()),
            _f("request_id_json", pa.string()),
            _f("route", pa.string()),
            _f("is_proxy_tool", pa.int64()),
            _f("interaction_cancel_id", pa.int64()),
            _f("cancel_time", TS),
            _f("cancel_reason", pa.string()),
            _f("request_date", pa.date32()),
            _f("answered_by", pa.string()),
        ]
    ),
    "errors": pa.schema(
        [
            _f("id", pa.int64(), False),
            _f("session_id", pa.string(), False),
            _f("timestamp", TS, False),
            _f("error_type", pa.string(), False),
            _f("error_code", pa.int64()),
            _f("error_category", pa.string()),
            _f("tool_name", pa.string()),
            _f("method", pa.string()),
            _f("request_id", pa.string()),
            _f("message", pa.string(), False),
            _f("stack_trace", pa.string()),
            _f("client_info", pa.string()),
            _f("input_that_caused_error", pa.string()),
            _f("resolved", pa.bool_()),
            _f("resolution_notes", pa.string()),
            _f("interaction_id", pa.int64()),
            _f("event_id", pa.int64()),
            _f("error_key", pa.string(), False),
            _f("error_source", pa.string(), False),
            _f("interaction_request_id", pa.int64()),
            _f("source_session_id", pa.string()),
        ]
    ),
    "performance_metrics": pa.schema(
        [
            _f("id", pa.int64(), False),
            _f("session_id", pa.string(), False),
            _f("timestamp", TS, False),
            _f("metric_type", pa.string(), False),
            _f("metric_name", pa.string(), False),
            _f("duration_ms", pa.float64()),
            _f("throughput", pa.float64()),
            _f("memory_mb", pa.float64()),
            _f("cpu_percent", pa.float64()),
            _f("tool_name", pa.string()),
            _f("agent_id", pa.string()),
            _f("p50_ms", pa.float64()),
            _f("p95_ms", pa.float64()),
            _f("p99_ms", pa.float64()),
            _f("execution_count", pa.int64()),
            _f("error_count", pa.int64()),
            _f("min_ms", pa.float64()),
            _f("max_ms", pa.float64()),
            _f("bucket_seconds", pa.int64()),
            *(
                _f(f"hist_{b}", pa.int64())
                for b in (
                    "10ms",
                    "20ms",
                    "50ms",
                    "100ms",
                    "200ms",
                    "500ms",
                    "1s",
                    "2s",
                    "5s",
                    "10s",
                    "30s",
                    "60s",
                    "120s",
                    "300s",
                    "inf",
                )
            ),
            _f("rows_read", pa.int64()),
            _f("metric_date", pa.date32()),
        ]
    ),
    "client_sessions": pa.schema(
        [
            _f("id", pa.int64(), False),
            _f("session_id", pa.string(), False),
            _f("client_name", pa.string(), False),
            _f("client_version", pa.string()),
            _f("connect_time", TS, False),
            _f("disconnect_time", TS),
            _f("last_activity", TS),
            _f("supports_streaming", pa.bool_()),
            _f("supports_notifications", pa.bool_()),
            _f("supported_content_types", pa.string()),
            _f("protocol_version", pa.string()),
            _f("initialization_params", pa.string()),
            _f("target_repl", pa.string()),
            _f("total_requests", pa.int64()),
            _f("total_errors", pa.int64()),
            _f("total_data_sent", pa.int64()),
            _f("total_data_received", pa.int64()),
            _f("capabilities", pa.string()),
            _f("supports_roots", pa.bool_()),
            _f("supports_sampling", pa.bool_()),
            _f("supports_elicitation", pa.bool_()),
            _f("session_kind", pa.string(), False),
            _f("status", pa.string(), False),
            _f("initialize_interaction_id", pa.int64()),
            _f("initialized_event_id", pa.int64()),
            _f("connect_date", pa.date32()),
        ]
    ),
    "session_lifecycle": pa.schema(
        [
            _f("id", pa.int64(), False),
            _f("session_id", pa.string(), False),
            _f("timestamp", TS, False),
            _f("event_type", pa.string(), False),
            _f("from_state", pa.string()),
            _f("to_state", pa.string(), False),
            _f("reason", pa.string()),
            _f("triggered_by", pa.string()),
            _f("metadata", pa.string()),
            _f("entity_type", pa.string(), False),
            _f("lifecycle_date", pa.date32()),
        ]
    ),
}

# The day each row belongs to (DuckDB over the attached target), or None for a table
# written whole. The date columns are the partition keys the ETL fills; the timestamp
# is the fallback for a row written before it had one.
PARTITION_DAY: dict[str, str | None] = {
    "tool_executions": 'COALESCE(CAST("request_date" AS DATE), CAST("request_time" AS DATE))',
    "errors": 'CAST("timestamp" AS DATE)',
    "performance_metrics": 'COALESCE(CAST("metric_date" AS DATE), CAST("timestamp" AS DATE))',
    "client_sessions": None,
    "session_lifecycle": ('COALESCE(CAST("lifecycle_date" AS DATE), CAST("timestamp" AS DATE))'),
}
TABLES = tuple(SCHEMAS)


def duckdb_type(type_: pa.DataType) -> str:
    """The DuckDB type both query backends cast a column to (querylib uses it too)."""
    if pa.types.is_timestamp(type_):
        return "TIMESTAMP"
    if pa.types.is_date32(type_):
        return "DATE"
    if pa.types.is_int64(type_):
        return "BIGINT"
    if pa.types.is_float64(type_):
        return "DOUBLE"
    if pa.types.is_boolean(type_):
        return "BOOLEAN"
    if pa.types.is_string(type_):
        return "VARCHAR"
    msg = f"no DuckDB type for Arrow type {type_}"
    raise TypeError(msg)


def quote_ident(name: str) -> str:
    """Quote a column or table name from our own schemas for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def select_list(table: str) -> str:
    """Every column of the table cast to its DuckDB type, in the Arrow schema's order."""
    return ", ".join(
        f"CAST({quote_ident(f.name)} AS {duckdb_type(f.type)}) AS {quote_ident(f.name)}"
        for f in SCHEMAS[table]
    )


def schema_fingerprint(schema: pa.Schema) -> list[str]:
    """The schema as text, stored in the manifest so a changed schema forces a rewrite."""
    return [f"{f.name}:{f.type}{'' if f.nullable else ' not null'}" for f in schema]


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote, for the CLI line and the tests."""

    out_dir: Path
    mode: str  # full | incremental
    run_id: str | None
    partitions_written: int
    partitions_deleted: int
    rows_written: int
    rows: dict[str, int]
    seconds: float


class ExportError(PipelineError):
    """The Parquet export failed; the SQLite tables and the previous files are intact."""


def check_export_dir(out_dir: Path) -> None:
    """Refuse a folder an export must not write into, before anything runs (exit 2)."""
    if out_dir.exists() and not out_dir.is_dir():
        msg = f"--parquet {out_dir} is a file; give a folder (new, or one an export wrote)"
        raise BadInvocation(msg)
    if not out_dir.exists():
        if not out_dir.parent.is_dir():
            msg = f"the folder of --parquet {out_dir} does not exist; create it first"
            raise BadInvocation(msg)
        return
    if (out_dir / MANIFEST).exists():
        return
    # A folder without a manifest is ours only if it holds nothing but what an export
    # killed before its first manifest leaves: table folders and hidden scratch files.
    foreign = sorted(
        p.name for p in out_dir.iterdir() if p.name not in SCHEMAS and not p.name.startswith(".")
    )
    if foreign:
        msg = (
            f"--parquet {out_dir} holds {foreign[0]!r} and no {MANIFEST}; "
            "give an empty folder or one an earlier export wrote"
        )
        raise BadInvocation(msg)


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The dataset's manifest, or None when there is none (or it is not ours)."""
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("layout_version") != LAYOUT_VERSION:
        return None
    return data


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _target_metadata(target_db: Path) -> dict[str, str | None]:
    """etl_metadata and the columns present, read with plain sqlite3 (read-only)."""
    uri = f"{target_db.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            missing = [t for t in (*TABLES, "etl_metadata", "error_resolutions") if t not in tables]
            if missing:
                msg = (
                    f"{target_db} has no table {missing[0]}; "
                    "run `mcp-analytics etl` on it before exporting"
                )
                raise BadInvocation(msg)
            for table, schema in SCHEMAS.items():
                have = {r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}
                lacking = [f.name for f in schema if f.name not in have]
                if lacking:
                    msg = (
                        f"{target_db} table {table} lacks column {lacking[0]}; "
                        "run `mcp-analytics etl` with this version on it first"
                    )
                    raise BadInvocation(msg)
            return {str(k): v for k, v in conn.execute("SELECT key, value FROM etl_metadata")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        msg = f"cannot read {target_db}: {exc}"
        raise BadInvocation(msg) from exc


def _touched_days(meta: dict[str, str | None]) -> list[str] | None:
    """The days the last run changed, or None when that is unknown (rewrite all)."""
    raw = meta.get("touched_days")
    if raw is None:
        return None
    try:
        days = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(days, list) or not all(isinstance(d, str) and DAY_RE.match(d) for d in days):
        return None
    return sorted(set(days))


@dataclass(frozen=True)
class _Plan:
    mode: str
    # Days to rewrite in every partitioned table; None means every day (full).
    days: list[str] | None


def _plan(
    manifest: dict[str, Any] | None,
    meta: dict[str, str | None],
    target_db: Path,
) -> _Plan:
    """Incremental only when the files are exactly one run behind (or current)."""
    if manifest is None:
        return _Plan("full", None)
    same_shape = manifest.get("target") == str(target_db.resolve()) and all(
        manifest.get("tables", {}).get(t, {}).get("schema") == schema_fingerprint(s)
        for t, s in SCHEMAS.items()
    )
    run_id = meta.get("run_id")
    if not same_shape or run_id is None:
        return _Plan("full", None)
    if manifest.get("run_id") == run_id:
        return _Plan("incremental", [])
    if manifest.get("run_id") is None or manifest.get("run_id") != meta.get("previous_run_id"):
        return _Plan("full", None)
    days = _touched_days(meta)
    if days is None:
        return _Plan("full", None)
    return _Plan("incremental", days)


@contextlib.contextmanager
def _export_lock(out_dir: Path) -> Iterator[None]:
    """One export at a time per folder; the kernel drops the lock if the process dies."""
    fh = (out_dir / LOCK_FILE).open("a")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            msg = f"another export is writing {out_dir}; wait for it to finish"
            raise ExportError(msg) from exc
        yield
    finally:
        fh.close()


def _utc_now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def export_parquet(target_db: Path, out_dir: Path) -> ExportSummary:
    """Write (or bring up to date) the Parquet dataset of target_db under out_dir."""
    started = time.perf_counter()
    check_export_dir(out_dir)
    if not target_db.is_file():
        msg = f"database {target_db} does not exist; give the database the ETL wrote"
        raise BadInvocation(msg)
    meta = _target_metadata(target_db)
    try:
        out_dir.mkdir(exist_ok=True)
        with _export_lock(out_dir):
            return _export_locked(target_db, out_dir, meta, started)
    except OSError as exc:
        msg = f"cannot write the Parquet export in {out_dir}: {exc}; the previous files are intact"
        raise ExportError(msg) from exc


def _export_locked(
    target_db: Path, out_dir: Path, meta: dict[str, str | None], started: float
) -> ExportSummary:
    for leftover in out_dir.glob(f"{STAGING_PREFIX}*"):
        # A killed export's scratch files; nothing reads them.
        shutil.rmtree(leftover, ignore_errors=True)
    manifest = read_manifest(out_dir)
    plan = _plan(manifest, meta, target_db)
    # Resolutions are compared with the moment reading starts, in the UTC text form
    # `errors resolve` writes, so one made while this export runs is caught next time.
    read_at = _utc_now_text()
    staging = out_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        staged = _stage(target_db, manifest, plan, staging)
        if staged.run_id != meta.get("run_id"):
            msg = f"an ETL run committed to {target_db} while exporting; run the export again"
            raise ExportError(msg)
        written, deleted, tables = _publish(out_dir, staging, staged.rows, manifest, plan)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_json_atomic(
        out_dir / MANIFEST,
        {
            "layout_version": LAYOUT_VERSION,
            "run_id": meta.get("run_id"),
            "schema_version": meta.get("schema_version"),
            "target": str(target_db.resolve()),
            "read_at": read_at,
            "written_at": _utc_now_text(),
            "mode": plan.mode,
            "tables": tables,
        },
    )
    return ExportSummary(
        out_dir=out_dir,
        mode=plan.mode,
        run_id=meta.get("run_id"),
        partitions_written=written,
        partitions_deleted=deleted,
        rows_written=sum(n for s in staged.rows.values() for n in s.values()),
        rows={t: int(v["rows"]) for t, v in tables.items()},
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class _Staged:
    rows: dict[str, dict[str | None, int]]  # table → rows per day (None: unpartitioned)
    run_id: str | None  # the target's run id once everything was read


def _stage(target_db: Path, manifest: dict[str, Any] | None, plan: _Plan, staging: Path) -> _Staged:
    """Write every file the plan needs under staging; nothing visible changes yet."""
    conn = connect_source(SourceInfo(path=target_db, has_interactions=False))
    try:
        days: dict[str, list[str] | None] = dict.fromkeys(TABLES, plan.days)
        if plan.days is not None and manifest is not None:
            # Only errors.resolved changes without a run, so only errors needs those days.
            resolved = _resolved_days(conn, str(manifest.get("read_at", "")))
            days["errors"] = sorted(set(plan.days) | resolved)
        rows = {t: _stage_table(conn, t, days[t], staging) for t in TABLES}
        return _Staged(rows=rows, run_id=_run_id(conn))
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        msg = f"cannot read {target_db} for the Parquet export: {reason}"
        raise ExportError(msg) from exc
    finally:
        conn.close()


def _run_id(conn: duckdb.DuckDBPyConnection) -> str | None:
    row = conn.execute("SELECT value FROM src.etl_metadata WHERE key = 'run_id'").fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _resolved_days(conn: duckdb.DuckDBPyConnection, since: str) -> set[str]:
    """Days of errors resolved after the files were read: `errors resolve` edits in place."""
    if not since:
        return set()
    rows = conn.execute(
        "SELECT DISTINCT CAST(CAST(e.timestamp AS DATE) AS VARCHAR) "
        "FROM src.errors AS e JOIN src.error_resolutions AS r USING (error_key) "
        "WHERE r.resolved_at >= CAST($since AS TIMESTAMP)",
        {"since": since},
    ).fetchall()
    return {str(r[0]) for r in rows}


def _stage_table(
    conn: duckdb.DuckDBPyConnection, table: str, days: list[str] | None, staging: Path
) -> dict[str | None, int]:
    """Write the table's rows for `days` (all when None) under staging; rows per day.

    A partitioned table is read once, sorted by day, and streamed: each day's rows go
    to their own file as they come, so memory holds one batch, not the table.
    """
    schema = SCHEMAS[table]
    day_sql = PARTITION_DAY[table]
    folder = staging / table
    folder.mkdir()
    if day_sql is None:
        reader = conn.execute(
            f"SELECT {select_list(table)} FROM src.{quote_ident(table)} ORDER BY id"  # noqa: S608
        ).to_arrow_reader(BATCH_ROWS)
        with pq.ParquetWriter(folder / PART_FILE, schema, compression="zstd") as whole:
            rows = 0
            for batch in reader:
                whole.write_batch(_conform(batch, schema))
                rows += batch.num_rows
        return {None: rows}
    if days is not None and not days:
        return {}
    where = "" if days is None else "WHERE __day IN (SELECT UNNEST(CAST($days AS DATE[])))"
    params: dict[str, Any] = {} if days is None else {"days": days}
    # Names come from SCHEMAS (our constants); the days are bound.
    query = (
        f"SELECT * FROM (SELECT {select_list(table)}, {day_sql} AS __day "  # noqa: S608
        f"FROM src.{quote_ident(table)}) {where} ORDER BY __day, id"
    )
    reader = conn.execute(query, params).to_arrow_reader(BATCH_ROWS)
    counts: dict[str | None, int] = {}
    writer: pq.ParquetWriter | None = None
    current: str | None = None
    try:
        for batch in reader:
            day_values = batch.column(batch.num_columns - 1).to_pylist()
            data = _conform(batch.drop_columns(["__day"]), schema)
            offset = 0
            for day_value, run in itertools.groupby(day_values):
                length = sum(1 for _ in run)
                day = day_value.isoformat()
                if day != current:
                    if writer is not None:
                        writer.close()
                    part = folder / f"{PARTITION_KEY}={day}"
                    part.mkdir()
                    writer = pq.ParquetWriter(part / PART_FILE, schema, compression="zstd")
                    current = day
                    counts[day] = 0
                assert writer is not None
                writer.write_batch(data.slice(offset, length))
                counts[day] += length
                offset += length
    finally:
        if writer is not None:
            writer.close()
    if days is not None:
        # A day to rewrite that has no rows any more: its partition must go.
        for day in days:
            counts.setdefault(day, 0)
    return counts


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch in the table's exact schema (ms timestamps, nullability); a safe cast,
    so a value that does not fit (sub-millisecond time) fails instead of changing."""
    arrays = [batch.column(i).cast(f.type) for i, f in enumerate(schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _publish(
    out_dir: Path,
    staging: Path,
    staged: dict[str, dict[str | None, int]],
    manifest: dict[str, Any] | None,
    plan: _Plan,
) -> tuple[int, int, dict[str, Any]]:
    """Rename every staged file into place, drop vanished partitions; the new counts."""
    written = deleted = 0
    tables: dict[str, Any] = {}
    for table, counts in staged.items():
        dest = out_dir / table
        dest.mkdir(exist_ok=True)
        if PARTITION_DAY[table] is None:
            os.replace(staging / table / PART_FILE, dest / PART_FILE)
            written += 1
            tables[table] = {
                "partitioned_by": None,
                "rows": counts[None],
                "schema": schema_fingerprint(SCHEMAS[table]),
            }
            continue
        previous: dict[str, int] = {}
        if plan.days is not None and manifest is not None:
            previous = dict(manifest["tables"][table]["partitions"])
        final = dict(previous)
        for day, rows in sorted((d, n) for d, n in counts.items() if d is not None):
            part = dest / f"{PARTITION_KEY}={day}"
            if rows == 0:
                deleted += _remove_partition(part)
                final.pop(day, None)
                continue
            part.mkdir(exist_ok=True)
            os.replace(staging / table / part.name / PART_FILE, part / PART_FILE)
            written += 1
            final[day] = rows
        if plan.days is None:
            # A full rewrite owns the table folder: partitions it did not write are gone.
            for part in sorted(dest.glob(f"{PARTITION_KEY}=*")):
                if part.name.split("=", 1)[1] not in final:
                    deleted += _remove_partition(part)
        tables[table] = {
            "partitioned_by": PARTITION_KEY,
            "partition_source": _partition_column(table),
            "rows": sum(final.values()),
            "partitions": dict(sorted(final.items())),
            "schema": schema_fingerprint(SCHEMAS[table]),
        }
    return written, deleted, tables


def _partition_column(table: str) -> str:
    return {
        "tool_executions": "request_date",
        "errors": "timestamp",
        "performance_metrics": "metric_date",
        "session_lifecycle": "lifecycle_date",
    }[table]


def _remove_partition(part: Path) -> int:
    if not part.exists():
        return 0
    shutil.rmtree(part)
    return 1
