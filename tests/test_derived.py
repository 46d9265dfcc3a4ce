"""performance_metrics, client_sessions, session_lifecycle and the views (SPEC §6)."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipeline.run
from pipeline.transform.metrics import HISTOGRAM_MS, latency_metrics
from tests.helpers import copy_until, etl, make_demo, new_live_source, outputs, shift_ts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def quirky(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A 3000-call demo with every producer quirk, after one ETL run."""
    source, truth = make_demo(tmp_path_factory.mktemp("derived"), calls=3000, seed=4)
    etl(source)
    return source, truth


def _numpy_buckets(durations: dict[tuple[str, str | None], list[float]]) -> dict[Any, Any]:
    out = {}
    for key, values in durations.items():
        arr = np.asarray(values)
        out[key] = (
            len(values),
            *(float(np.percentile(arr, q, method="linear")) for q in (50, 95, 99)),
            float(arr.mean()),
            float(arr.min()),
            float(arr.max()),
        )
    return out


# ---------------------------------------------------------------- percentiles ------


durations_st = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 47),  # hour within two days
        st.floats(0, 400_000, allow_nan=False, allow_infinity=False),
        st.booleans(),
    ),
    min_size=1,
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(durations_st)
def test_percentiles_equal_numpy_for_every_bucket(rows: list[tuple[str, int, float, bool]]) -> None:
    frame = pl.DataFrame(
        {
            "tool_name": [r[0] for r in rows],
            "request_time": [
                f"2026-11-{20 + h // 24:02d} {h % 24:02d}:{i % 60:02d}:00.000"
                for i, (_, h, _, _) in enumerate(rows)
            ],
            "duration_ms": [r[2] for r in rows],
            "status": ["error" if r[3] else "success" for r in rows],
        }
    )
    got = latency_metrics(frame)
    expected: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    errors: dict[tuple[str, str | None], int] = defaultdict(int)
    for row in frame.iter_rows(named=True):
        for name, prefix, pad in (
            ("latency_1h", 13, ":00:00.000"),
            ("latency_1d", 10, " 00:00:00.000"),
        ):
            bucket = name + row["request_time"][:prefix] + pad
            for tool in (row["tool_name"], None):
                expected[(bucket, tool)].append(row["duration_ms"])
                errors[(bucket, tool)] += row["status"] == "error"
    want = _numpy_buckets(expected)
    assert got.height == len(want)
    for m in got.iter_rows(named=True):
        key = (m["metric_name"] + m["timestamp"], m["tool_name"])
        n, p50, p95, p99, mean, lo, hi = want[key]
        assert m["execution_count"] == n
        assert m["error_count"] == errors[key]
        assert m["p50_ms"] == pytest.approx(p50, rel=1e-12, abs=1e-9)
        assert m["p95_ms"] == pytest.approx(p95, rel=1e-12, abs=1e-9)
        assert m["p99_ms"] == pytest.approx(p99, rel=1e-12, abs=1e-9)
        assert m["duration_ms"] == pytest.approx(mean, rel=1e-9, abs=1e-9)
        assert lo <= m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"] <= hi
        assert (m["min_ms"], m["max_ms"]) == (lo, hi)
        hist = [m[c] for c in HISTOGRAM_MS] + [m["hist_inf"]]
        assert sum(hist) == n
        bounds = [0.0, *HISTOGRAM_MS.values(), float("inf")]
        values = expected[key]
        for count, low, high in zip(hist, bounds, bounds[1:], strict=False):
            inside = sum(1 for v in values if (v > low or low == 0.0) and v <= high)
            assert count == inside
        seconds = 3600 if m["metric_name"] == "latency_1h" else 86400
        assert m["throughput"] == pytest.approx(n / seconds)


