"""Client sessions and the state changes of sessions and REPLs (SPEC §6).

Pure functions over small inputs (one row per client session, per initialize request,
per REPL event); pipeline/derive.py reads them from the target and writes the results.
The rules are written down in docs/rules.md ("Client sessions", "Session lifecycle").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
MCP_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The first protocol version whose HTTP transport streams responses (Streamable HTTP),
# and the content block types each version defines (../shared/mcp/protocol-facts.md).
STREAMING_SINCE = "2025-03-26"
CONTENT_TYPES_SINCE = (
    ("2024-11-05", ("text", "image", "resource")),
    ("2025-03-26", ("audio",)),
    ("2025-06-18", ("resource_link",)),
)
UNKNOWN_CLIENT = "unknown"  # session.initialized's client_name when clientInfo is absent

SESSION_COLUMNS = (
    "session_id",
    "client_name",
    "client_version",
    "connect_time",
    "disconnect_time",
    "last_activity",
    "supports_streaming",
    "supports_notifications",
    "supported_content_types",
    "protocol_version",
    "initialization_params",
    "target_repl",
    "total_requests",
    "total_errors",
    "total_data_sent",
    "total_data_received",
    "capabilities",
    "supports_roots",
    "supports_sampling",
    "supports_elicitation",
    "session_kind",
    "status",
    "initialize_interaction_id",
    "initialized_event_id",
    "connect_date",
)

LIFECYCLE_COLUMNS = (
    "session_id",
    "timestamp",
    "event_type",
    "from_state",
    "to_state",
    "reason",
    "triggered_by",
    "metadata",
    "entity_type",
    "lifecycle_date",
)


def parse_ts(ts: str) -> datetime:
    return datetime.strptime(ts, TS_FORMAT)


def format_ts(moment: datetime) -> str:
    return moment.strftime(TS_FORMAT)[:-3]


def _canonical(raw: str | None) -> str | None:
    """JSON text with sorted keys: the producer's Dict order is not the client's."""
    if raw is None:
        return None
    try:
        return json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return raw


def match_initialize(
    sessions: Iterable[Mapping[str, Any]],
    inits: Iterable[Mapping[str, Any]],
    window_ms: int,
) -> dict[str, Mapping[str, Any]]:
    """The initialize request behind each session.initialized event.

    The proxy logs session.initialized while it handles the initialize request, so the
    request precedes the event by a few ms. Candidates: MCP initialize requests (a date-like
    protocolVersion; LSP initialize looks alike) whose clientInfo.name is the event's
    client_name, at most window_ms before it, not taken by an earlier session. Among
    them, one with the same capabilities is preferred, then the nearest in time (a
    failed initialize retried a moment later leaves the failed one unmatched).
    """
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for init in sorted(inits, key=lambda r: (r["request_time"], r["interaction_id"])):
        if not MCP_VERSION.match(str(init["protocol_version"] or "")):
            continue
        by_name.setdefault(init["client_name"] or UNKNOWN_CLIENT, []).append(init)
    window = timedelta(milliseconds=window_ms)
    taken: set[int] = set()
    matched: dict[str, Mapping[str, Any]] = {}
    for s in sorted(sessions, key=lambda r: (r["initialized_at"], r["event_id"])):
        at = parse_ts(s["initialized_at"])
        earliest = format_ts(at - window)
        candidates = [
            i
            for i in by_name.get(s["client_name"] or UNKNOWN_CLIENT, [])
            if i["interaction_id"] not in taken
            and earliest <= i["request_time"] <= s["initialized_at"]
        ]
        if not candidates:
            continue
        caps = _canonical(s["capabilities"])
        same = [i for i in candidates if _canonical(i["capabilities"]) == caps]
        pick = (same or candidates)[-1]
        taken.add(pick["interaction_id"])
        matched[s["session_id"]] = pick
    return matched


def capability_flags(capabilities: str | None, protocol: str | None) -> dict[str, Any]:
    """supports_* columns: a key present with a value other than null/false is supported.

    NULL when the client's capabilities (or, for streaming and content types, its
    protocol version) are unknown. supports_notifications: the client declared
    roots.listChanged, the one notification a client promises to send.
    """
    flags: dict[str, Any] = dict.fromkeys(
        ("supports_roots", "supports_sampling", "supports_elicitation", "supports_notifications")
    )
    caps: Any = None
    if capabilities is not None:
        try:
            caps = json.loads(capabilities)
        except ValueError:
            caps = None
    if isinstance(caps, dict):

        def declared(value: Any) -> bool:
            return value is not None and value is not False

        for key in ("roots", "sampling", "elicitation"):
            flags[f"supports_{key}"] = declared(caps.get(key))
        roots = caps.get("roots")
        flags["supports_notifications"] = (
            isinstance(roots, dict) and roots.get("listChanged") is True
        )
    known = protocol is not None and MCP_VERSION.match(protocol) is not None
    flags["supports_streaming"] = (protocol >= STREAMING_SINCE) if known and protocol else None
    if known and protocol:
        types = [t for since, added in CONTENT_TYPES_SINCE if protocol >= since for t in added]
        flags["supported_content_types"] = json.dumps(types)
    else:
        flags["supported_content_types"] = None
    return flags


@dataclass
class Activity:
    """A client session's totals over the requests attributed to it."""

    requests: int = 0
    errors: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    first: str | None = None
    last: str | None = None
    target_repl: str | None = None


