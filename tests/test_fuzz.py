"""Hostile and malformed input (issue 6): every row is accounted for, nothing crashes,
and data never becomes SQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import HOSTILE_INPUT_CHECKS, etl, new_live_source, shift_ts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

INJECTION = "x'); DROP TABLE tool_executions;--"
SESSIONS = ["proxy", "repl-1", INJECTION, "0", "", "séance ✓", "a\x00b"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(2**63, 2**70),  # beyond int64
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
any_json = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
ids = st.one_of(
    scalars, st.lists(scalars, max_size=2), st.dictionaries(st.text(max_size=2), scalars)
)
methods = st.one_of(
    st.sampled_from(
        ["tools/call", "tools/list", "initialize", "notifications/cancelled", "ping", "x/y"]
    ),
    any_json,
)
params = st.one_of(
    any_json,
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.one_of(st.text(max_size=10), st.just(INJECTION), any_json),
            "arguments": any_json,
            "requestId": ids,
            "reason": any_json,
            "protocolVersion": st.one_of(st.just("2025-06-18"), any_json),
            "clientInfo": any_json,
            "capabilities": any_json,
            "_meta": any_json,
        },
    ),
)
results = st.one_of(
    any_json,
    st.fixed_dictionaries(
        {},
        optional={
            "content": st.one_of(
                any_json,
                st.lists(st.fixed_dictionaries({"type": any_json, "text": any_json}), max_size=3),
            ),
            "isError": any_json,
            "structuredContent": any_json,
            "resultType": any_json,
            "task": any_json,
        },
    ),
)
errors = st.one_of(
    any_json,
    st.fixed_dictionaries({}, optional={"code": any_json, "message": any_json, "data": any_json}),
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.one_of(st.just("2.0"), any_json),
        "id": ids,
        "method": methods,
        "params": params,
        "result": results,
        "error": errors,
    },
)


def _deep(depth: int) -> str:
    return (
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + "[" * depth + "]" * depth + "}"
    )


contents: st.SearchStrategy[Any] = st.one_of(
    messages.map(json.dumps),
    messages.map(lambda m: json.dumps(m, ensure_ascii=False)),
    any_json.map(json.dumps),
    st.text(max_size=40),  # mostly not JSON
    st.just(""),
    st.just("   "),
    st.just('{"jsonrpc":"2.0","id":1,"result":{},}'),  # trailing comma
    st.just('{"jsonrpc":"2.0","id":NaN,"result":{}}'),
    st.just('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a\\u0000b"}}'),
    st.just('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"nul\x00raw"}}'),
    st.builds(lambda n: _deep(n), st.sampled_from([64, 1000, 5000])),
    st.just(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 7,
                "result": {"content": [{"type": "text", "text": "z" * 1_100_000}]},
            }
        )
    ),
    st.binary(min_size=1, max_size=20).map(lambda b: b"\xff\xfe" + b),  # invalid UTF-8
)

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["inbound", "outbound", "sideways"]), st.sampled_from(SESSIONS), contents
    ),
    min_size=1,
    max_size=25,
)
event_data = st.one_of(
    any_json.map(json.dumps),
    st.text(max_size=20),
    st.fixed_dictionaries(
        {"method": any_json, "request_id": ids, "client_name": any_json, "target_repl_id": any_json}
    ).map(json.dumps),
)
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "request.received",
                "session.initialized",
                "request.error",
                "repl.registered",
                "repl.unregistered",
                "tool.call.start",
                "something.else",
            ]
        ),
        st.sampled_from(SESSIONS),
        event_data,
    ),
    max_size=10,
)


def _build(
    path: Path, rows: list[tuple[str, str, Any]], events: list[tuple[str, str, str]]
) -> None:
    new_live_source(path)
    conn = sqlite3.connect(path)
    start = "2026-11-20 08:00:00.000"
    with conn:
        for i, (direction, session, content) in enumerate(rows):
            # Bytes that are not UTF-8 go in as TEXT, as a producer writing raw bytes would.
            conn.execute(
                "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
                "content, content_size) VALUES (?, ?, ?, 'request', CAST(? AS TEXT), ?)",
                (session, shift_ts(start, 10 * i), direction, content, len(content)),
            )
        for i, (etype, session, data) in enumerate(events):
            conn.execute(
                "INSERT INTO events (session_id, event_type, timestamp, data) VALUES (?, ?, ?, ?)",
                (session, etype, shift_ts(start, 10 * i + 3), data),
            )
    conn.close()


# Where each interaction can be accounted for (docs/rules.md, "Every row is accounted for").
ACCOUNTED = """
SELECT interaction_request_id FROM tool_executions
UNION SELECT interaction_response_id FROM tool_executions
UNION SELECT interaction_id FROM etl_requests
UNION SELECT response_interaction_id FROM etl_requests
UNION SELECT interaction_id FROM errors
UNION SELECT interaction_id FROM etl_other_messages
UNION SELECT source_id FROM etl_rejects WHERE source_table = 'interactions'
"""


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=HOSTILE_INPUT_CHECKS,
)
@given(rows=rows_strategy, events=events_strategy)
def test_every_row_lands_in_a_table_or_in_rejects(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str, str, Any]],
    events: list[tuple[str, str, str]],
) -> None:
    source = tmp_path_factory.mktemp("fuzz") / "events.db"
    _build(source, rows, events)
    etl(source)
    etl(source)  # a second run over the same rows changes nothing and does not fail
    conn = sqlite3.connect(source)
    ids = {r[0] for r in conn.execute("SELECT id FROM interactions")}
    accounted = {r[0] for r in conn.execute(ACCOUNTED) if r[0] is not None}
    assert ids <= accounted, f"unaccounted interactions: {sorted(ids - accounted)}"
    bad_events = {
        r[0]
        for r in conn.execute(
            "SELECT id FROM events WHERE data IS NOT NULL AND NOT json_valid(data)"
        )
    }
    rejected = {
        r[0]
        for r in conn.execute("SELECT source_id FROM etl_rejects WHERE source_table = 'events'")
    }
    assert bad_events <= rejected
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'tool_executions'"
        ).fetchone()[0]
        == 1
    )
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_hostile_names_are_stored_literally(tmp_path: Path) -> None:
    folder = tmp_path / 'it\'s a "quoted" dir; with spaces'
    folder.mkdir()
    source = folder / "events's log.db"
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": INJECTION, "arguments": {"q": "'; SELECT 1; --"}},
    }
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "ok"}]}}
    _build(
        source,
        [("inbound", INJECTION, json.dumps(call)), ("outbound", "proxy", json.dumps(answer))],
        [],
    )
    target = folder / "analytics 'out'.db"
    etl(source, target=target)
    conn = sqlite3.connect(target)
    row = conn.execute(
        "SELECT tool_name, source_session_id, arguments, status FROM tool_executions"
    ).fetchone()
    conn.close()
    assert row == (INJECTION, INJECTION, '{"q":"\'; SELECT 1; --"}', "success")
