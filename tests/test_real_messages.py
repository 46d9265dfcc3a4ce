"""The 118 real MCP messages of shared/mcp/real-messages.jsonl run through the whole ETL.

Each message becomes a producer row (requests and notifications inbound, results and
errors outbound, all under session 'proxy'); every tools/call result gets a matching
tools/call request just before it so that it pairs. The assertions are computed from
the JSON independently of the pipeline's own classification.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import EtlConfig
from pipeline.run import RunSummary, run

REPO = Path(__file__).resolve().parents[1]
MESSAGES = Path(__file__).resolve().parents[2] / "shared" / "mcp" / "real-messages.jsonl"
PRODUCER_SCHEMA = REPO / "queries" / "producer_schema.sql"
START = datetime(2025, 11, 25, 10, 0, 0)
STEP_MS = 20
PROBE_TOOL = "probe_tool"

# SPEC §3, written out again here so the test does not trust pipeline/transform/outcomes.py.
CATEGORIES = {
    -32700: "parse_error",
    -32600: "invalid_request",
    -32601: "method_not_found",
    -32602: "invalid_params",
    -32603: "internal_error",
    -32002: "resource_not_found",
    -32042: "url_elicitation_required",
    -32020: "header_mismatch",
    -32021: "missing_required_client_capability",
    -32022: "unsupported_protocol_version",
}


def expected_category(error: dict[str, Any]) -> str:
    code = error.get("code")
    if not isinstance(code, int):
        return "unknown_error"
    if code == 0 and "cancel" in str(error.get("message", "")).lower():
        return "request_cancelled"
    if code in CATEGORIES:
        return CATEGORIES[code]
    if -32099 <= code <= -32000:
        return "server_error"
    return "unknown_error"


@dataclass(frozen=True)
class Row:
    """One producer interaction row and the real message it came from."""

    iid: int
    line: int  # 0-based line of real-messages.jsonl; -1 for the probe requests we add
    kind: str
    direction: str
    message: Any  # the JSON value, or the raw text of a malformed message
    content: str


def _ts(ms: int) -> str:
    return (START + timedelta(milliseconds=ms)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _is_response(msg: Any) -> bool:
    return isinstance(msg, dict) and "method" not in msg and ("result" in msg or "error" in msg)


def _is_tool_result(kind: str, msg: Any) -> bool:
    return kind.startswith("tools/call_result") and _is_response(msg)


def _has_id(msg: Any) -> bool:
    return isinstance(msg, dict) and msg.get("id") is not None


def build_source(path: Path, lines: list[dict[str, Any]]) -> list[Row]:
    """Write the messages as producer rows into a fresh SQLite file; return the rows."""
    con = sqlite3.connect(path)
    con.executescript(PRODUCER_SCHEMA.read_text())
    rows: list[Row] = []
    clock = 0

    def interaction(line: int, kind: str, direction: str, msg: Any) -> int:
        nonlocal clock
        clock += STEP_MS
        content = msg if isinstance(msg, str) else json.dumps(msg)
        is_obj = isinstance(msg, dict)
        method = msg.get("method") if is_obj and direction == "inbound" else None
        rid = msg.get("id") if is_obj else None
        cur = con.execute(
            "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
            "request_id, method, content, content_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                "proxy",
                _ts(clock),
                direction,
                "request" if direction == "inbound" else "response",
                None if rid is None else str(rid),
                method if isinstance(method, str) else None,
                content,
                len(content.encode()),
            ),
        )
        assert cur.lastrowid is not None
        rows.append(Row(cur.lastrowid, line, kind, direction, msg, content))
        return cur.lastrowid

    for session in ("proxy", "client-1"):
        con.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, 'active', '{\"auto_created\":true}')",
            (session, _ts(0), _ts(0)),
        )
    for n, line in enumerate(lines):
        kind, msg = line["kind"], line["message"]
        if _is_tool_result(kind, msg) and _has_id(msg):
            call = {
                "jsonrpc": "2.0",
                "id": msg["id"],
                "method": "tools/call",
                "params": {"name": PROBE_TOOL, "arguments": {"line": n}},
            }
            interaction(-1, "probe tools/call request", "inbound", call)
            data = {
                "method": "tools/call",
                "request_id": msg["id"],
                "has_params": True,
                "path": "/",
            }
            con.execute(
                "INSERT INTO events (session_id, event_type, timestamp, data) "
                "VALUES ('client-1', 'request.received', ?, ?)",
                (_ts(clock + 3), json.dumps(data)),
            )
        inbound = isinstance(msg, str | list) or (isinstance(msg, dict) and "method" in msg)
        interaction(n, kind, "inbound" if inbound else "outbound", msg)
    con.commit()
    con.close()
    return rows


@dataclass
class Outcome:
    rows: list[Row]
    summary: RunSummary
    executions: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    rejects: dict[int, str]


def _select(con: sqlite3.Connection, query: str) -> list[dict[str, Any]]:
    cur = con.execute(query)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    if not MESSAGES.exists():
        pytest.skip(f"{MESSAGES} is missing: clone the shared/ folder beside the repository")
    lines = [json.loads(t) for t in MESSAGES.read_text(encoding="utf-8").splitlines() if t.strip()]
    assert len(lines) == 118
    folder = tmp_path_factory.mktemp("real")
    source, target = folder / "events.db", folder / "analytics.db"
    rows = build_source(source, lines)
    summary = run(EtlConfig(source=source, target=target, quiet=True))
    con = sqlite3.connect(target)
    try:
        executions = _select(con, "SELECT * FROM tool_executions")
        requests = _select(con, "SELECT * FROM etl_requests")
        errors = _select(con, "SELECT * FROM errors")
        rejects = dict(
            con.execute(
                "SELECT source_id, reason FROM etl_rejects WHERE source_table = 'interactions'"
            ).fetchall()
        )
    finally:
        con.close()
    return Outcome(rows, summary, executions, requests, errors, rejects)


def test_run_reads_every_row(outcome: Outcome) -> None:
    assert outcome.summary.interactions_read == len(outcome.rows)
    assert sum(outcome.summary.rejects.values()) == len(outcome.rejects)


def test_non_json_rows_are_rejected(outcome: Outcome) -> None:
    raw = [r for r in outcome.rows if isinstance(r.message, str)]
    assert len(raw) == 7
    for r in raw:
        with pytest.raises(ValueError):
            json.loads(r.content)
    by_request = {e["interaction_request_id"] for e in outcome.executions}
    by_response = {e["interaction_response_id"] for e in outcome.executions}
    misread = [
        (r.line, r.kind, outcome.rejects.get(r.iid))
        for r in raw
        if outcome.rejects.get(r.iid) != "invalid_json"
        or r.iid in by_request | by_response
        or any(e["interaction_id"] == r.iid for e in outcome.errors)
    ]
    # DuckDB's json_valid accepts a trailing comma: line 55 ('{"jsonrpc": "2.0",
    # "method": "tools/call", ..., "id": 1,}') must still be rejected as invalid_json.
    assert misread == []


def test_batches_are_rejected(outcome: Outcome) -> None:
    batches = [r for r in outcome.rows if isinstance(r.message, list)]
    assert len(batches) == 4
    for r in batches:
        assert outcome.rejects.get(r.iid) == "batch_not_supported", r.kind


def test_bare_error_objects_are_rejected(outcome: Outcome) -> None:
    # {"code": ..., "message": ...} alone is an error member, not a JSON-RPC message.
    bare = [
        r
        for r in outcome.rows
        if isinstance(r.message, dict) and "code" in r.message and "jsonrpc" not in r.message
    ]
    assert len(bare) == 3
    for r in bare:
        assert r.iid in outcome.rejects, r.kind
        assert not any(e["interaction_id"] == r.iid for e in outcome.errors)


def test_tool_results_pair_with_their_call(outcome: Outcome) -> None:
    by_response = {e["interaction_response_id"]: e for e in outcome.executions}
    previous: dict[int, Row] = {}
    for before, r in zip(outcome.rows, outcome.rows[1:], strict=False):
        previous[r.iid] = before
    paired = 0
    for r in outcome.rows:
        if not (_is_tool_result(r.kind, r.message) and _has_id(r.message)):
            continue
        execution = by_response.get(r.iid)
        assert execution is not None, f"line {r.line} ({r.kind}) did not pair"
        assert execution["interaction_request_id"] == previous[r.iid].iid
        assert execution["tool_name"] == PROBE_TOOL
        assert execution["session_id"] == "client-1"
        assert execution["source_session_id"] == "proxy"
        assert execution["request_id"] == str(r.message["id"])
        paired += 1
    assert paired == 15


def test_is_error_results_are_tool_errors(outcome: Outcome) -> None:
    by_response = {e["interaction_response_id"]: e for e in outcome.executions}
    errors = {e["interaction_id"]: e for e in outcome.errors}
    seen = 0
    for r in outcome.rows:
        if not (_is_response(r.message) and r.message.get("result", {}).get("isError") is True):
            continue
        seen += 1
        error = errors.get(r.iid)
        assert error is not None, f"line {r.line} ({r.kind}) has no errors row"
        assert error["error_category"] == "tool_execution_error"
        assert error["error_source"] == "is_error_result"
        assert error["error_code"] is None
        first_text = next(
            (c["text"] for c in r.message["result"]["content"] if c.get("type") == "text"), None
        )
        if not _has_id(r.message):
            # Line 103: a fragment without an id cannot pair, so no execution to mark.
            assert r.iid not in by_response
            continue
        assert by_response[r.iid]["status"] == "error", r.kind
        assert error["error_type"] == "tool_error"
        assert error["tool_name"] == PROBE_TOOL
        assert error["method"] == "tools/call"
        assert error["session_id"] == "client-1"
        if first_text is not None:
            assert error["message"] == first_text
    assert seen == 8


def test_is_error_false_results_succeed(outcome: Outcome) -> None:
    by_response = {e["interaction_response_id"]: e for e in outcome.executions}
    for r in outcome.rows:
        if not (_is_tool_result(r.kind, r.message) and _has_id(r.message)):
            continue
        result = r.message.get("result", {})
        if result.get("isError") is True:
            continue
        expected = (
            "pending"
            if result.get("resultType") == "input_required" or "task" in result
            else "success"
        )
        assert by_response[r.iid]["status"] == expected, (r.line, r.kind)


def test_every_jsonrpc_error_response_is_an_errors_row(outcome: Outcome) -> None:
    errors = {e["interaction_id"]: e for e in outcome.errors}
    codes_seen: set[int] = set()
    for r in outcome.rows:
        if not (_is_response(r.message) and "error" in r.message):
            continue
        error = errors.get(r.iid)
        assert error is not None, f"line {r.line} ({r.kind}) has no errors row"
        code = r.message["error"]["code"]
        codes_seen.add(code)
        assert error["error_code"] == code
        assert error["error_category"] == expected_category(r.message["error"]), r.kind
        assert error["error_source"] == "jsonrpc_error"
        assert error["message"] == r.message["error"]["message"]
        assert error["error_key"] == f"i:{r.iid}"
    # The codes the brief names explicitly, so a reshuffled fixture cannot hide them.
    assert {-32602, -32601, -32042, 0, -32600, -32002, -32000, -32001, -1} <= codes_seen


def test_named_error_categories(outcome: Outcome) -> None:
    by_row = {r.iid: r for r in outcome.rows}
    got: dict[tuple[int, str], str] = {}
    for e in outcome.errors:
        r = by_row.get(e["interaction_id"])
        if r is not None and _is_response(r.message) and "error" in r.message:
            err = r.message["error"]
            got[(err["code"], err["message"])] = e["error_category"]
    assert got[(0, "Request cancelled")] == "request_cancelled"
    assert got[(-32602, "Unknown tool: invalid_tool_name")] == "invalid_params"
    assert got[(-32601, "Roots not supported")] == "method_not_found"
    assert got[(-32042, "This request requires more information.")] == ("url_elicitation_required")
    assert got[
        (-32020, "Header mismatch: Mcp-Name header value 'foo' does not match body value 'bar'")
    ] == ("header_mismatch")
    assert got[(-32001, "Session not found")] == "server_error"
    assert got[(-1, "User rejected sampling request")] == "unknown_error"


def test_parse_error_code_maps_to_parse_error(outcome: Outcome, tmp_path: Path) -> None:
    # The file's only -32700 is a bare error member (rejected above), so wrap it as the
    # producer would log it: a proxy reply with a null id.
    bare = next(
        r.message
        for r in outcome.rows
        if isinstance(r.message, dict) and r.message.get("code") == -32700
    )
    lines = [{"kind": "error_-32700", "message": {"jsonrpc": "2.0", "id": None, "error": bare}}]
    source, target = tmp_path / "events.db", tmp_path / "analytics.db"
    rows = build_source(source, lines)
    run(EtlConfig(source=source, target=target, quiet=True))
    con = sqlite3.connect(target)
    try:
        got = con.execute(
            "SELECT interaction_id, error_category, error_type FROM errors"
        ).fetchall()
    finally:
        con.close()
    assert got == [(rows[0].iid, "parse_error", "protocol_error")]


def test_no_row_vanishes(outcome: Outcome) -> None:
    """Every source row is an execution, a request, an error, a reject, or a kind the ETL
    rightly keeps no row for (notifications; responses sent the wrong way; requests sent
    the wrong way), the last class decided here from the JSON alone."""
    used: dict[int, set[str]] = {}

    def mark(iid: int | None, where: str) -> None:
        if iid is not None:
            used.setdefault(iid, set()).add(where)

    for e in outcome.executions:
        mark(e["interaction_request_id"], "execution request")
        mark(e["interaction_response_id"], "execution response")
    for q in outcome.requests:
        mark(q["interaction_id"], "request")
        mark(q["response_interaction_id"], "request response")
    for e in outcome.errors:
        mark(e["interaction_id"], "error")
    for iid in outcome.rejects:
        mark(iid, "reject")

    def no_row_expected(r: Row) -> bool:
        msg = r.message
        if not isinstance(msg, dict):
            return False
        notification = "method" in msg and msg.get("id") is None
        wrong_way = (r.direction == "inbound" and _is_response(msg)) or (
            r.direction == "outbound" and "method" in msg
        )
        return notification or wrong_way

    unaccounted = [r for r in outcome.rows if r.iid not in used and not no_row_expected(r)]
    expected_silent = [r for r in outcome.rows if no_row_expected(r)]
    notifications = [r for r in expected_silent if "method" in r.message]
    assert len(notifications) == 11
    # A notification is never an execution, request, error or reject.
    assert all(r.iid not in used for r in expected_silent)

    orphans = [r for r in unaccounted if _is_response(r.message) and "error" not in r.message]
    others = [r for r in unaccounted if r not in orphans]
    assert others == []
    # The counts add up: every row lands in exactly one bucket of this partition.
    assert len(used) + len(expected_silent) + len(orphans) == len(outcome.rows)
    assert set(used) <= {r.iid for r in outcome.rows}

    # An outbound result that pairs with no open request (lines 34, 63, 64, 89) must
    # leave a trace (an etl_rejects row 'unpaired_response'), never vanish (SPEC §4).
    assert [(r.line, r.kind) for r in orphans] == []