@dataclass
class SessionFacts:
    """Everything client_sessions needs, gathered by derive.py."""

    initialized: Sequence[Mapping[str, Any]]
    inits: Sequence[Mapping[str, Any]]
    stateless: Sequence[Mapping[str, Any]]
    activity: Mapping[str, Activity]
    closed: Mapping[str, str] = field(default_factory=dict)  # session -> time of explicit end


def client_sessions(
    facts: SessionFacts, newest_ts: str | None, idle_timeout_ms: int, init_window_ms: int
) -> list[dict[str, Any]]:
    """One row per client session (SESSION_COLUMNS), in session_id order."""
    matched = match_initialize(facts.initialized, facts.inits, init_window_ms)
    rows: list[dict[str, Any]] = []
    known: set[str] = set()
    for s in facts.initialized:
        sid = s["session_id"]
        known.add(sid)
        init = matched.get(sid)
        act = facts.activity.get(sid, Activity())
        protocol = init["protocol_version"] if init else None
        caps = (
            s["capabilities"] if s["capabilities"] is not None else (init or {}).get("capabilities")
        )
        connect = init["request_time"] if init else s["initialized_at"]
        rows.append(
            {
                "session_id": sid,
                "client_name": s["client_name"] or UNKNOWN_CLIENT,
                "client_version": init["client_version"] if init else None,
                "connect_time": connect,
                "last_activity": max(t for t in (act.last, s["initialized_at"]) if t),
                "protocol_version": protocol,
                "initialization_params": init["params"] if init else None,
                "target_repl": s["target_repl"],
                # The initialize request is logged before the session exists (under
                # 'proxy'), so it is added here; its reply is never logged.
                "total_requests": act.requests + (1 if init else 0),
                "total_errors": act.errors,
                "total_data_sent": act.bytes_in + (init["input_size"] or 0 if init else 0),
                "total_data_received": act.bytes_out,
                "capabilities": caps,
                "session_kind": "initialize",
                "initialize_interaction_id": init["interaction_id"] if init else None,
                "initialized_event_id": s["event_id"],
                **capability_flags(caps, protocol),
            }
        )
    for s in facts.stateless:
        sid = s["session_id"]
        if sid in known:
            continue
        act = facts.activity.get(sid, Activity())
        protocol = s["protocol_version"]
        rows.append(
            {
                "session_id": sid,
                "client_name": s["client_name"],
                "client_version": s["client_version"],
                "connect_time": min(t for t in (act.first, s["first_seen"]) if t),
                "last_activity": max(t for t in (act.last, s["first_seen"]) if t),
                "protocol_version": protocol,
                "initialization_params": None,
                "target_repl": act.target_repl,
                "total_requests": act.requests,
                "total_errors": act.errors,
                "total_data_sent": act.bytes_in,
                "total_data_received": act.bytes_out,
                "capabilities": s["capabilities"],
                "session_kind": "stateless",
                "initialize_interaction_id": None,
                "initialized_event_id": None,
                **capability_flags(s["capabilities"], protocol),
            }
        )
    newest = parse_ts(newest_ts) if newest_ts else None
    idle = timedelta(milliseconds=idle_timeout_ms)
    for row in rows:
        closed_at = facts.closed.get(row["session_id"])
        if closed_at is not None:
            row["status"], row["disconnect_time"] = "terminated", closed_at
        elif newest is not None and newest - parse_ts(row["last_activity"]) > idle:
            row["status"], row["disconnect_time"] = "disconnected", row["last_activity"]
        else:
            row["status"], row["disconnect_time"] = "active", None
        row["connect_date"] = row["connect_time"][:10]
    return sorted(rows, key=lambda r: str(r["session_id"]))


