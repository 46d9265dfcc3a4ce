"""`validate`: reconcile the analytics with the raw tables, and report the data quality.

The design document's "Validation: compare analytics results with raw data queries".
The raw rows are classified again here, independently of the ETL's code, by the rules
of docs/rules.md (by content, never by message_type; JSON ids compared as JSON text), in
DuckDB over the source attached read-only beside the target. Each check is an audit in
queries/validate/ that returns the rows in conflict: none means it passes.

Only what the last run could see is reconciled: rows past the watermarks
(`interactions_max_id`, `events_max_id`) are waiting for the next run, which is normal
for a live log, and are only counted. Rows past the settled watermark are provisional
(the next run redoes them) but must still be accounted for.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipeline import querylib
from pipeline.errors import BadInvocation, PipelineError, SourceMissing
from pipeline.load import SCHEMA_VERSION
from pipeline.queries import QUERIES_DIR, quote_sql_string, sql
from pipeline.source import connect_source, validate_source

VALIDATE_DIR = QUERIES_DIR / "validate"
# The audits, in the order they are reported.
AUDITS = (
    "watermarks",
    "calls_accounted",
    "executions_have_requests",
    "responses_exist",
    "error_responses_accounted",
    "error_events_accounted",
    "errors_have_sources",
    "rows_accounted",
    "rejects_have_sources",
    "execution_outcomes",
)
METADATA_KEYS = (
    "schema_version",
    "interactions_settled_id",
    "interactions_max_id",
    "events_max_id",
    "newest_timestamp",
)
# The target's tables the audits read.
REQUIRED_TABLES = (
    "tool_executions",
    "errors",
    "etl_metadata",
    "etl_rejects",
    "etl_requests",
    "etl_other_messages",
)
# Problems listed per check; the rest are counted.
SHOWN = 10


class ValidationFailed(PipelineError):
    """The analytics do not reconcile with the raw tables (exit code 1)."""


@dataclass(frozen=True)
class Check:
    name: str
    title: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Validation:
    """What validate found: the checks, and the data-quality report of the load."""

    target: Path
    source: Path
    metadata: dict[str, str | None]
    checks: list[Check] = field(default_factory=list)
    quality: list[tuple[str, int]] = field(default_factory=list)
    rejects: querylib.QueryResult | None = None
    duplicates: querylib.QueryResult | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failure(self) -> str:
        bad = [c for c in self.checks if not c.ok]
        names = ", ".join(f"{c.name} ({len(c.problems)})" for c in bad)
        return f"{len(bad)} of {len(self.checks)} checks found mismatches: {names}"


def _read_target(db: Path) -> tuple[dict[str, str | None], set[str]]:
    """etl_metadata and the table names of the target, read-only."""
    if not db.is_file():
        msg = f"database {db} does not exist; give the database the ETL wrote"
        raise SourceMissing(msg)
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "etl_metadata" not in tables:
                msg = f"{db} has no etl_metadata; run `mcp-analytics etl` on it first"
                raise BadInvocation(msg)
            meta = dict(conn.execute("SELECT key, value FROM etl_metadata").fetchall())
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        msg = f"cannot read {db} as SQLite: {exc}"
        raise BadInvocation(msg) from exc
    return meta, tables


def _raw_path(db: Path, given: Path | None, meta: dict[str, Any], tables: set[str]) -> Path:
    """Where the raw tables are: --source, else beside the analytics, else etl_metadata."""
    if given is not None:
        return given
    if {"events", "sessions"} <= tables:
        return db
    named = meta.get("source")
    if not named:
        msg = f"{db} holds no raw tables and etl_metadata names no source; give --source"
        raise BadInvocation(msg)
    path = Path(named)
    if not path.exists():
        msg = (
            f"the source {path} named in etl_metadata of {db} does not exist; "
            "give the proxy's log with --source"
        )
        raise SourceMissing(msg)
    return path


def _metadata_problems(meta: dict[str, str | None]) -> list[str]:
    problems = [f"etl_metadata has no {k}" for k in METADATA_KEYS if k not in meta]
    version = meta.get("schema_version")
    if version is not None and version != SCHEMA_VERSION:
        problems.append(
            f"schema_version {version} is not this version's {SCHEMA_VERSION}; "
            "run `mcp-analytics etl` to rebuild"
        )
    return problems


def _audit(conn: duckdb.DuckDBPyConnection, name: str, values: dict[str, str | None]) -> Check:
    query = querylib.parse_query(VALIDATE_DIR / f"{name}.sql")
    declared = {p.name for p in query.params}
    given = {k: v for k, v in values.items() if k in declared and v is not None}
    result = querylib.run_query(conn, query, given)
    return Check(name, query.title, [str(row[1]) for row in result.rows])


def validate(db: Path, source: Path | None = None, busy_timeout_ms: int = 5000) -> Validation:
    """Run every audit and the data-quality queries on db (and its raw tables)."""
    meta, tables = _read_target(db)
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        msg = (
            f"{db} has no table {missing[0]}: it was written by an older version; "
            "run `mcp-analytics etl --full` on it first"
        )
        raise BadInvocation(msg)
    raw = _raw_path(db, source, meta, tables)
    info = validate_source(raw, busy_timeout_ms)
    result = Validation(target=db, source=raw, metadata=meta)
    values: dict[str, str | None] = {
        "interactions_max_id": meta.get("interactions_max_id"),
        "events_max_id": meta.get("events_max_id"),
        "settled_id": meta.get("interactions_settled_id"),
        "newest_timestamp": meta.get("newest_timestamp"),
    }
    try:
        conn = connect_source(info)
    except duckdb.Error as exc:
        msg = f"cannot open {raw} as SQLite: {exc}"
        raise BadInvocation(msg) from exc
    try:
        conn.execute(
            f"ATTACH {quote_sql_string(str(db.resolve()))} AS tgt (TYPE sqlite, READ_ONLY)"
        )
        conn.execute(
            sql(
                "validate/raw_interactions"
                if info.has_interactions
                else "validate/raw_interactions_none"
            )
        )
        conn.execute(sql("validate/raw_events"))
        for name in AUDITS:
            check = _audit(conn, name, values)
            if name == "watermarks":
                check = Check(check.name, check.title, _metadata_problems(meta) + check.problems)
            result.checks.append(check)
        summary = querylib.parse_query(VALIDATE_DIR / "quality_summary.sql")
        rows = querylib.run_query(
            conn,
            summary,
            {k: v for k, v in values.items() if v is not None and k != "newest_timestamp"},
        ).rows
        result.quality = [(str(r[0]), int(r[1])) for r in rows]
        result.rejects = querylib.run_query(
            conn, querylib.parse_query(VALIDATE_DIR / "quality_rejects.sql"), {}
        )
        result.duplicates = querylib.run_query(
            conn, querylib.parse_query(VALIDATE_DIR / "quality_duplicate_ids.sql"), {}
        )
    finally:
        conn.close()
    return result


def format_validation(v: Validation, fmt: str) -> str:
    """The checks and the data-quality report, as text or JSON."""
    meta = v.metadata
    if fmt == "json":
        doc = {
            "ok": v.ok,
            "target": str(v.target),
            "source": str(v.source),
            "metadata": {k: meta.get(k) for k in (*METADATA_KEYS, "run_id", "previous_run_id")},
            "checks": [
                {"name": c.name, "title": c.title, "ok": c.ok, "problems": c.problems}
                for c in v.checks
            ],
            "quality": dict(v.quality),
            "rejects_by_reason": json.loads(querylib.format_result(v.rejects, "json"))
            if v.rejects
            else [],
            "duplicate_ids": json.loads(querylib.format_result(v.duplicates, "json"))
            if v.duplicates
            else [],
        }
        return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    lines = [
        f"validate {v.target} against the raw tables of {v.source}",
        f"load: run {meta.get('run_id')}, interactions up to id {meta.get('interactions_max_id')} "
        f"(settled {meta.get('interactions_settled_id')}), events up to id "
        f"{meta.get('events_max_id')}, newest {meta.get('newest_timestamp')}",
        "",
        "checks:",
    ]
    for c in v.checks:
        status = "ok  " if c.ok else "FAIL"
        count = "" if c.ok else f" — {len(c.problems)} mismatches"
        lines.append(f"  {status} {c.name}: {c.title}{count}")
        lines += [f"       {p}" for p in c.problems[:SHOWN]]
        if len(c.problems) > SHOWN:
            lines.append(f"       … and {len(c.problems) - SHOWN} more")
    lines += ["", "data quality of the load:"]
    width = max((len(m) for m, _ in v.quality), default=0)
    lines += [f"  {m.ljust(width)}  {n:>9}" for m, n in v.quality]
    text = "\n".join(lines) + "\n\n"
    if v.rejects is not None:
        text += querylib.format_result(v.rejects, "table", "Rejects by reason")
    if v.duplicates is not None and v.duplicates.rows:
        text += querylib.format_result(
            v.duplicates, "table", "Request ids used more than once in one client session"
        )
    text += "validation passed\n" if v.ok else f"validation FAILED: {v.failure()}\n"
    return text


__all__ = ["AUDITS", "Check", "Validation", "ValidationFailed", "format_validation", "validate"]
