"""The Parquet export: same rows as SQLite per table and partition, one fixed Arrow schema,
typed partitions in pyarrow and Polars, incremental rewrites, and kills that leave the
previous files readable."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.parquet import (
    MANIFEST,
    PART_FILE,
    PARTITION_DAY,
    SCHEMAS,
    TABLES,
    ExportError,
    ExportSummary,
    export_parquet,
)
from pipeline.resolutions import resolve_error
from tests.helpers import copy_until, etl, make_demo, new_live_source

REPO = Path(__file__).resolve().parent.parent
PARTITIONED = [t for t in TABLES if PARTITION_DAY[t] is not None]
# SQL giving each row's partition day in SQLite, as the ETL defines the keys.
SQLITE_DAY = {
    "tool_executions": "COALESCE(request_date, DATE(request_time))",
    "errors": "DATE(timestamp)",
    "performance_metrics": "COALESCE(metric_date, DATE(timestamp))",
    "session_lifecycle": "COALESCE(lifecycle_date, DATE(timestamp))",
}
CUTS = ("2026-11-20 20:00:00.000", "2026-11-21 03:00:00.000")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2000-call demo after one ETL run, exported once."""
    tmp = tmp_path_factory.mktemp("parquet")
    source, _ = make_demo(tmp, calls=2000, seed=5)
    etl(source)
    out = tmp / "pq"
    export_parquet(source, out)
    return source, out


def _sqlite_counts(db: Path, table: str) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        day = SQLITE_DAY[table]
        query = f"SELECT {day}, COUNT(*) FROM {table} GROUP BY 1"  # noqa: S608
        return {str(d): int(n) for d, n in conn.execute(query)}
    finally:
        conn.close()