def test_stored_hourly_buckets_equal_numpy_on_the_demo(quirky: tuple[Path, Any]) -> None:
    source, _ = quirky
    conn = sqlite3.connect(source)
    durations: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    for tool, ts, dur in conn.execute(
        "SELECT tool_name, request_time, duration_ms FROM tool_executions "
        "WHERE status IN ('success', 'error')"
    ):
        hour = ts[:13] + ":00:00.000"
        durations[(hour, tool)].append(dur)
        durations[(hour, None)].append(dur)
    stored = conn.execute(
        "SELECT timestamp, tool_name, execution_count, p50_ms, p95_ms, p99_ms, duration_ms, "
        "min_ms, max_ms FROM performance_metrics "
        "WHERE metric_type = 'tool_execution' AND metric_name = 'latency_1h'"
    ).fetchall()
    conn.close()
    want = _numpy_buckets(durations)
    assert len(stored) == len(want) > 100
    for ts, tool, *values in stored:
        expected = want[(ts, tool)]
        assert values[0] == expected[0]
        assert values[1:] == pytest.approx(list(expected[1:]), abs=0.01)


def test_each_run_records_its_own_etl_metric(tmp_path: Path) -> None:
    source, _ = make_demo(tmp_path, calls=300, seed=3)
    first = etl(source)
    second = etl(source)
    etl(source, full=True)
    conn = sqlite3.connect(source)
    rows = conn.execute(
        "SELECT session_id, metric_name, duration_ms, throughput, memory_mb, cpu_percent, "
        "rows_read FROM performance_metrics WHERE metric_type = 'etl' ORDER BY id"
    ).fetchall()
    conn.close()
    assert [r[1] for r in rows] == ["run_full", "run_incremental", "run_full"]
    assert [r[0] for r in rows[:2]] == [first.run_id, second.run_id]
    for _, _, duration, throughput, memory, cpu, rows_read in rows:
        assert duration > 0 and memory > 10 and cpu > 0
        assert throughput == pytest.approx(rows_read / (duration / 1000))
    assert rows[0][6] == first.interactions_read + first.events_read > 0


# ------------------------------------------------------------- client sessions ------


@pytest.mark.parametrize("consistent", [False, True])
def test_client_sessions_equal_the_generator_truth(tmp_path: Path, consistent: bool) -> None:
    source, truth = make_demo(tmp_path, calls=2000, seed=8, consistent=consistent)
    etl(source)
    conn = sqlite3.connect(source)
    got = {
        r[0]: r
        for r in conn.execute(
            "SELECT session_id, client_name, client_version, protocol_version, target_repl, "
            "total_requests, total_errors, session_kind FROM client_sessions"
        )
    }
    conn.close()
    want = {
        s["session_id"]: (
            s["session_id"],
            s["client_name"],
            s["client_version"],
            s["protocol_version"],
            s["target_repl"],
            s["total_requests"],
            s["total_errors"],
            "stateless" if s["stateless"] else "initialize",
        )
        for s in truth["client_sessions"]
    }
    assert got == want


def test_capability_flags_follow_the_documented_rule(quirky: tuple[Path, Any]) -> None:
    source, _ = quirky
    conn = sqlite3.connect(source)
    rows = conn.execute(
        "SELECT client_name, capabilities, supports_roots, supports_sampling, "
        "supports_elicitation, supports_notifications, supports_streaming, "
        "supported_content_types, protocol_version, initialization_params FROM client_sessions"
    ).fetchall()
    conn.close()
    for name, caps, roots, sampling, elicit, notify, stream, types, proto, params in rows:
        if caps is None:
            assert (roots, sampling, elicit, notify) == (None, None, None, None), name
        else:
            parsed = json.loads(caps)
            assert roots == ("roots" in parsed)
            assert sampling == ("sampling" in parsed)
            assert elicit == ("elicitation" in parsed)
            assert notify == (parsed.get("roots", {}).get("listChanged") is True)
        assert stream == (proto >= "2025-03-26")
        assert ("audio" in json.loads(types)) == (proto >= "2025-03-26")
        assert ("resource_link" in json.loads(types)) == (proto >= "2025-06-18")
        if params is not None:
            assert json.loads(params)["clientInfo"]["name"] == name


def test_idle_sessions_are_disconnected_at_their_last_activity(quirky: tuple[Path, Any]) -> None:
    source, truth = quirky
    newest = truth["newest_timestamp"]
    conn = sqlite3.connect(source)
    for status, last, disconnect in conn.execute(
        "SELECT status, last_activity, disconnect_time FROM client_sessions"
    ):
        idle_ms = np.datetime64(newest.replace(" ", "T")) - np.datetime64(last.replace(" ", "T"))
        if idle_ms > np.timedelta64(30, "m"):
            assert (status, disconnect) == ("disconnected", last)
        else:
            assert (status, disconnect) == ("active", None)
    conn.close()


