"""The named query library (queries/library/*.sql) on either backend.

The same SQL file runs in DuckDB over the SQLite target (attached read-only) or over
the Parquet export: both backends expose the five tables as views with the same
columns and the same types (the casts come from parquet.SCHEMAS), so a query gives the
same rows on both.

Header syntax of a library file, comment lines before the first statement line:

    -- title: Slowest tool executions            (one line; `query --list` shows it)
    -- rows: one per execution ...               (what a row is; it continues on
    --   more comment lines)                     (lines indented past the key)
    -- param: limit INTEGER = 20 (executions to list)

A param line names a `$name` used in the SQL, its type (INTEGER, DOUBLE, VARCHAR,
DATE, TIMESTAMP), its default (`NULL` for none) and, in parentheses, what it means.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from pipeline.errors import BadInvocation, SourceMissing
from pipeline.parquet import (
    MANIFEST,
    PART_FILE,
    PARTITION_DAY,
    PARTITION_KEY,
    SCHEMAS,
    TABLES,
    duckdb_type,
    quote_ident,
    select_list,
)
from pipeline.queries import QUERIES_DIR, quote_sql_string
from pipeline.source import SourceInfo, connect_source

LIBRARY_DIR = QUERIES_DIR / "library"
FORMATS = ("table", "csv", "json")
PARAM_TYPES = ("INTEGER", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP")
_PARAM_RE = re.compile(
    r"^(?P<name>[a-z_][a-z0-9_]*)\s+(?P<type>[A-Z]+)\s*=\s*(?P<default>\S+)"
    r"\s*(?:\((?P<doc>.*)\))?\s*$"
)
_USED_RE = re.compile(r"\$([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class Param:
    """One `$name` parameter of a library query."""

    name: str
    sql_type: str
    default: str | None  # None: SQL NULL
    doc: str


@dataclass(frozen=True)
class LibraryQuery:
    """A library file: its name (the file name), header and SQL."""

    name: str
    title: str
    rows: str
    params: tuple[Param, ...]
    sql: str
    path: Path


@dataclass(frozen=True)
class QueryResult:
    """A query's rows with their column names and DuckDB types."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


def parse_query(path: Path) -> LibraryQuery:
    """Read a library file and its header; a malformed header is a bug in the file."""
    text = path.read_text(encoding="utf-8")
    fields: dict[str, str] = {}
    params: list[Param] = []
    last: str | None = None
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        body = line[2:]
        if body.startswith("   ") and last is not None:
            fields[last] += " " + body.strip()
            continue
        key, sep, value = body.strip().partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "param":
            match = _PARAM_RE.match(value)
            if match is None or match["type"] not in PARAM_TYPES:
                msg = f"{path.name}: bad param line {line!r}"
                raise ValueError(msg)
            default = None if match["default"] == "NULL" else match["default"]
            params.append(Param(match["name"], match["type"], default, match["doc"] or ""))
            last = None
        else:
            fields[key] = value
            last = key
    if "title" not in fields or "rows" not in fields:
        msg = f"{path.name}: the header needs a title: line and a rows: line"
        raise ValueError(msg)
    return LibraryQuery(
        name=path.stem,
        title=fields["title"],
        rows=fields["rows"],
        params=tuple(params),
        sql=text,
        path=path,
    )


def list_queries() -> list[LibraryQuery]:
    """Every library query, by name."""
    return [parse_query(p) for p in sorted(LIBRARY_DIR.glob("*.sql"))]


def load_query(name: str) -> LibraryQuery:
    path = LIBRARY_DIR / f"{name}.sql"
    if not re.fullmatch(r"[a-z0-9_]+", name) or not path.is_file():
        msg = f"no query named {name!r}; `mcp-analytics query --list` lists them"
        raise BadInvocation(msg)
    return parse_query(path)


def used_params(sql_text: str) -> set[str]:
    """The `$name` parameters the SQL uses (comments excluded)."""
    body = "\n".join(line.split("--", 1)[0] for line in sql_text.splitlines())
    return set(_USED_RE.findall(body))