def _count(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
    finally:
        conn.close()


def _file_counts(out: Path, table: str) -> dict[str, int]:
    """Rows per partition as the files on disk say (one file per partition)."""
    counts: dict[str, int] = {}
    for part in sorted((out / table).iterdir()):
        files = sorted(part.iterdir())
        assert [f.name for f in files] == [PART_FILE], part
        counts[part.name.removeprefix("date=")] = pq.read_metadata(files[0]).num_rows
    return counts


def _assert_matches_sqlite(db: Path, out: Path) -> None:
    manifest = json.loads((out / MANIFEST).read_text())
    for table in PARTITIONED:
        want = _sqlite_counts(db, table)
        assert _file_counts(out, table) == want, table
        assert manifest["tables"][table]["partitions"] == want, table
        assert manifest["tables"][table]["rows"] == sum(want.values()), table
    whole = pq.read_metadata(out / "client_sessions" / PART_FILE).num_rows
    assert whole == _count(db, "client_sessions")
    assert manifest["tables"]["client_sessions"]["rows"] == whole


def _sqlite_text(value: Any) -> Any:
    """A Parquet value back in the form SQLite stores it."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


# --- the schema ------------------------------------------------------------------------


def _arrow_type_for(declared: str, name: str) -> pa.DataType:
    if declared == "TEXT":
        return pa.date32() if name.endswith("_date") else pa.string()
    return {
        "INTEGER": pa.int64(),
        "REAL": pa.float64(),
        "DATETIME": pa.timestamp("ms"),
        "BOOLEAN": pa.bool_(),
    }[declared]


def test_every_sqlite_column_is_in_the_arrow_schema(demo: tuple[Path, Path]) -> None:
    """schema.sql gains columns over time: each must be exported with its type."""
    source, _ = demo
    conn = sqlite3.connect(source)
    try:
        for table, schema in SCHEMAS.items():
            info = conn.execute("SELECT * FROM pragma_table_info(?)", (table,)).fetchall()
            assert [r[1] for r in info] == schema.names, table
            for _, name, declared, notnull, _, pk in info:
                field = schema.field(name)
                assert field.type == _arrow_type_for(declared, name), (table, name)
                assert field.nullable == (not notnull and not pk), (table, name)
    finally:
        conn.close()


def test_files_carry_the_explicit_schema(demo: tuple[Path, Path]) -> None:
    _, out = demo
    for table in TABLES:
        for file in sorted((out / table).rglob("*.parquet")):
            assert pq.read_schema(file).equals(SCHEMAS[table]), file
            assert pq.read_metadata(file).row_group(0).column(0).compression == "ZSTD"


# --- same rows as SQLite -----------------------------------------------------------------


def test_row_counts_per_table_and_partition(demo: tuple[Path, Path]) -> None:
    source, out = demo
    _assert_matches_sqlite(source, out)
    assert _count(source, "tool_executions") == 2000


def test_parquet_values_equal_sqlite(demo: tuple[Path, Path]) -> None:
    """Every value of every table, timestamps and dates included, reads back as stored."""
    source, out = demo
    conn = sqlite3.connect(source)
    try:
        for table in TABLES:
            files = sorted((out / table).rglob(PART_FILE))
            got = pa.concat_tables([pq.read_table(f) for f in files]).sort_by("id").to_pylist()
            columns = ", ".join(SCHEMAS[table].names)
            want = conn.execute(
                f"SELECT {columns} FROM {table} ORDER BY id"  # noqa: S608
            ).fetchall()
            assert [tuple(_sqlite_text(v) for v in row.values()) for row in got] == want, table
    finally:
        conn.close()


# --- readers --------------------------------------------------------------------------------


def test_pyarrow_reads_typed_partitions(demo: tuple[Path, Path]) -> None:
    """The docs/bi.md snippet: the hive key typed as a date, the columns as written."""
    source, out = demo
    dataset = ds.dataset(
        out / "tool_executions",
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive"),
    )
    assert dataset.schema.field("date").type == pa.date32()
    assert dataset.schema.field("request_time").type == pa.timestamp("ms")
    table = dataset.to_table(columns=["date", "request_date"])
    assert table.num_rows == _count(source, "tool_executions")
    assert table.column("date").equals(table.column("request_date"))
    one_day = dataset.to_table(filter=ds.field("date") == date(2026, 11, 21))
    assert one_day.num_rows == _sqlite_counts(source, "tool_executions")["2026-11-21"]


def test_polars_reads_typed_partitions(demo: tuple[Path, Path]) -> None:
    source, out = demo
    for table in PARTITIONED:
        frame = pl.scan_parquet(out / table, hive_partitioning=True)
        schema = frame.collect_schema()
        if _count(source, table) == 0:
            continue
        assert schema["date"] == pl.Date, table
        assert schema["timestamp" if table != "tool_executions" else "request_time"] == (
            pl.Datetime("ms")
        )
        counts = frame.group_by("date").len().collect()
        got = {str(d): n for d, n in counts.iter_rows()}
        assert got == _sqlite_counts(source, table), table
    sessions = pl.read_parquet(out / "client_sessions" / PART_FILE)
    assert sessions.height == _count(source, "client_sessions")
    assert sessions.schema["connect_time"] == pl.Datetime("ms")


# --- incremental runs ---------------------------------------------------------------------


def _metadata(db: Path) -> dict[str, str | None]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT key, value FROM etl_metadata").fetchall())
    finally:
        conn.close()


def _inodes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_ino for p in sorted(out.rglob(PART_FILE))}


@pytest.fixture(scope="module")
def growing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A live source copied from a 1500-call demo up to the first cut, run and exported."""
    tmp = tmp_path_factory.mktemp("growing")
    full, _ = make_demo(tmp, calls=1500, seed=11)
    live = tmp / "live.db"
    new_live_source(live)
    copy_until(full, live, CUTS[0])
    etl(live)
    out = tmp / "pq"
    export_parquet(live, out)
    return full, live, out


def test_incremental_export_after_a_run(growing: tuple[Path, Path, Path]) -> None:
    """After an ETL run the export rewrites the days the run touched, and only those."""
    full, live, out = growing
    _assert_matches_sqlite(live, out)
    schemas_before = {p: pq.read_schema(p) for p in sorted(out.rglob(PART_FILE))}
    copy_until(full, live, CUTS[1])
    etl(live)
    meta = _metadata(live)
    summary = export_parquet(live, out)
    _assert_matches_sqlite(live, out)
    touched = json.loads(meta.get("touched_days") or "null")
    if meta.get("run_id") and touched is not None:
        assert summary.mode == "incremental"
        expected = 1 + sum(  # client_sessions is always written whole
            1 for t in PARTITIONED for day in _sqlite_counts(live, t) if day in touched
        )
        assert summary.partitions_written == expected
    else:
        # Until the ETL records which days a run touched, every export is whole.
        assert summary.mode == "full"
    # The second run's files have exactly the first run's schema.
    for path, schema in schemas_before.items():
        assert pq.read_schema(path).equals(schema, check_metadata=True)
    for path in out.rglob(PART_FILE):
        table = path.relative_to(out).parts[0]
        assert pq.read_schema(path).equals(SCHEMAS[table], check_metadata=True)


def _set_metadata(db: Path, values: dict[str, str | None]) -> None:
    conn = sqlite3.connect(db)
    with conn:
        for key, value in values.items():
            conn.execute(
                "INSERT INTO etl_metadata (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
    conn.close()


def _change_day(db: Path, day: str, text: str) -> None:
    """What a run does to a day: change one of its executions."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE tool_executions SET result_summary = ? WHERE id = "
            "(SELECT MIN(id) FROM tool_executions WHERE request_date = ?)",
            (text, day),
        )
    conn.close()


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    """A small demo whose etl_metadata says run r1, exported once."""
    source, _ = make_demo(tmp_path, calls=300, seed=8)
    etl(source)
    _set_metadata(source, {"run_id": "r1", "previous_run_id": None, "touched_days": "null"})
    out = tmp_path / "pq"
    assert export_parquet(source, out).mode == "full"
    return source, out


def _summaries(out: Path, table: str) -> set[str]:
    return set(pq.read_table(out / table, columns=["result_summary"]).column(0).to_pylist())


@pytest.mark.parametrize(
    ("previous", "touched", "mode"),
    [
        ("r1", '["2026-11-21"]', "incremental"),  # one run behind: the touched days
        ("r0", '["2026-11-21"]', "full"),  # the files missed a run: everything
        ("r1", "null", "full"),  # the run does not know what it touched
        (None, None, "full"),  # an ETL that records no run ids
    ],
)
def test_rewrite_rule(
    exported: tuple[Path, Path], previous: str | None, touched: str | None, mode: str
) -> None:
    source, out = exported
    before = _inodes(out)
    for day in ("2026-11-20", "2026-11-21"):
        _change_day(source, day, f"changed on {day}")
    run_id = None if previous is None else "r2"
    _set_metadata(source, {"run_id": run_id, "previous_run_id": previous, "touched_days": touched})
    summary = export_parquet(source, out)
    assert summary.mode == mode
    after = _inodes(out)
    day1 = "tool_executions/date=2026-11-20/part-0.parquet"
    day2 = "tool_executions/date=2026-11-21/part-0.parquet"
    assert after[day2] != before[day2]
    assert "changed on 2026-11-21" in _summaries(out, "tool_executions")
    if mode == "incremental":
        # Day 1 changed too, but the run did not say so: its file is left alone.
        assert after[day1] == before[day1]
        assert "changed on 2026-11-20" not in _summaries(out, "tool_executions")
        assert all(after[p] == i for p, i in before.items() if "2026-11-20" in p)
    else:
        assert all(after[p] != i for p, i in before.items())
        _assert_matches_sqlite(source, out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["run_id"] == run_id
    assert manifest["mode"] == mode


def test_export_twice_rewrites_only_client_sessions(exported: tuple[Path, Path]) -> None:
    """Files already current for this run: nothing but the small dimension is written."""
    source, out = exported
    before = _inodes(out)
    summary = export_parquet(source, out)
    assert (summary.mode, summary.partitions_written) == ("incremental", 1)
    after = _inodes(out)
    assert [p for p in before if after[p] != before[p]] == ["client_sessions/part-0.parquet"]


def test_resolving_an_error_rewrites_its_day(exported: tuple[Path, Path]) -> None:
    """`errors resolve` edits a row in place with no run: its day is exported again."""
    source, out = exported
    conn = sqlite3.connect(source)
    try:
        error_id, key, day = conn.execute(
            "SELECT id, error_key, DATE(timestamp) FROM errors WHERE resolved = 0 "
            "ORDER BY timestamp, id LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    before = _inodes(out)
    resolve_error(source, error_id, "fixed")
    summary = export_parquet(source, out)
    assert summary.mode == "incremental"
    after = _inodes(out)
    changed = sorted(p for p in before if after[p] != before[p])
    assert changed == ["client_sessions/part-0.parquet", f"errors/date={day}/part-0.parquet"]
    table = pq.read_table(out / "errors" / f"date={day}" / PART_FILE)
    row = table.filter(pa.compute.equal(table.column("error_key"), key)).to_pylist()
    assert row[0]["resolved"] is True
    assert row[0]["resolution_notes"] == "fixed"
    _assert_matches_sqlite(source, out)


def test_a_failed_export_keeps_the_previous_files(exported: tuple[Path, Path]) -> None:
    """A row that cannot be typed stops the export with one message; nothing changes."""
    source, out = exported
    before = _snapshot(out)
    conn = sqlite3.connect(source)
    with conn:
        conn.execute(
            "UPDATE tool_executions SET request_date = 'someday' "
            "WHERE id = (SELECT MIN(id) FROM tool_executions)"
        )
    conn.close()
    _set_metadata(source, {"run_id": None})
    with pytest.raises(ExportError, match=f"^cannot read {source} for the Parquet export: "):
        export_parquet(source, out)
    assert _snapshot(out) == before
    assert not list(out.glob(".staging-*"))


def test_full_rebuild_drops_vanished_partitions(tmp_path: Path) -> None:
    """A partition that is no longer in SQLite disappears on a full rewrite."""
    source, _ = make_demo(tmp_path, calls=300, seed=2)
    etl(source)
    out = tmp_path / "pq"
    export_parquet(source, out)
    stale = out / "tool_executions" / "date=1999-01-01"
    stale.mkdir()
    pq.write_table(pa.Table.from_pylist([], schema=SCHEMAS["tool_executions"]), stale / PART_FILE)
    (out / MANIFEST).unlink()  # no manifest: the next export is a full rewrite
    summary = export_parquet(source, out)
    assert summary.mode == "full"
    assert not stale.exists()
    assert summary.partitions_deleted == 1
    _assert_matches_sqlite(source, out)


# --- killed exports -------------------------------------------------------------------------

KILLER = """
import os, signal, sys
from pathlib import Path
import pipeline.parquet as parquet

target, out, where, nth = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
calls = 0
real = {"stage": parquet._conform, "publish": os.replace}[where]

def killing(*args, **kwargs):
    global calls
    calls += 1
    if calls == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)

if where == "stage":
    parquet._conform = killing
else:
    os.replace = killing
parquet.export_parquet(Path(target), out)
"""


def _killed_export(target: Path, out: Path, where: str, nth: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(target), str(out), where, str(nth)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr


def _readable_counts(out: Path) -> dict[str, dict[str, int]]:
    """Read every partition in full (not just its footer) and count its rows."""
    counts: dict[str, dict[str, int]] = {}
    for table in PARTITIONED:
        counts[table] = {}
        for part in sorted((out / table).iterdir()):
            rows = pq.read_table(part / PART_FILE).num_rows
            counts[table][part.name.removeprefix("date=")] = rows
    counts["client_sessions"] = {"": pq.read_table(out / "client_sessions" / PART_FILE).num_rows}
    return counts


@pytest.mark.parametrize(("where", "nth"), [("stage", 2), ("publish", 1), ("publish", 3)])
def test_killed_export_leaves_readable_partitions(tmp_path: Path, where: str, nth: int) -> None:
    """SIGKILL while staging leaves the old dataset exactly; while renaming, each partition
    is whole, old or new. The next export completes the work."""
    full, _ = make_demo(tmp_path, calls=1500, seed=13)
    live = tmp_path / "live.db"
    new_live_source(live)
    copy_until(full, live, CUTS[0])
    etl(live)
    out = tmp_path / "pq"
    export_parquet(live, out)
    old = _readable_counts(out)
    old_manifest = (out / MANIFEST).read_bytes()
    copy_until(full, live, "2026-11-22 00:00:00.000")
    etl(live, full=True)  # every partition changes: the kill lands in a real rewrite

    _killed_export(live, out, where, nth)

    assert (out / MANIFEST).read_bytes() == old_manifest
    now = _readable_counts(out)
    if where == "stage":
        assert now == old
    else:
        new = {t: _sqlite_counts(live, t) for t in PARTITIONED}
        new["client_sessions"] = {"": _count(live, "client_sessions")}
        for table, parts in now.items():
            for day, rows in parts.items():
                assert rows in (old[table].get(day), new[table].get(day)), (table, day)
    summary = export_parquet(live, out)
    assert not list(out.glob(".staging-*"))
    assert isinstance(summary, ExportSummary)
    _assert_matches_sqlite(live, out)


# --- the command line -------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _bad(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""


def test_etl_parquet_bad_folders_change_nothing(tmp_path: Path) -> None:
    source, _ = make_demo(tmp_path, calls=50, seed=1)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_text("meow")
    before = _snapshot(tmp_path)
    _bad(
        ["etl", str(source), "--parquet", str(a_file)],
        f"--parquet {a_file} is a file; give a folder (new, or one an export wrote)",
    )
    _bad(
        ["etl", str(source), "--parquet", str(tmp_path / "no" / "pq")],
        f"the folder of --parquet {tmp_path / 'no' / 'pq'} does not exist; create it first",
    )
    _bad(
        ["etl", str(source), "--parquet", str(foreign)],
        f"--parquet {foreign} holds 'cat.jpg' and no _manifest.json; "
        "give an empty folder or one an earlier export wrote",
    )
    assert _snapshot(tmp_path) == before


def test_etl_parquet_writes_the_dataset(tmp_path: Path) -> None:
    source, _ = make_demo(tmp_path, calls=200, seed=4)
    out = tmp_path / "pq"
    result = CliRunner().invoke(main, ["etl", str(source), "--parquet", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert f"parquet: full export to {out}:" in result.stdout
    _assert_matches_sqlite(source, out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["schema_version"] == _metadata(source)["schema_version"]
    assert manifest["run_id"] == _metadata(source).get("run_id")
    assert sorted(manifest["tables"]) == sorted(TABLES)
    assert manifest["tables"]["client_sessions"]["partitioned_by"] is None
    assert not [p for p in os.listdir(out) if p.startswith(".staging-")]