# ---------------------------------------------------------------- lifecycle ------


def test_lifecycle_chains_each_state_to_the_previous(quirky: tuple[Path, Any]) -> None:
    source, _ = quirky
    conn = sqlite3.connect(source)
    rows = conn.execute(
        "SELECT entity_type, session_id, from_state, to_state, triggered_by, event_type "
        "FROM session_lifecycle ORDER BY entity_type, session_id, timestamp, id"
    ).fetchall()
    clients = {r[0] for r in conn.execute("SELECT session_id FROM client_sessions")}
    conn.close()
    previous: dict[tuple[str, str], str | None] = {}
    for entity, sid, from_state, to_state, triggered_by, event_type in rows:
        assert from_state == previous.get((entity, sid))
        assert from_state != to_state
        assert event_type == to_state
        assert triggered_by in {"client", "server", "timeout", "error"}
        previous[(entity, sid)] = to_state
    assert clients == {sid for entity, sid in previous if entity == "client"}


def test_dropped_repls_show_disconnect_and_return(tmp_path: Path) -> None:
    source, truth = make_demo(tmp_path, calls=6000, seed=6)
    etl(source)
    conn = sqlite3.connect(source)
    for drop in truth["repl_drops"]:
        states = conn.execute(
            "SELECT timestamp, to_state, triggered_by FROM session_lifecycle "
            "WHERE entity_type = 'repl' AND session_id = ? ORDER BY timestamp, id",
            (drop["repl_id"],),
        ).fetchall()
        down = [s for s in states if s[1] == "disconnected"]
        assert len(down) == 1
        assert shift_ts(drop["unregistered_at"], 0) <= down[0][0]
        assert down[0][0] <= shift_ts(drop["unregistered_at"], 10)
        after = [s for s in states if s[0] > down[0][0]]
        back = [s for s in after if s[1] == "connected"]
        assert back, states
        assert shift_ts(drop["registered_again_at"], 0) <= back[0][0]
        assert back[0][0] <= shift_ts(drop["registered_again_at"], 10)
        # Calls that failed while it was down mark it reconnecting in between.
        between = [s[1] for s in after if s[0] < back[0][0]]
        assert set(between) <= {"reconnecting"}
        failed = conn.execute(
            "SELECT COUNT(*) FROM errors WHERE error_source = 'request_error_event' "
            "AND source_session_id = ? AND timestamp BETWEEN ? AND ?",
            (drop["repl_id"], down[0][0], back[0][0]),
        ).fetchone()[0]
        assert (between == ["reconnecting"]) == (failed > 0)
    conn.close()


# -------------------------------------------------------------------- views ------


def test_session_summary_sums_each_side_once(quirky: tuple[Path, Any]) -> None:
    source, _ = quirky
    conn = sqlite3.connect(source)
    summary = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT session_id, total_tool_calls, total_errors, total_execution_time_ms "
            "FROM v_session_summary"
        )
    }
    calls = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT session_id, COUNT(*), SUM(duration_ms) FROM tool_executions GROUP BY 1"
        )
    }
    errors = dict(conn.execute("SELECT session_id, COUNT(*) FROM errors GROUP BY 1").fetchall())
    conn.close()
    both = [sid for sid in calls if errors.get(sid, 0) > 0 and calls[sid][0] > 1]
    assert len(both) >= 5, "sessions with both executions and errors exist"
    for sid, (count, total_ms) in calls.items():
        assert summary[sid][0] == count
        assert summary[sid][1] == errors.get(sid, 0)
        assert summary[sid][2] == pytest.approx(total_ms)


def test_dashboard_views_return_rows(quirky: tuple[Path, Any]) -> None:
    source, _ = quirky
    conn = sqlite3.connect(source)
    for view in (
        "v_daily_tool_usage",
        "v_session_summary",
        "v_error_hotspots",
        "v_latency_histogram",
        "v_tool_latency_hourly",
        "v_client_activity",
    ):
        assert conn.execute(f"SELECT COUNT(*) FROM {view}").fetchone()[0] > 0, view  # noqa: S608
    hist = conn.execute(
        "SELECT SUM(execution_count) FROM v_latency_histogram WHERE tool_name IS NULL"
    ).fetchone()[0]
    answered = conn.execute(
        "SELECT COUNT(*) FROM tool_executions WHERE status IN ('success', 'error')"
    ).fetchone()[0]
    conn.close()
    assert hist == answered


