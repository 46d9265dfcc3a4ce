"""request.error links and REPL lifecycles after an incremental run equal those of one
full run.

A request.error event names no call: it is linked to the latest call of its REPL and
method open at its time (queries/load_finish.sql). An incremental run relinks only the
errors whose link it can change (derive_mark_before.sql). Each case here is a log
whose second part changes a link only through one of the reasons a link can change:
a late-logged event, a late-logged call, a late-logged response, a response of the
re-read tail that pairs with another call.

A REPL's lifecycle is made of its registry events, its request.error events and the
first call it answers after a failure; an incremental run redoes only the REPLs whose
facts it changes (derive_mark_before.sql). Each REPL case changes one of them.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import etl, new_live_source, outputs

REPL = "repl-1"
OTHER_REPL = "repl-2"
CLIENT = "client-session-1"
OTHER_CLIENT = "client-session-2"

# ("i", time, logged session, direction, content) or ("e", time, session, type, data)
Row = tuple[str, str, str, str, object]


def _t(seconds: float) -> str:
    whole = int(seconds)
    return f"2026-11-20 08:{whole // 60:02d}:{whole % 60:02d}.{round((seconds % 1) * 1000):03d}"


def _init(at: float, client: str = CLIENT, repl: str = REPL) -> list[Row]:
    data = {"target_repl_id": repl, "client_name": "c", "capabilities": {}}
    return [("e", _t(at), client, "session.initialized", data)]


def _call(n: int, at: float, client: str = CLIENT) -> list[Row]:
    """A tools/call, logged under 'proxy', with the event that names its client."""
    body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "t"}}
    received = {"method": "tools/call", "request_id": n, "has_params": True, "path": "/mcp"}
    return [
        ("i", _t(at), "proxy", "inbound", body),
        ("e", _t(at + 0.001), client, "request.received", received),
    ]


def _call_as(n: int, at: float, logged_as: str, named_by: str, named_at: float) -> list[Row]:
    """A tools/call logged under `logged_as`, and a request.received of `named_by` with
    its method and id, at `named_at` (a different client's, or one logged late)."""
    body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "t"}}
    received = {"method": "tools/call", "request_id": n, "has_params": True, "path": "/mcp"}
    return [
        ("i", _t(at), logged_as, "inbound", body),
        ("e", _t(named_at), named_by, "request.received", received),
    ]


def _received(n: int, at: float, client: str) -> list[Row]:
    received = {"method": "tools/call", "request_id": n, "has_params": True, "path": "/mcp"}
    return [("e", _t(at), client, "request.received", received)]


def _reply(n: int, at: float, repl: str = REPL) -> list[Row]:
    body = {"jsonrpc": "2.0", "id": n, "result": {"content": [{"type": "text", "text": "ok"}]}}
    return [("i", _t(at), repl, "outbound", body)]


def _failure(at: float, repl: str = REPL) -> list[Row]:
    data = {"method": "tools/call", "error_type": "ConnectError", "error_message": "refused"}
    return [("e", _t(at), repl, "request.error", data)]


def _later() -> list[Row]:
    """A ping an hour later: what came before it is settled, and the second run reads
    only what follows (without it, the second run reads every interaction again)."""
    ping = {"jsonrpc": "2.0", "id": 99, "method": "ping"}
    received = {"method": "ping", "request_id": 99, "has_params": False, "path": "/mcp"}
    return [
        ("i", "2026-11-20 09:00:00.000", "proxy", "inbound", ping),
        ("e", "2026-11-20 09:00:00.001", CLIENT, "request.received", received),
        ("i", "2026-11-20 09:00:00.100", "proxy", "outbound", {"jsonrpc": "2.0", "id": 99}),
    ]


def _append(source: Path, rows: list[Row]) -> None:
    conn = sqlite3.connect(source)
    with conn:
        for kind, at, session, what, body in rows:
            text = json.dumps(body)
            if kind == "i":
                conn.execute(
                    "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
                    "content, content_size) VALUES (?, ?, ?, ?, ?, ?)",
                    (session, at, what, "request", text, len(text)),
                )
            else:
                conn.execute(
                    "INSERT INTO events (session_id, event_type, timestamp, data) "
                    "VALUES (?, ?, ?, ?)",
                    (session, what, at, text),
                )
    conn.close()


def _two_runs_and_one(
    tmp_path: Path, first: list[Row], second: list[Row], settled: bool
) -> tuple[Path, Path]:
    """The log read by two runs (live: the first part, then the second) and by one
    (whole); their outputs must be equal. settled=False drops the rows that settle the
    first part, so the second run reads every interaction again."""
    if not settled:
        first = [row for row in first if row not in _later()]
    live = tmp_path / "live.db"
    new_live_source(live)
    _append(live, first)
    etl(live)
    _append(live, second)
    summary = etl(live)
    whole = tmp_path / "whole.db"
    new_live_source(whole)
    _append(whole, first + second)
    etl(whole)
    assert summary.mode == "incremental"
    assert outputs(live) == outputs(whole)
    return live, whole


def _links(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT e.timestamp, t.request_id, t.request_time FROM errors AS e "
        "LEFT JOIN tool_executions AS t ON t.interaction_request_id = e.interaction_request_id "
        "WHERE e.error_source = 'request_error_event' ORDER BY e.timestamp"
    ).fetchall()
    conn.close()
    return rows


