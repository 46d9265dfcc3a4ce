"""The query library: every query gives the same rows on SQLite and on Parquet, headers
are well-formed, and the `query` command's output and errors."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pipeline.cli import main
from pipeline.parquet import SCHEMAS, TABLES, export_parquet
from pipeline.querylib import (
    LIBRARY_DIR,
    LibraryQuery,
    format_result,
    list_queries,
    load_query,
    open_parquet_backend,
    open_sqlite_backend,
    parse_query,
    run_query,
    used_params,
)
from tests.helpers import etl, make_demo

QUERIES = list_queries()
NAMES = [q.name for q in QUERIES]
# Queries that may give no rows on the demo data even when their tables have rows.
MAY_BE_EMPTY: set[str] = set()


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2000-call demo after one ETL run, and its Parquet export."""
    tmp = tmp_path_factory.mktemp("querylib")
    source, _ = make_demo(tmp, calls=2000, seed=21)
    etl(source)
    out = tmp / "pq"
    export_parquet(source, out)
    return source, out


def _tables_read(query: LibraryQuery) -> set[str]:
    return {t for t in TABLES if re.search(rf"\b{t}\b", query.sql)}


def _non_empty_tables(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {t for t in TABLES if conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()}  # noqa: S608
    finally:
        conn.close()


def test_the_library_answers_the_design_questions() -> None:
    """One file per question of the seed's "Enables Queries Like" lists."""
    assert len(QUERIES) >= 20
    for question in (
        "tool_usage_by_session",
        "tool_usage_by_client",
        "tool_avg_duration",
        "tool_success_rate",
        "slowest_executions",
        "tool_usage_trend",
        "error_rate_by_tool",
        "common_error_codes",
        "error_trend",
        "unresolved_errors",
        "error_context",
        "performance_trend",
        "performance_degradation",
        "tool_performance_comparison",
        "capacity_planning",
        "clients_in_use",
        "client_versions",
        "client_status",
        "client_capabilities",
        "usage_by_client_type",
        "lifecycle_transitions",
        "failure_patterns",
        "session_durations",
        "reconnection_patterns",
    ):
        assert question in NAMES


@pytest.mark.parametrize("query", QUERIES, ids=NAMES)
def test_header_is_complete(query: LibraryQuery) -> None:
    assert query.title and len(query.title) < 80
    assert query.rows.startswith("one per") or query.rows.startswith("the ")
    assert {p.name for p in query.params} == used_params(query.sql)
    # Deterministic order: the final statement ends with an ORDER BY (then maybe a LIMIT).
    tail = query.sql[query.sql.rindex("ORDER BY") :]
    assert re.fullmatch(r"ORDER BY\s[^;()]+?(\nLIMIT \$\w+)?;\n", tail), tail


@pytest.mark.parametrize("query", QUERIES, ids=NAMES)
def test_same_rows_on_sqlite_and_parquet(backends: tuple[Path, Path], query: LibraryQuery) -> None:
    db, folder = backends
    on_sqlite = open_sqlite_backend(db)
    on_parquet = open_parquet_backend(folder)
    try:
        a = run_query(on_sqlite, query, {})
        b = run_query(on_parquet, query, {})
    finally:
        on_sqlite.close()
        on_parquet.close()
    assert (a.columns, a.types) == (b.columns, b.types)
    assert a.rows == b.rows
    if _tables_read(query) <= _non_empty_tables(db) and query.name not in MAY_BE_EMPTY:
        assert a.rows, f"{query.name} gave no rows on the demo data"
    # The CLI text is the same too: what a user diffs.
    assert format_result(a, "csv") == format_result(b, "csv")


def test_both_backends_expose_the_same_tables(backends: tuple[Path, Path]) -> None:
    db, folder = backends
    on_sqlite = open_sqlite_backend(db)
    on_parquet = open_parquet_backend(folder)
    try:
        for table in TABLES:
            describe = f"SELECT column_name, column_type FROM (DESCRIBE {table})"  # noqa: S608
            columns = on_sqlite.execute(describe).fetchall()
            assert columns == on_parquet.execute(describe).fetchall()
            assert [c for c, _ in columns] == SCHEMAS[table].names
            count = f"SELECT COUNT(*) FROM {table}"  # noqa: S608
            assert on_sqlite.execute(count).fetchone() == on_parquet.execute(count).fetchone()
    finally:
        on_sqlite.close()
        on_parquet.close()


def test_params_change_the_rows(backends: tuple[Path, Path]) -> None:
    db, _ = backends
    conn = open_sqlite_backend(db)
    try:
        slowest = load_query("slowest_executions")
        assert len(run_query(conn, slowest, {}).rows) == 20
        three = run_query(conn, slowest, {"limit": "3"}).rows
        assert len(three) == 3
        durations = [r[2] for r in three]
        assert durations == sorted(durations, reverse=True)
        trend = load_query("tool_usage_trend")
        hours = run_query(conn, trend, {"bucket": "hour"}).rows
        days = run_query(conn, trend, {"bucket": "day"}).rows
        assert sum(r[2] for r in hours) == sum(r[2] for r in days)
        assert len(days) < len(hours)
        context = load_query("error_context")
        default = run_query(conn, context, {}).rows
        key = next(r[2] for r in default if r[-1])
        assert run_query(conn, context, {"error_key": key}).rows == default
    finally:
        conn.close()


def test_header_syntax_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text("-- title: x\n-- rows: one per x\n-- param: n NUMBER = 1\nSELECT $n;\n")
    with pytest.raises(ValueError, match="bad param line"):
        parse_query(bad)
    bad.write_text("-- rows: one per x\nSELECT 1;\n")
    with pytest.raises(ValueError, match="title"):
        parse_query(bad)


# --- the command line -------------------------------------------------------------------


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, ["query", *args])


