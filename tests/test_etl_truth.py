"""The ETL against the demo generator's ground truth (SPEC §2, §3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import etl, make_demo, outputs


def score(db: Path, truth: dict[str, Any]) -> dict[str, float]:
    """Fraction of truth calls the ETL got right, per aspect."""
    conn = sqlite3.connect(db)
    rows = {
        r[0]: r
        for r in conn.execute(
            "SELECT interaction_request_id, interaction_response_id, session_id, tool_name, "
            "status, duration_ms FROM tool_executions"
        )
    }
    errors = dict(
        conn.execute(
            "SELECT interaction_id, interaction_request_id FROM errors "
            "WHERE interaction_id IS NOT NULL"
        ).fetchall()
    )
    conn.close()
    calls = truth["executions"]
    hits = dict.fromkeys(("found", "pairing", "attribution", "tool", "status", "duration"), 0)
    hits["error_linkage"] = 0
    for call in calls:
        row = rows.get(call["request_row_id"])
        if row is None:
            continue
        hits["found"] += 1
        hits["pairing"] += row[1] == call["response_row_id"]
        hits["attribution"] += row[2] == call["session_id"]
        hits["tool"] += row[3] == call["tool_name"]
        hits["status"] += row[4] == call["status"]
        want, got = call["duration_ms"], row[5]
        hits["duration"] += (want is None and got is None) or (
            want is not None and got is not None and abs(got - want) < 0.001
        )
        err = call.get("error_interaction_id")
        hits["error_linkage"] += err is None or errors.get(err) == call["request_row_id"]
    assert len(rows) == len(calls), "one execution per tools/call request with an id"
    return {k: v / len(calls) for k, v in hits.items()}


@pytest.mark.parametrize("seed", [1, 2])
def test_quirky_producer_is_paired_and_attributed(tmp_path: Path, seed: int) -> None:
    source, truth = make_demo(tmp_path, calls=3000, seed=seed)
    etl(source)
    result = score(source, truth)
    assert min(result.values()) >= 0.999, result


def test_consistent_sessions_are_exact(tmp_path: Path) -> None:
    source, truth = make_demo(tmp_path, calls=3000, seed=5, consistent=True)
    etl(source)
    result = score(source, truth)
    assert all(v == 1.0 for v in result.values()), result


def test_small_batches_give_the_same_answer(tmp_path: Path) -> None:
    """A request and its response in different batches still pair."""
    source, truth = make_demo(tmp_path, calls=800, seed=7)
    target = tmp_path / "small-batches.db"
    etl(source, target=target, batch_rows=100)
    result = score(target, truth)
    assert min(result.values()) >= 0.999, result


def test_separate_target_leaves_the_source_untouched(tmp_path: Path) -> None:
    source, _ = make_demo(tmp_path, calls=100, seed=3)
    before = source.read_bytes()
    etl(source, target=tmp_path / "analytics.db")
    assert source.read_bytes() == before


def test_error_rows_take_context_from_the_request(tmp_path: Path) -> None:
    source, truth = make_demo(tmp_path, calls=1500, seed=11)
    etl(source)
    conn = sqlite3.connect(source)
    rows = conn.execute(
        "SELECT e.tool_name, e.method, e.session_id, t.tool_name, t.session_id, e.error_type "
        "FROM errors e JOIN tool_executions t "
        "ON t.interaction_request_id = e.interaction_request_id "
        "WHERE e.error_source <> 'request_error_event'"
    ).fetchall()
    conn.close()
    assert rows, "the demo has tool errors"
    for tool, method, session, t_tool, t_session, error_type in rows:
        assert (tool, method, session, error_type) == (
            t_tool,
            "tools/call",
            t_session,
            "tool_error",
        )
    assert truth["executions"]


def test_request_error_events_link_to_the_failed_call(tmp_path: Path) -> None:
    """A proxy failure names no request; it takes the call open on that REPL at the time."""
    source, _ = make_demo(tmp_path, calls=3000, seed=2)
    etl(source)
    conn = sqlite3.connect(source)
    rows = conn.execute(
        "SELECT e.source_session_id, e.session_id, e.tool_name, t.route, t.session_id, "
        "t.tool_name, t.status, e.error_type "
        "FROM errors e LEFT JOIN tool_executions t "
        "ON t.interaction_request_id = e.interaction_request_id "
        "WHERE e.error_source = 'request_error_event'"
    ).fetchall()
    conn.close()
    assert rows, "the demo's REPL drops produce request.error events"
    for repl, session, tool, route, t_session, t_tool, status, error_type in rows:
        assert (route, session, tool, status, error_type) == (
            repl,
            t_session,
            t_tool,
            "error",
            "system_error",
        )


def test_tiny_batches_give_identical_tables(tmp_path: Path) -> None:
    """Responses and cancellations that come batches after their request, and requests
    left open across many batches, give exactly the tables of one batch."""
    source, _ = make_demo(tmp_path, calls=300, seed=12)
    one = tmp_path / "one-batch.db"
    etl(source, target=one, batch_rows=1_000_000)
    tiny = tmp_path / "tiny-batches.db"
    etl(source, target=tiny, batch_rows=7)
    assert outputs(tiny) == outputs(one)
