"""Incremental runs over a growing source equal one full run (SPEC §4 invariant)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import derive
from pipeline.load import staged_calls_tables, statements
from pipeline.queries import sql
from tests.helpers import copy_until, etl, make_demo, new_live_source, outputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], Path]:
    """A demo source, its timestamps, and the outputs of one full run over it."""
    tmp = tmp_path_factory.mktemp("incremental")
    source, _ = make_demo(tmp, calls=250, seed=21)
    conn = sqlite3.connect(source)
    stamps = [
        r[0]
        for r in conn.execute(
            "SELECT timestamp FROM interactions UNION SELECT timestamp FROM events ORDER BY 1"
        )
    ]
    conn.close()
    reference = tmp / "reference.db"
    etl(source, target=reference, full=True)
    return source, stamps, reference


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cuts=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=1.0), st.integers(0, 8)),
        min_size=1,
        max_size=5,
    )
)
def test_any_split_into_runs_equals_one_full_run(
    demo: tuple[Path, list[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
    cuts: list[tuple[float, int]],
) -> None:
    source, stamps, reference = demo
    live = tmp_path_factory.mktemp("live") / "events.db"
    new_live_source(live)
    for fraction, lag_ms in sorted(cuts):
        copy_until(source, live, stamps[int(fraction * (len(stamps) - 1))], lag_ms)
        etl(live)
    copy_until(source, live, stamps[-1])
    etl(live)
    assert outputs(live) == outputs(reference)


def test_a_second_run_with_no_new_rows_changes_nothing(
    demo: tuple[Path, list[str], Path], tmp_path: Path
) -> None:
    source, _, _ = demo
    target = tmp_path / "target.db"
    etl(source, target=target)
    first = outputs(target)
    summary = etl(source, target=target)
    assert summary.mode == "incremental"
    assert outputs(target) == first


def test_full_rebuild_after_incremental_runs_is_identical(
    demo: tuple[Path, list[str], Path], tmp_path: Path
) -> None:
    source, stamps, reference = demo
    live = _in_two_runs(source, stamps, tmp_path, full_second=True)
    assert outputs(live) == outputs(reference)


@pytest.mark.parametrize("scan_all", [True, False], ids=["in-row-order", "by-session"])
def test_activity_times_read_in_many_small_texts_give_the_same_lifecycles(
    demo: tuple[Path, list[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scan_all: bool,
) -> None:
    """derive reads an incremental run's activity times as texts joined per session and
    range of row keys; with ranges of 4 keys, fetched 3 at a time, every session spans
    many texts and fetches, and the tables are still those of one full run. Both ways of
    reading (the tables in row order, or through the session index) are forced."""
    monkeypatch.setattr(derive, "TIMES_KEY_SHIFT", 2)
    monkeypatch.setattr(derive, "TIMES_GROUPS", 3)
    read = derive._activity_times
    forced = scan_all

    def forced_read(conn: sqlite3.Connection, *, scan_all: bool) -> pl.DataFrame | None:
        return read(conn, scan_all=forced)

    monkeypatch.setattr(derive, "_activity_times", forced_read)
    source, stamps, reference = demo
    live = _in_two_runs(source, stamps, tmp_path, full_second=False)
    assert outputs(live) == outputs(reference)


@pytest.mark.parametrize("shift", [2, 17])
def test_activity_times_are_every_time_of_the_sessions_once_either_way(
    demo: tuple[Path, list[str], Path], monkeypatch: pytest.MonkeyPatch, shift: int
) -> None:
    """Both ways of reading the activity times, in small ranges of row keys and with the
    default ones, give exactly the rows of the chosen sessions, each once, as a plain
    read of the two tables does."""
    monkeypatch.setattr(derive, "TIMES_KEY_SHIFT", shift)
    monkeypatch.setattr(derive, "TIMES_GROUPS", 3)
    _, _, reference = demo
    conn = sqlite3.connect(reference)
    try:
        conn.execute("CREATE TEMP TABLE redo_sessions (session_id TEXT PRIMARY KEY, start TEXT)")
        every = [s for (s,) in conn.execute("SELECT DISTINCT session_id FROM tool_executions")]
        chosen = sorted(every)[::2]  # some sessions, not all: the filter is part of the read
        assert 1 < len(chosen) < len(every)
        conn.executemany(
            "INSERT INTO temp.redo_sessions (session_id) VALUES (?)", [(s,) for s in chosen]
        )
        rows = conn.execute(
            " UNION ALL ".join(
                f"SELECT {i}, {key}, session_id, request_time, response_time FROM {table} "  # noqa: S608
                "WHERE session_id IN (SELECT session_id FROM temp.redo_sessions)"
                for i, (table, key) in enumerate(derive.GAP_TABLES)
            )
        ).fetchall()
        expected = derive._times_frame(
            pl.DataFrame(
                rows,
                schema=["tbl", "key", "session_id", "request_time", "response_time"],
                orient="row",
            ),
            pl.Enum(chosen),
        ).sort(pl.all())
        for scan_all in (True, False):
            got = derive._activity_times(conn, scan_all=scan_all)
            assert got is not None
            assert got.sort(pl.all()).equals(expected)
    finally:
        conn.close()


def _in_two_runs(source: Path, stamps: list[str], tmp: Path, *, full_second: bool) -> Path:
    """A live log filled in two halves, the target built by a run after each."""
    live = tmp / "events.db"
    new_live_source(live)
    copy_until(source, live, stamps[len(stamps) // 2])
    etl(live)
    copy_until(source, live, stamps[-1])
    etl(live, full=full_second)
    return live


def test_a_new_pending_timeout_rechecks_every_unanswered_call(
    demo: tuple[Path, list[str], Path], tmp_path: Path
) -> None:
    """Timeouts are normally final; a run with another pending timeout looks again."""
    source, _, _ = demo
    target, reference = tmp_path / "target.db", tmp_path / "reference.db"
    etl(source, target=target, pending_timeout_ms=300_000)
    longer = 10 * 24 * 3_600_000  # longer than the log: nothing is a timeout
    etl(source, target=target, pending_timeout_ms=longer)
    etl(source, target=reference, full=True, pending_timeout_ms=longer)
    assert outputs(target) == outputs(reference)
    conn = sqlite3.connect(target)
    statuses = {r[0] for r in conn.execute("SELECT DISTINCT status FROM tool_executions")}
    conn.close()
    assert "timeout" not in statuses and "pending" in statuses


def test_a_cancellation_rolled_back_and_not_read_again_is_undone(
    demo: tuple[Path, list[str], Path], tmp_path: Path
) -> None:
    """The status pass reads only pending calls and this run's cancellations, so the
    rollback must make a call whose cancellation it removes pending again."""
    source, _, _ = demo
    target = tmp_path / "target.db"
    etl(source, target=target, full=True)
    conn = sqlite3.connect(target)
    settled = int(
        conn.execute(
            "SELECT value FROM etl_metadata WHERE key = 'interactions_settled_id'"
        ).fetchone()[0]
    )
    row = conn.execute(
        "SELECT interaction_request_id FROM tool_executions "
        "WHERE status = 'cancelled' AND interaction_response_id IS NULL LIMIT 1"
    ).fetchone()
    assert row is not None, "the demo has an unanswered cancelled call"
    # As if its cancellation had been read from the unsettled tail and were gone now.
    with conn:
        conn.execute(
            "UPDATE tool_executions SET interaction_cancel_id = ? WHERE interaction_request_id = ?",
            (settled + 1_000_000, row[0]),
        )
    conn.close()
    etl(source, target=target)
    conn = sqlite3.connect(target)
    status, cancel, duration = conn.execute(
        "SELECT status, interaction_cancel_id, duration_ms FROM tool_executions "
        "WHERE interaction_request_id = ?",
        row,
    ).fetchone()
    conn.close()
    assert (status, cancel, duration) == ("timeout", None, None)


def test_a_call_cancelled_twice_keeps_its_first_cancellation_whatever_the_batches(
    tmp_path: Path,
) -> None:
    """Each batch stages the cancellations it matches; a call cancelled again in a later
    batch must keep the first, as an incremental run does, whatever the batch size."""
    source = tmp_path / "log.db"
    new_live_source(source)
    call = '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t"}}'

    def cancel(reason: str) -> str:
        return (
            '{"jsonrpc":"2.0","method":"notifications/cancelled",'
            f'"params":{{"requestId":5,"reason":"{reason}"}}}}'
        )

    rows = [
        ("2026-11-20 08:00:00.000", call),
        ("2026-11-20 08:00:01.000", cancel("first")),
        ("2026-11-20 08:00:02.000", '{"jsonrpc":"2.0","method":"notifications/initialized"}'),
        ("2026-11-20 08:00:03.000", cancel("second")),
    ]
    conn = sqlite3.connect(source)
    with conn:
        conn.executemany(
            "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
            "content, content_size) VALUES ('s1', ?, 'inbound', 'request', ?, 1)",
            rows,
        )
    conn.close()
    for batch_rows in (2, 1000):
        target = tmp_path / f"out-{batch_rows}.db"
        etl(source, target=target, full=True, batch_rows=batch_rows)
        conn = sqlite3.connect(target)
        call_row = conn.execute(
            "SELECT status, interaction_cancel_id, cancel_reason, duration_ms FROM tool_executions"
        ).fetchall()
        conn.close()
        assert call_row == [("cancelled", 2, "first", 1000.0)], batch_rows


def test_a_call_is_identified_by_its_request_row_in_every_kind_of_run(
    demo: tuple[Path, list[str], Path], tmp_path: Path
) -> None:
    """tool_executions.id is the request's interaction id, in a full run and in runs
    that split the log (SCHEMA_VERSION 3; it used to be a counter that a rebuild or
    a rolled-back tail renumbered)."""
    source, stamps, reference = demo
    live = _in_two_runs(source, stamps, tmp_path, full_second=False)
    for db in (reference, live):
        conn = sqlite3.connect(db)
        ids = conn.execute(
            "SELECT id, interaction_request_id FROM tool_executions ORDER BY id"
        ).fetchall()
        conn.close()
        assert len(ids) > 200
        assert all(i == request_row for i, request_row in ids)


def _affinity(declared: str) -> str:
    """SQLite's column affinity of a declared type (sqlite.org/datatype3.html, 3.1)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if any(s in t for s in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in t or not t:
        return "BLOB"
    if any(s in t for s in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def test_staged_calls_have_the_shape_of_tool_executions() -> None:
    """A rebuild copies the staged calls with SQLite's record-for-record transfer, which
    it uses only for two tables of the same shape (queries/load_copy_calls.sql)."""
    conn = sqlite3.connect(":memory:")
    for statement in statements(sql("schema")):
        if statement.startswith("CREATE TABLE IF NOT EXISTS tool_executions "):
            conn.execute(statement)
    for statement in staged_calls_tables():
        conn.execute(statement)

    def shape(table: str) -> list[tuple[str, str, int, int]]:
        return [
            (name, _affinity(declared), notnull, pk)
            for _, name, declared, notnull, _, pk in conn.execute(
                f"PRAGMA table_info({table})"  # our own table names
            )
        ]

    for staged in ("executions", "executions_open"):
        assert shape(staged) == shape("tool_executions")
        # DuckDB, which writes the staged calls, must read every time column as text.
        types = dict((r[1], r[2]) for r in conn.execute(f"PRAGMA table_info({staged})"))
        assert "DATETIME" not in types.values()
        assert types["request_time"] == "STAMP"