def _change(
    sid: str,
    entity: str,
    ts: str,
    to_state: str,
    reason: str,
    triggered_by: str,
    metadata: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "session_id": sid,
        "timestamp": ts,
        "event_type": to_state,
        "from_state": None,
        "to_state": to_state,
        "reason": reason,
        "triggered_by": triggered_by,
        "metadata": json.dumps(metadata, sort_keys=True),
        "entity_type": entity,
        "lifecycle_date": ts[:10],
    }


def _chain(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order one entity's changes, drop those that change nothing, set from_state."""
    out: list[dict[str, Any]] = []
    state: str | None = None
    for change in changes:
        if change["to_state"] == state:
            continue
        change["from_state"] = state
        state = change["to_state"]
        out.append(change)
    return out


def lifecycle_start(session: Mapping[str, Any], initialized_at: str | None) -> str:
    """When a client session's activity starts to count: after its session.initialized."""
    if session["session_kind"] == "initialize":
        return str(initialized_at or session["connect_time"])
    return str(session["connect_time"])


def client_lifecycle(
    session: Mapping[str, Any],
    initialized_at: str | None,
    activity: Mapping[str, tuple[str | None, list[tuple[str, str]]]],
    idle_timeout_ms: int,
) -> list[dict[str, Any]]:
    """State changes of one client session (LIFECYCLE_COLUMNS).

    created (the initialize request, or a stateless client's first request) →
    initialized (session.initialized, at initialized_at) → connected (its first request
    after that) → disconnected after every idle gap longer than the timeout, connected
    again when activity resumes; at the end, disconnected (idle) or terminated
    (explicit). activity: session -> (first activity time from lifecycle_start on, idle
    gaps as (last time before, first time after)), from pipeline/derive.py (_session_gaps).
    """
    sid = session["session_id"]
    changes: list[dict[str, Any]] = []
    if session["session_kind"] == "initialize":
        if session["initialize_interaction_id"] is not None:
            changes.append(
                _change(
                    sid,
                    "client",
                    session["connect_time"],
                    "created",
                    "initialize request",
                    "client",
                    {"interaction_id": session["initialize_interaction_id"]},
                )
            )
        changes.append(
            _change(
                sid,
                "client",
                initialized_at or session["connect_time"],
                "initialized",
                "session.initialized",
                "server",
                {
                    "event_id": session["initialized_event_id"],
                    "target_repl": session["target_repl"],
                },
            )
        )
    else:
        changes.append(
            _change(
                sid,
                "client",
                session["connect_time"],
                "created",
                "first request with clientInfo in _meta (stateless)",
                "client",
                {"protocol_version": session["protocol_version"]},
            )
        )
    first, gaps = activity.get(sid, (None, []))
    if first is not None:
        changes.append(_change(sid, "client", first, "connected", "first request", "client", {}))
    idle_reason = f"idle for more than {idle_timeout_ms // 60_000} min"
    for before, after in gaps:
        changes.append(_change(sid, "client", before, "disconnected", idle_reason, "timeout", {}))
        changes.append(_change(sid, "client", after, "connected", "activity resumed", "client", {}))
    if session["status"] == "disconnected":
        changes.append(
            _change(
                sid,
                "client",
                session["disconnect_time"],
                "disconnected",
                f"idle for more than {idle_timeout_ms // 60_000} min",
                "timeout",
                {},
            )
        )
    elif session["status"] == "terminated":
        changes.append(
            _change(
                sid,
                "client",
                session["disconnect_time"],
                "terminated",
                "the producer marked the session closed",
                "client",
                {},
            )
        )
    return _chain(changes)


REPL_ORDER = {"repl.registered": 0, "request.error": 1, "repl.unregistered": 2}


def repl_lifecycle(
    repl_id: str,
    events: Sequence[Mapping[str, Any]],
    first_success_after: Callable[[str, str], str | None],
) -> list[dict[str, Any]]:
    """State changes of one REPL (LIFECYCLE_COLUMNS).

    events: repl.registered / repl.unregistered (event_id, timestamp, data) and
    request.error (timestamp, message, error_key), any order.
    registered → connected; unregistered → disconnected; a failed call while it is
    disconnected → reconnecting (the proxy keeps trying and buffers the call); a failed
    call while it is connected → error, until it registers again or answers a call
    (first_success_after(repl_id, ts) gives the time of that answer, or None).
    """
    ordered = sorted(
        events, key=lambda e: (e["timestamp"], REPL_ORDER[e["event_type"]], e["order_key"])
    )
    changes: list[dict[str, Any]] = []
    state: str | None = None
    pending_answer: str | None = None
    for e in ordered:
        if pending_answer is not None and pending_answer <= e["timestamp"]:
            changes.append(
                _change(
                    repl_id, "repl", pending_answer, "connected", "answered a call", "server", {}
                )
            )
            state, pending_answer = "connected", None
        kind = e["event_type"]
        if kind == "repl.registered":
            data = _json_object(e.get("data"))
            reason = "registered" if state is None else "registered again"
            meta = {k: data.get(k) for k in ("name", "port", "pid")} | {"event_id": e["order_key"]}
            changes.append(
                _change(repl_id, "repl", e["timestamp"], "connected", reason, "server", meta)
            )
            state, pending_answer = "connected", None
        elif kind == "repl.unregistered":
            data = _json_object(e.get("data"))
            status = data.get("status")
            reason = f"unregistered (status {status})" if status else "unregistered"
            meta = {"event_id": e["order_key"], "name": data.get("name")}
            changes.append(
                _change(repl_id, "repl", e["timestamp"], "disconnected", reason, "server", meta)
            )
            state, pending_answer = "disconnected", None
        else:
            message = str(e.get("message") or "")[:200]
            meta = {"error_key": e["order_key"]}
            if state in ("disconnected", "reconnecting"):
                changes.append(
                    _change(repl_id, "repl", e["timestamp"], "reconnecting", message, "error", meta)
                )
                state = "reconnecting"
            elif state != "error":
                changes.append(
                    _change(repl_id, "repl", e["timestamp"], "error", message, "error", meta)
                )
                state = "error"
                pending_answer = first_success_after(repl_id, e["timestamp"])
    if pending_answer is not None:
        changes.append(
            _change(repl_id, "repl", pending_answer, "connected", "answered a call", "server", {})
        )
    return _chain(changes)


def _json_object(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {}