def _convert(param: Param, raw: str, query: str) -> Any:
    try:
        if param.sql_type == "INTEGER":
            return int(raw)
        if param.sql_type == "DOUBLE":
            return float(raw)
        if param.sql_type == "DATE":
            return date.fromisoformat(raw)
        if param.sql_type == "TIMESTAMP":
            return datetime.fromisoformat(raw)
    except ValueError as exc:
        msg = f"query {query}: param {param.name}={raw!r} is not of type {param.sql_type}"
        raise BadInvocation(msg) from exc
    return raw


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """`k=v` strings from the command line into a dict."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            msg = f"--param {pair!r} is not NAME=VALUE"
            raise BadInvocation(msg)
        out[key.strip()] = value
    return out


def bind_params(query: LibraryQuery, given: Mapping[str, str]) -> dict[str, Any]:
    """The parameter values to bind: the given ones converted, defaults for the rest."""
    known = {p.name: p for p in query.params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        names = ", ".join(known) if known else "none"
        msg = f"query {query.name} has no parameter {unknown[0]!r}; its parameters: {names}"
        raise BadInvocation(msg)
    values: dict[str, Any] = {}
    for param in query.params:
        raw = given.get(param.name, param.default)
        values[param.name] = None if raw is None else _convert(param, raw, query.name)
    return values


def _duckdb() -> duckdb.DuckDBPyConnection:
    # Nothing is ever downloaded at run time (STYLE.md, pitfalls); Parquet is built in.
    return duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "threads": 2,
        }
    )


def _empty_view(table: str) -> str:
    columns = ", ".join(
        f"CAST(NULL AS {duckdb_type(f.type)}) AS {quote_ident(f.name)}" for f in SCHEMAS[table]
    )
    return f"SELECT {columns} WHERE FALSE"


def open_sqlite_backend(db: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with the SQLite target attached read-only and the tables as typed views."""
    if not db.is_file():
        msg = f"database {db} does not exist; give the database the ETL wrote"
        raise SourceMissing(msg)
    try:
        conn = connect_source(SourceInfo(path=db, has_interactions=False))
    except duckdb.Error as exc:
        msg = f"cannot open {db} as SQLite: {exc}"
        raise BadInvocation(msg) from exc
    have = {
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'src'"
        ).fetchall()
    }
    for table in TABLES:
        if table not in have:
            conn.close()
            msg = f"{db} has no table {table}; run `mcp-analytics etl` on it first"
            raise BadInvocation(msg)
        # Names from our own schemas; the view casts TEXT timestamps and 0/1 booleans
        # to the types the Parquet files carry.
        conn.execute(
            f"CREATE TEMP VIEW {quote_ident(table)} AS "  # noqa: S608
            f"SELECT {select_list(table)} FROM src.{quote_ident(table)}"
        )
    return conn


def open_parquet_backend(folder: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with views over the Parquet export; the hive `date` column is left out
    (each table keeps its own date column), so the views equal the SQLite ones."""
    if not (folder / MANIFEST).is_file():
        msg = f"{folder} is not a Parquet export (no {MANIFEST}); write one with `etl --parquet`"
        raise BadInvocation(msg)
    conn = _duckdb()
    for table in TABLES:
        if PARTITION_DAY[table] is None:
            files = [folder / table / PART_FILE]
            pattern = folder / table / PART_FILE
        else:
            files = sorted((folder / table).glob(f"{PARTITION_KEY}=*/{PART_FILE}"))
            pattern = folder / table / f"{PARTITION_KEY}=*" / PART_FILE
        if not any(f.is_file() for f in files):
            # A table with no rows has no partition files; read_parquet needs one.
            body = _empty_view(table)
        else:
            body = (
                f"SELECT {select_list(table)} FROM read_parquet("  # noqa: S608
                f"{quote_sql_string(str(pattern.resolve()))}, hive_partitioning = true)"
            )
        conn.execute(f"CREATE VIEW {quote_ident(table)} AS {body}")
    return conn


def open_backend(db: Path | None, parquet: Path | None) -> duckdb.DuckDBPyConnection:
    if (db is None) == (parquet is None):
        msg = "give exactly one of --db DB or --parquet DIR"
        raise BadInvocation(msg)
    if db is not None:
        return open_sqlite_backend(db)
    assert parquet is not None
    return open_parquet_backend(parquet)


def run_query(
    conn: duckdb.DuckDBPyConnection, query: LibraryQuery, given: Mapping[str, str]
) -> QueryResult:
    values = bind_params(query, given)
    try:
        result = conn.execute(query.sql, values)
    except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        # A parameter value the SQL rejects (e.g. an unknown date_trunc part).
        msg = f"query {query.name}: {str(exc).splitlines()[0]}"
        raise BadInvocation(msg) from exc
    description = result.description or []
    return QueryResult(
        columns=[str(d[0]) for d in description],
        types=[str(d[1]) for d in description],
        rows=result.fetchall(),
    )


def _text(value: Any) -> str:
    """A value as text, the same on every backend and format."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    return value


def format_result(result: QueryResult, fmt: str, title: str = "") -> str:
    """The rows as a rich table, CSV (header row first) or a JSON array of objects."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([_text(v) for v in row] for row in result.rows)
        return buf.getvalue()
    if fmt == "json":
        objects = [
            {c: _json_value(v) for c, v in zip(result.columns, row, strict=True)}
            for row in result.rows
        ]
        return json.dumps(objects, ensure_ascii=False, indent=1) + "\n"
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, show_lines=False)
    for column in result.columns:
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(*("NULL" if v is None else _text(v) for v in row))
    buf = io.StringIO()
    width = shutil.get_terminal_size((200, 24)).columns
    Console(file=buf, width=width, no_color=True).print(table)
    buf.write(f"({len(result.rows)} rows)\n")
    return buf.getvalue()


__all__ = [
    "FORMATS",
    "LibraryQuery",
    "Param",
    "QueryResult",
    "bind_params",
    "format_result",
    "list_queries",
    "load_query",
    "open_backend",
    "parse_params",
    "run_query",
]