def _bad(args: list[str], message: str) -> None:
    result = _invoke(args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""


def test_list_prints_name_then_title() -> None:
    result = _invoke(["--list"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines == [f"{q.name}  {q.title}" for q in QUERIES]
    assert len(lines) == len(list(LIBRARY_DIR.glob("*.sql")))


def test_formats(backends: tuple[Path, Path]) -> None:
    db, folder = backends
    args = ["common_error_codes", "--db", str(db)]
    as_csv = _invoke([*args, "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0][:3] == ["error_code", "error_category", "occurrences"]
    as_json = _invoke([*args, "--format", "json"])
    objects = json.loads(as_json.stdout)
    assert len(objects) == len(rows) - 1
    assert objects[0]["occurrences"] == int(rows[1][2])
    as_table = _invoke(args)
    assert "Most common error codes" in as_table.stdout
    assert as_table.stdout.endswith(f"({len(objects)} rows)\n")
    on_parquet = _invoke(["common_error_codes", "--parquet", str(folder), "--format", "json"])
    assert on_parquet.stdout == as_json.stdout


def test_bad_invocations(backends: tuple[Path, Path], tmp_path: Path) -> None:
    db, folder = backends
    _bad(
        ["nope", "--db", str(db)], "no query named 'nope'; `mcp-analytics query --list` lists them"
    )
    _bad(["slowest_executions"], "give exactly one of --db DB or --parquet DIR")
    _bad(
        ["slowest_executions", "--db", str(db), "--parquet", str(folder)],
        "give exactly one of --db DB or --parquet DIR",
    )
    _bad(
        ["slowest_executions", "--db", str(db), "--param", "limit=many"],
        "query slowest_executions: param limit='many' is not of type INTEGER",
    )
    _bad(
        ["slowest_executions", "--db", str(db), "--param", "top=3"],
        "query slowest_executions has no parameter 'top'; its parameters: limit",
    )
    _bad(
        ["slowest_executions", "--db", str(db), "--param", "limit"],
        "--param 'limit' is not NAME=VALUE",
    )
    _bad([], "give a query NAME (`mcp-analytics query --list` lists them)")
    missing = tmp_path / "missing.db"
    _bad(
        ["slowest_executions", "--db", str(missing)],
        f"database {missing} does not exist; give the database the ETL wrote",
    )
    assert not missing.exists()
    _bad(
        ["slowest_executions", "--parquet", str(tmp_path)],
        f"{tmp_path} is not a Parquet export (no _manifest.json); write one with `etl --parquet`",
    )
    # A value the SQL itself rejects: still one line and exit 2, not a traceback.
    result = _invoke(["tool_usage_trend", "--db", str(db), "--param", "bucket=fortnight"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.startswith("error: query tool_usage_trend: ")
    assert result.stderr.count("\n") == 1