# ------------------------------------------------------------ incremental runs ------


def test_a_response_in_a_later_run_updates_every_derived_table(tmp_path: Path) -> None:
    """Split two runs between a slow call and its answer, with nothing else from that
    client in between: only the answer can mark the session and day as changed."""
    source, _ = make_demo(tmp_path, calls=1500, seed=5)
    reference = tmp_path / "reference.db"
    etl(source, target=reference)
    conn = sqlite3.connect(reference)
    lonely = conn.execute(
        """
        SELECT t.request_time, t.response_time FROM tool_executions AS t
        WHERE t.duration_ms > 1000 AND t.status IN ('success', 'error')
            AND NOT EXISTS (
                SELECT 1 FROM tool_executions AS o
                WHERE o.session_id = t.session_id
                    AND o.interaction_request_id <> t.interaction_request_id
                    AND (o.request_time BETWEEN t.request_time AND t.response_time
                        OR o.response_time BETWEEN t.request_time AND t.response_time))
            AND NOT EXISTS (
                SELECT 1 FROM etl_requests AS o
                WHERE o.session_id = t.session_id
                    AND o.request_time BETWEEN t.request_time AND t.response_time)
        ORDER BY t.request_time LIMIT 3
        """
    ).fetchall()
    conn.close()
    assert lonely, "the demo has slow calls answered while their client is quiet"
    for request_time, response_time in lonely:
        live, whole = tmp_path / f"live-{request_time}.db", tmp_path / f"whole-{request_time}.db"
        for db in (live, whole):
            new_live_source(db)
        # settle_ms=0: the call is settled in the first run, not read again in the next.
        copy_until(source, live, shift_ts(response_time, -1))
        assert etl(live, settle_ms=0).settled_interaction_id > 0
        copy_until(source, live, response_time)
        etl(live, settle_ms=0)
        copy_until(source, whole, response_time)
        etl(whole, full=True)
        assert outputs(live) == outputs(whole)


def test_a_full_run_derives_from_its_staged_rows_what_the_target_would_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full run reads derive's inputs from its staging file while it loads
    (derive.read_staged_facts); reading them from the loaded target must give the same
    tables, row for row and in the same row order. Rebuilding over earlier results and
    into the log itself (the live case) included."""
    source, _ = make_demo(tmp_path, calls=2500, seed=4)
    staged, direct = tmp_path / "staged.db", tmp_path / "direct.db"
    calls: list[bool] = []
    real_derive = pipeline.run.derive

    def from_target(*args: Any, **kwargs: Any) -> list[str]:
        calls.append(args[2] is not None)
        return real_derive(*args[:2])

    for target in (staged, direct):
        if target == direct:
            monkeypatch.setattr(pipeline.run, "derive", from_target)
        etl(source, target=target)
        etl(source, target=target, full=True)
    assert calls == [True, True]
    for table in (
        "performance_metrics",
        "client_sessions",
        "session_lifecycle",
        "etl_session_activity",
    ):
        assert _in_row_order(staged, table) == _in_row_order(direct, table), table
    assert outputs(staged) == outputs(direct)
    # The live case: the log is its own target, in WAL mode.
    monkeypatch.setattr(pipeline.run, "derive", real_derive)
    live = tmp_path / "live.db"
    live.write_bytes(source.read_bytes())
    etl(live, full=True)
    assert outputs(live) == outputs(direct)


CALL = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ex","arguments":{}}}'
ANSWER = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}'
INIT = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}'
INIT_ANSWER = '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}'


@pytest.mark.parametrize(
    "messages",
    [[], [CALL, ANSWER], [CALL], [INIT, INIT_ANSWER], [INIT], [INIT, INIT_ANSWER, CALL]],
    ids=["nothing", "answered-call", "open-call", "answered-request", "open-request", "both"],
)
def test_staged_reads_of_logs_with_kinds_of_rows_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, messages: list[str]
) -> None:
    """A staged table no batch wrote rows to still has declared types (DuckDB reads it
    back); the full run's derived tables equal those read from the target."""
    source = _log(
        tmp_path,
        [("s1", "inbound" if '"method"' in m else "outbound", m) for m in messages],
    )
    staged, direct = _staged_and_direct(source, tmp_path, monkeypatch)
    assert outputs(staged) == outputs(direct)