CASES: dict[str, tuple[list[Row], list[Row], list[tuple[object, ...]]]] = {
    # An event logged after the run that read the calls around it, by a REPL whose
    # calls are all settled: only the new event needs linking.
    "late_event": (
        [*_init(0), *_call(1, 1), *_reply(1, 5), *_later()],
        [*_failure(3)],
        [(_t(3), "1", _t(1))],
    ),
    # A call logged after the run that read the error, with an earlier time: the
    # error now belongs to it.
    "late_call": (
        [*_init(0), *_call(1, 1), *_failure(3), *_reply(1, 5), *_later()],
        [*_call(7, 2)],
        [(_t(3), "7", _t(2))],
    ),
    # A response logged after the run that read the error, with an earlier time: its
    # call was no longer open when the error came, the older call was.
    "late_response": (
        [*_init(0), *_call(1, 1), *_call(2, 2), *_failure(4), *_reply(1, 6), *_later()],
        [*_reply(2, 3)],
        [(_t(4), "1", _t(1))],
    ),
    # The re-read tail pairs a response with another call. Call 5 at 1 s is settled;
    # the second call 5, logged under the client's session at 9 s, is first named by
    # another client's event (whose REPL cannot answer it), so the response at 7 s
    # (logged after it) answers the first call. Its own client's event, logged later,
    # gives it the REPL: the response now answers it, and the first call is open again
    # at the error's time (8 s). Only the first call, which the rollback reset, changes
    # the link: the calls the run stages and answers are later than the error.
    "repaired_response": (
        [
            *_init(0),
            *_init(0.5, OTHER_CLIENT, OTHER_REPL),
            *_call(5, 1),
            *_failure(8),
            *_call_as(5, 9, CLIENT, OTHER_CLIENT, 9.001),
            *_reply(5, 7),
        ],
        [*_received(5, 9.5, CLIENT), *_later()],
        [(_t(8), "5", _t(1))],
    ),
}


@pytest.mark.parametrize("settled", [True, False], ids=["settled", "read-again"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_links_after_two_runs_equal_one_full_run(tmp_path: Path, case: str, settled: bool) -> None:
    first, second, expected = CASES[case]
    live, whole = _two_runs_and_one(tmp_path, first, second, settled)
    assert _links(whole) == expected
    assert _links(live) == expected


def _unregistered(at: float, repl: str = REPL) -> list[Row]:
    return [("e", _t(at), repl, "repl.unregistered", {"name": "r", "status": "stopped"})]


def _repl_states(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT session_id, timestamp, to_state FROM session_lifecycle "
        "WHERE entity_type = 'repl' ORDER BY session_id, timestamp, id"
    ).fetchall()
    conn.close()
    return rows


# Every call is answered: a call still open when a run ends takes its status from the
# newest row's time, which rows logged late with earlier times move back.
REPL_CASES: dict[str, tuple[list[Row], list[Row], list[tuple[object, ...]]]] = {
    # A failure logged after the run that read the calls around it.
    "late_failure": (
        [*_init(0), *_call(1, 1), *_reply(1, 2), *_later()],
        [*_failure(5)],
        [(REPL, _t(5), "error")],
    ),
    # The REPL answers a call logged late: it is connected again from that answer.
    "late_call_answered": (
        [*_init(0), *_call(1, 1), *_reply(1, 2), *_failure(3), *_later()],
        [*_call(2, 4), *_reply(2, 6)],
        [(REPL, _t(3), "error"), (REPL, _t(6), "connected")],
    ),
    # A call of the first run, answered by a response logged late.
    "late_response": (
        [*_init(0), *_call(1, 1), *_reply(1, 2), *_failure(3), *_call(2, 4), *_later()],
        [*_reply(2, 6)],
        [(REPL, _t(3), "error"), (REPL, _t(6), "connected")],
    ),
    # A registry event logged late.
    "late_unregistered": (
        [*_init(0), *_call(1, 1), *_reply(1, 2), *_failure(3), *_later()],
        [*_unregistered(5)],
        [(REPL, _t(3), "error"), (REPL, _t(5), "disconnected")],
    ),
    # A response of the re-read tail that then answers no call. Call 5 has no event
    # in the first run: its route is unknown, and the REPL's response answers it (the
    # REPL is connected again after its failure). Its event, logged late, names a
    # client of the other REPL, whose calls this REPL cannot answer: the response
    # answers nothing, and only the rollback knows the REPL it had answered for.
    "re_read_response_answers_nothing": (
        [
            *_init(0),
            *_init(0.5, OTHER_CLIENT, OTHER_REPL),
            *_call(1, 1),
            *_reply(1, 2),
            *_failure(10),
            ("i", _t(11), "proxy", "inbound", {"jsonrpc": "2.0", "id": 5, "method": "tools/call"}),
            *_reply(5, 12),
        ],
        [*_received(5, 11.001, OTHER_CLIENT)],
        [(REPL, _t(10), "error")],
    ),
    # Another REPL's lifecycle, which the run does not touch, stays as it was.
    "other_repl_kept": (
        [
            *_init(0),
            *_init(0.5, OTHER_CLIENT, OTHER_REPL),
            *_failure(2, OTHER_REPL),
            *_call(1, 1),
            *_reply(1, 3),
            *_later(),
        ],
        [*_failure(5)],
        [(REPL, _t(5), "error"), (OTHER_REPL, _t(2), "error")],
    ),
}


@pytest.mark.parametrize("settled", [True, False], ids=["settled", "read-again"])
@pytest.mark.parametrize("case", sorted(REPL_CASES))
def test_repl_lifecycles_after_two_runs_equal_one_full_run(
    tmp_path: Path, case: str, settled: bool
) -> None:
    first, second, expected = REPL_CASES[case]
    live, whole = _two_runs_and_one(tmp_path, first, second, settled)
    assert _repl_states(whole) == expected
    assert _repl_states(live) == expected