def test_staged_session_totals_break_ties_and_count_failed_requests_as_the_target_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """queries/derive_staged_activity.sql (DuckDB, a full run's staged rows) and
    derive_session_activity.sql (SQLite, the target) agree where they could drift: two
    REPLs that answered a session equally often (the first by name is its top REPL), one
    that answered another session more often than a REPL first by name, and a request
    other than tools/call answered with an error."""
    call = '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"ex"}}'
    answer = '{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"ok"}]}}'
    rows = [
        ("c1", "inbound", call % 1),
        ("repl-b", "outbound", answer % 1),
        ("c1", "inbound", call % 2),
        ("repl-a", "outbound", answer % 2),
        ("c1", "inbound", '{"jsonrpc":"2.0","id":3,"method":"prompts/list"}'),
        ("proxy", "outbound", '{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no"}}'),
        ("c2", "inbound", call % 1),
        ("repl-z", "outbound", answer % 1),
        ("c2", "inbound", call % 2),
        ("repl-a", "outbound", answer % 2),
        ("c2", "inbound", call % 3),
        ("repl-z", "outbound", answer % 3),
    ]
    staged, direct = _staged_and_direct(_log(tmp_path, rows), tmp_path, monkeypatch)
    for db in (staged, direct):
        conn = sqlite3.connect(db)
        totals = conn.execute(
            "SELECT session_id, requests, errors, top_repl FROM etl_session_activity "
            "WHERE session_id IN ('c1', 'c2') ORDER BY 1"
        ).fetchall()
        conn.close()
        assert totals == [("c1", 3, 1, "repl-a"), ("c2", 3, 0, "repl-z")], db.name
    assert outputs(staged) == outputs(direct)


def _log(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A producer log of interactions (session id, direction, content), 40 ms apart."""
    source = tmp_path / "log.db"
    new_live_source(source)
    conn = sqlite3.connect(source)
    with conn:
        for i, (session, direction, content) in enumerate(rows):
            conn.execute(
                "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
                "content, content_size) VALUES (?, ?, ?, 'request', ?, ?)",
                (
                    session,
                    shift_ts("2026-11-20 08:00:00.000", 40 * i),
                    direction,
                    content,
                    len(content),
                ),
            )
    conn.close()
    return source


def _staged_and_direct(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    """Two full runs of one log: derive's inputs read from the staging file (as a full
    run does), then read from the loaded target."""
    staged, direct = tmp_path / "staged.db", tmp_path / "direct.db"
    etl(source, target=staged)
    real_derive = pipeline.run.derive
    monkeypatch.setattr(pipeline.run, "derive", lambda *a, **_: real_derive(*a[:2]))
    etl(source, target=direct)
    return staged, direct


def _in_row_order(db: Path, table: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        where = "metric_type <> 'etl'" if table == "performance_metrics" else "true"
        return conn.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY rowid").fetchall()  # noqa: S608
    finally:
        conn.close()


def test_a_target_from_an_older_schema_is_rebuilt(tmp_path: Path) -> None:
    """Schema 1 lacked these columns: its derived tables are dropped and rebuilt,
    a person's resolutions are kept."""
    source, _ = make_demo(tmp_path, calls=200, seed=12)
    etl(source)
    fresh = outputs(source)
    conn = sqlite3.connect(source)
    with conn:
        conn.execute("UPDATE etl_metadata SET value = '1' WHERE key = 'schema_version'")
        conn.execute("DROP INDEX idx_tool_executions_answered")
        conn.execute("ALTER TABLE tool_executions DROP COLUMN answered_by")
        conn.execute("INSERT INTO error_resolutions VALUES ('i:1', 'kept', '2026-01-01 00:00:00')")
    conn.close()
    summary = etl(source)
    assert summary.mode == "full"
    assert outputs(source) == fresh
    conn = sqlite3.connect(source)
    assert conn.execute("SELECT resolution_notes FROM error_resolutions").fetchall() == [("kept",)]
    conn.close()
