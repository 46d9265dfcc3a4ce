"""Deterministic generator of realistic Kaimon / MCPRepl.jl proxy logs, with ground truth.

Writes a SQLite database in the producer's raw schema (queries/producer_schema.sql) that
reproduces every quirk described in docs/producer.md and SPEC section 1, and optionally a
JSON "truth" file with the expected pairing/attribution results used by the tests.
"""

from __future__ import annotations

import base64
import json
import math
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.queries import QUERIES_DIR

__all__ = ["DemoStats", "generate_demo"]

SCHEMA_PATH = QUERIES_DIR / "producer_schema.sql"
PENDING_TIMEOUT_MS = 300_000
SPAN_MS = 24 * 3600 * 1000
PROXY = "proxy"
AUTO_META = '{"auto_created":true}'

PROXY_TOOLS = ("help", "proxy_status", "list_julia_sessions", "dashboard_url")
REPL_TOOLS = (
    ("ex", 40),
    ("investigate_environment", 4),
    ("search_methods", 8),
    ("type_info", 6),
    ("list_names", 4),
    ("code_lowering", 2),
    ("code_typed", 2),
    ("format_code", 3),
    ("usage_instructions", 2),
    ("run_tests", 3),
    ("qdrant_search_code", 4),
)
CANCEL_REASONS = (
    "McpError: MCP error -32001: Request timed out",
    "MCP error -32001: AbortError: user-cancel",
    None,
    "User requested cancellation",
)


@dataclass(frozen=True)
class DemoStats:
    """What generate_demo wrote."""

    calls: int
    interactions: int
    events: int
    newest_timestamp: str


@dataclass(frozen=True)
class _Profile:
    name: str
    version: str
    protocol: str
    caps: dict[str, Any]
    id_start: int
    id_kind: str  # "int" | "numstr" (ids "1","2"..) | "uuid"
    progress: bool  # sets params._meta.progressToken = id on tools/call (Claude Code)
    style: str  # key order / separators of the client's JSON encoder
    weight: float
    stateless: bool = False


PROFILES = (
    _Profile(
        "claude-code",
        "2.1.221",
        "2025-06-18",
        {"roots": {"listChanged": True}, "elicitation": {}},
        0,
        "int",
        True,
        "zod",
        3.0,
    ),
    _Profile(
        "cursor-vscode",
        "1.0.0",
        "2025-11-25",
        {"roots": {"listChanged": True}},
        0,
        "int",
        False,
        "zod",
        2.0,
    ),
    _Profile(
        "Visual Studio Code",
        "1.105.0",
        "2025-06-18",
        {"roots": {"listChanged": True}, "sampling": {}, "elicitation": {}},
        1,
        "int",
        False,
        "std",
        2.0,
    ),
    _Profile("claude-code", "2.1.36", "2025-06-18", {"roots": {}}, 0, "int", True, "zod", 1.5),
    _Profile(
        "gemini-cli-mcp-client",
        "0.59.0",
        "2025-06-18",
        {"roots": {"listChanged": True}},
        0,
        "int",
        False,
        "std",
        1.0,
    ),
    _Profile(
        "mcp-inspector",
        "0.16.2",
        "2025-11-25",
        {"sampling": {}, "elicitation": {}, "roots": {"listChanged": True}},
        0,
        "int",
        False,
        "zod",
        0.5,
    ),
    _Profile("opencode", "1.18.30", "2025-06-18", {"roots": {}}, 1, "numstr", False, "go", 1.0),
    _Profile("Zed", "0.1.0", "2025-03-26", {}, 0, "int", False, "py", 0.7),
    _Profile(
        "codex-mcp-client",
        "0.154.0",
        "2025-06-18",
        {"elicitation": {}},
        0,
        "uuid",
        False,
        "go",
        0.8,
    ),
    _Profile("goose-cli", "1.50.0", "2026-07-28", {}, 1, "int", False, "std", 0.6, True),
    _Profile("antigravity-client", "v1.0.0", "2026-07-28", {}, 1, "uuid", False, "go", 0.4, True),
)


@dataclass
class _Client:
    prof: _Profile
    session: str
    repl: int
    next_id: int
    start: int
    end: int
    # Row seqs of this client's id-bearing requests and of error replies to them.
    req_seqs: list[int] = field(default_factory=list)
    err_seqs: list[int] = field(default_factory=list)


@dataclass
class _Repl:
    uid: str
    name: str
    port: int
    pid: int
    down: list[tuple[int, int]] = field(default_factory=list)

    def is_down(self, t: int) -> bool:
        return any(a <= t < b for a, b in self.down)


class _Gen:
    """Holds the RNG, the pending rows and the pairing bookkeeping of one run."""

    def __init__(self, seed: int, consistent: bool) -> None:
        self.rng = random.Random(seed)
        self.consistent = consistent
        self.seq = 0
        # (ts_ms, seq, session_id, direction, message_type, request_id, method, content)
        self.inter: list[tuple[int, int, str, str, str, str | None, str | None, str]] = []
        # (ts_ms, seq, session_id, event_type, duration_ms, data)
        self.events: list[tuple[int, int, str, str, float | None, str]] = []
        # Open request windows per (route, json id): the ETL pairs a response with the
        # nearest preceding open request, so we never let the real pairing contradict it.
        self.windows: dict[tuple[str, str], list[tuple[int, int]]] = {}

    # ---------- low-level row writers ----------
    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def add_inter(
        self,
        ts: int,
        sid: str,
        direction: str,
        mtype: str,
        rid: str | None,
        method: str | None,
        content: str,
    ) -> int:
        s = self._next()
        self.inter.append((ts, s, sid, direction, mtype, rid, method, content))
        return s

    def add_event(
        self, ts: int, sid: str, etype: str, data: dict[str, Any], duration: float | None = None
    ) -> int:
        s = self._next()
        self.events.append((ts, s, sid, etype, duration, self.julia_json(data)))
        return s

    # ---------- JSON encoders ----------
    def julia_json(self, obj: dict[str, Any]) -> str:
        # Julia Dicts serialise in hash order: shuffle top-level keys, compact separators.
        keys = list(obj)
        self.rng.shuffle(keys)
        return json.dumps({k: obj[k] for k in keys}, separators=(",", ":"), ensure_ascii=False)

    @staticmethod
    def client_json(style: str, msg: dict[str, Any]) -> str:
        order = {
            "zod": ("method", "params", "jsonrpc", "id"),
            "std": ("jsonrpc", "id", "method", "params"),
            "go": ("id", "jsonrpc", "method", "params"),
            "py": ("method", "params", "jsonrpc", "id"),
        }[style]
        ordered = {k: msg[k] for k in order if k in msg}
        if style == "py":
            return json.dumps(ordered)
        return json.dumps(ordered, separators=(",", ":"))

    # ---------- pairing-safety ----------
    def bound(self, key: tuple[str, str], ts: int) -> int | None:
        best: int | None = None
        for r, s in self.windows.get(key, ()):
            if r <= ts < s and (best is None or s < best):
                best = s
        return best

    def open_window(self, key: tuple[str, str], req: int, resp: int) -> None:
        lst = self.windows.setdefault(key, [])
        # Drop windows already closed well before this request to keep lookups cheap.
        if len(lst) > 64:
            lst[:] = [w for w in lst if w[1] > req - 600_000]
        lst.append((req, resp))


def _id_text(jid: int | str) -> str:
    # Julia string(id): 1 -> "1", "1" -> "1" (the type is lost in the column).
    return str(jid)


def _id_key(jid: int | str) -> str:
    return json.dumps(jid)


def _fmt(base: datetime, ms: int) -> str:
    dt = base + timedelta(milliseconds=ms)
    return f"{dt:%Y-%m-%d %H:%M:%S}.{dt.microsecond // 1000:03d}"


def _duration(rng: random.Random) -> int:
    u = rng.random()
    if u < 0.015:
        return rng.randint(60_000, 240_000)  # > 60 s: long test runs
    if u < 0.08:
        return rng.randint(1_000, 20_000)
    return max(3, min(900, int(math.exp(rng.gauss(math.log(60.0), 1.0)))))


def _text_block(rng: random.Random, huge: bool) -> str:
    if huge:
        line = "│ " + "".join(rng.choice("abcdefghij0123456789 ") for _ in range(70)) + "\n"
        return line * (rng.randint(100_000, 300_000) // len(line))
    samples = (
        "2",
        "42",
        "nothing",
        "3-element Vector{Int64}:\n 1\n 2\n 3",
        "Test Summary: | Pass  Total\nMyProject    |   17     17",
        "search_methods(Base.push!) found 23 methods",
        "Float64 <: AbstractFloat <: Real",
        "ERROR-free output\n" + "x" * rng.randint(10, 400),
    )
    return rng.choice(samples)


def generate_demo(
    out: Path,
    calls: int = 2000,
    seed: int = 0,
    truth: Path | None = None,
    consistent_sessions: bool = False,
    start: str = "2026-11-20 08:00:00.000",
) -> DemoStats:
    """Write a demo producer database to `out` (must not exist) and optional truth JSON."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"refusing to overwrite existing file: {out}")
    base = datetime.strptime(start, "%Y-%m-%d %H:%M:%S.%f")
    g = _Gen(seed, consistent_sessions)
    rng = g.rng

    def uuid4() -> str:
        h = f"{rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    # ---------- REPLs: register, two of them drop and come back ----------
    repls = [
        _Repl(uuid4(), name, 40000 + i * 17 + rng.randint(0, 9), 20000 + rng.randint(0, 40000))
        for i, name in enumerate(("MyProject", "DataPipeline", "Sandbox"))
    ]
    drops = []
    for r, frac in ((repls[0], 0.35), (repls[1], 0.62)):
        a = int(SPAN_MS * frac) + rng.randint(0, 600_000)
        b = a + rng.randint(150_000, 420_000)
        r.down.append((a, b))
        drops.append((r, a, b))

    def repl_rpc(
        ts: int, r: _Repl, method: str, params: dict[str, Any], etype: str, edata: dict[str, Any]
    ) -> None:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, separators=(",", ":")
        )
        # params.name (the REPL's name) becomes the row's session id, when present.
        g.add_inter(ts, str(params.get("name", PROXY)), "inbound", "request", "1", method, body)
        g.add_event(
            ts + rng.randint(0, 2),
            PROXY,
            "request.received",
            {"method": method, "request_id": 1, "has_params": True, "path": "/"},
        )
        g.add_event(ts + rng.randint(2, 6), r.uid, etype, edata)
        res = {
            "status": "registered" if etype == "repl.registered" else "unregistered",
            "uuid": r.uid,
        }
        rts = ts + rng.randint(6, 9)
        g.add_inter(
            rts,
            PROXY,
            "outbound",
            "response",
            "1",
            None,
            g.julia_json({"jsonrpc": "2.0", "id": 1, "result": res}),
        )
        g.open_window((PROXY, "1"), ts, rts)

    for r in repls:
        meta = {"project": f"/home/dev/{r.name}", "julia_version": "1.12.1"}
        repl_rpc(
            rng.randint(0, 3000),
            r,
            "proxy/register",
            {"uuid": r.uid, "name": r.name, "port": r.port, "pid": r.pid, "metadata": meta},
            "repl.registered",
            {"name": r.name, "port": r.port, "pid": r.pid, "metadata": meta},
        )
    for r, a, b in drops:
        repl_rpc(
            a,
            r,
            "proxy/unregister",
            {"uuid": r.uid},
            "repl.unregistered",
            {"name": r.name, "port": r.port, "pid": r.pid, "status": "ready"},
        )
        meta = {"project": f"/home/dev/{r.name}", "julia_version": "1.12.1"}
        repl_rpc(
            b,
            r,
            "proxy/register",
            {"uuid": r.uid, "name": r.name, "port": r.port, "pid": r.pid, "metadata": meta},
            "repl.registered",
            {"name": r.name, "port": r.port, "pid": r.pid, "metadata": meta},
        )

    # ---------- clients ----------
    clients: list[_Client] = []
    for i, p in enumerate(PROFILES):
        # Most clients connect in the first minutes (ids collide early), a few later.
        st = rng.randint(5_000, 180_000) if i < 7 else rng.randint(SPAN_MS // 10, SPAN_MS // 3)
        end = rng.randint(int(SPAN_MS * 0.85), SPAN_MS - 60_000)
        # Stateless clients get a synthetic id (docs/producer.md section 6).
        sid = "stateless-" + f"{rng.getrandbits(48):012x}" if p.stateless else uuid4()
        repl_ix = 0 if i % 3 != 2 else (1 if i % 2 else 2)
        clients.append(_Client(p, sid, repl_ix, p.id_start, st, end))
    total_w = sum(c.prof.weight for c in clients)
    alloc = [int(calls * c.prof.weight / total_w) for c in clients]
    for k in range(calls - sum(alloc)):
        alloc[k % len(alloc)] += 1

    # Intents: (ts, order, client index, kind, extra) processed in time order.
    intents: list[tuple[int, int, int, str]] = []
    order = 0
    for ci, c in enumerate(clients):
        t = c.start
        if not c.prof.stateless:
            for kind, dt in (("initialize", 0), ("initialized", 40), ("tools/list", 90)):
                intents.append((t + dt, order, ci, kind))
                order += 1
            if c.prof.name == "Visual Studio Code":
                intents.append((t + 130, order, ci, "logging/setLevel"))
                order += 1
        # Calls come in agent "turns": bursts of a few calls close together.
        n = alloc[ci]
        times: list[int] = []
        first_burst = True
        while len(times) < n:
            if first_burst:
                bt = c.start + 400
                first_burst = False
            else:
                bt = rng.randint(c.start + 1_000, c.end)
            for _ in range(min(n - len(times), rng.randint(2, 12))):
                bt += rng.randint(30, 2_500)
                times.append(bt)
        for t2 in sorted(times):
            intents.append((t2, order, ci, "tools/call"))
            order += 1
        if c.prof.name == "Zed" and n > 0:
            intents.append((times[len(times) // 2] + 7, order, ci, "batch"))
            order += 1
    malformed_at = sorted(rng.randint(60_000, SPAN_MS - 120_000) for _ in range(4))
    for t3 in malformed_at:
        intents.append((t3, order, rng.randrange(len(clients)), "malformed"))
        order += 1
    intents.sort()
    last_call_ts = max((t for t, _, _, k in intents if k == "tools/call"), default=600_000)
    cutoff = last_call_ts + 1_500
    # The last calls get no reply at all, so "pending" always occurs.
    forced_lost = {(t, o) for t, o, _, k in [i for i in intents if i[3] == "tools/call"][-2:]}

    malformed_seqs: list[int] = []
    batch_seqs: list[int] = []
    exec_rows: list[dict[str, Any]] = []

    def new_id(c: _Client) -> int | str:
        n = c.next_id
        c.next_id += 1
        if c.prof.id_kind == "numstr":
            return str(n)
        if c.prof.id_kind == "uuid":
            return uuid4()
        return n

    def meta_for(c: _Client) -> dict[str, Any]:
        if not c.prof.stateless:
            return {}
        return {
            "io.modelcontextprotocol/clientInfo": {"name": c.prof.name, "version": c.prof.version},
            "io.modelcontextprotocol/protocolVersion": c.prof.protocol,
        }

    def log_inbound(
        ts: int, c: _Client, msg: dict[str, Any], jid: int | str | None, method: str, ev_sid: str
    ) -> tuple[int, int]:
        params = msg.get("params") or {}
        token = (params.get("_meta") or {}).get("progressToken")
        if g.consistent:
            raw = c.session
        elif token is not None:
            raw = str(token)
        elif isinstance(params.get("name"), str):
            raw = params["name"]
        else:
            raw = PROXY
        rid = None if jid is None else _id_text(jid)
        s = g.add_inter(
            ts, raw, "inbound", "request", rid, method, g.client_json(c.prof.style, msg)
        )
        ev_ts = ts + rng.choice((0, 0, 1, 1, 2, 3, 4))
        g.add_event(
            ev_ts,
            ev_sid,
            "request.received",
            {
                "method": method,
                "request_id": jid,
                "has_params": "params" in msg,
                "path": "/mcp" if c.prof.style != "py" else "/",
            },
        )
        return s, ev_ts

    def respond(
        ts: int, route: str, jid: int | str, body: dict[str, Any], method: str | None
    ) -> int:
        body = {"jsonrpc": "2.0", "id": jid, **body}
        return g.add_inter(
            ts, route, "outbound", "response", _id_text(jid), method, g.julia_json(body)
        )

    def place(keys: list[tuple[str, str]], ts: int) -> int:
        # Shift a request that gets no response out of every open window of its keys.
        while True:
            bs = [b for b in (g.bound(k, ts) for k in keys) if b is not None]
            if not bs:
                return ts
            ts = max(bs) + 1

    for ts, _o, ci, kind in intents:
        c = clients[ci]
        repl = repls[c.repl]
        if kind == "initialize":
            jid = new_id(c)
            key = (PROXY, _id_key(jid))
            ts = place([key], ts)  # its reply is never logged: it stays open forever
            msg = {
                "jsonrpc": "2.0",
                "id": jid,
                "method": "initialize",
                "params": {
                    "protocolVersion": c.prof.protocol,
                    "capabilities": c.prof.caps,
                    "clientInfo": {"name": c.prof.name, "version": c.prof.version},
                },
            }
            c.req_seqs.append(log_inbound(ts, c, msg, jid, "initialize", PROXY)[0])
            g.add_event(
                ts + rng.randint(2, 6),
                c.session,
                "session.initialized",
                {
                    "client_name": c.prof.name,
                    "target_repl_id": repl.uid,
                    "capabilities": c.prof.caps,
                },
            )
        elif kind == "initialized":
            log_inbound(
                ts,
                c,
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                None,
                "notifications/initialized",
                c.session,
            )
        elif kind in ("tools/list", "logging/setLevel"):
            jid = new_id(c)
            key = (PROXY, _id_key(jid))
            lb = g.bound(key, ts)
            resp_ts = ts + rng.randint(3, 40)
            if lb is not None:
                resp_ts = min(resp_ts, lb - 1) if lb - 1 >= ts else ts
            params: dict[str, Any] = {} if kind == "tools/list" else {"level": "info"}
            msg = {"jsonrpc": "2.0", "id": jid, "method": kind, "params": params}
            c.req_seqs.append(log_inbound(ts, c, msg, jid, kind, c.session)[0])
            if kind == "tools/list":
                tools = [
                    {
                        "name": n,
                        "description": f"Proxy tool {n}",
                        "inputSchema": {"type": "object", "properties": {}},
                    }
                    for n in PROXY_TOOLS
                ]
                tools += [
                    {
                        "name": n,
                        "description": f"Julia tool {n} " + "d" * 200,
                        "inputSchema": {
                            "type": "object",
                            "properties": {"code": {"type": "string"}},
                        },
                    }
                    for n, _w in REPL_TOOLS
                ]
                res: dict[str, Any] = {"tools": tools}
            else:
                res = {}
            respond(resp_ts, PROXY, jid, {"result": res}, None)
            g.open_window(key, ts, resp_ts)
        elif kind == "malformed":
            bad = rng.choice(
                (
                    "",
                    '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"ex","argum',
                    "GET / HTTP/1.1 garbage",
                    '{"jsonrpc":"2.0","id":,"method":"ping"}',
                )
            )
            s = g.add_inter(
                ts, c.session if g.consistent else PROXY, "inbound", "request", None, None, bad
            )
            malformed_seqs.append(s)
            g.add_inter(
                ts + 1,
                PROXY,
                "outbound",
                "response",
                None,
                None,
                g.julia_json(
                    {
                        "jsonrpc": "2.0",
                        "id": None,
                        "error": {"code": -32700, "message": "Parse error: invalid JSON"},
                    }
                ),
            )
        elif kind == "batch":
            ids = [new_id(c), new_id(c)]
            arr: list[dict[str, Any]] = [
                {
                    "jsonrpc": "2.0",
                    "id": j,
                    "method": "tools/call",
                    "params": {"name": "ex", "arguments": {"e": "1 + 1"}},
                }
                for j in ids
            ]
            arr.insert(
                1,
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {"progressToken": "zed-1", "progress": 1},
                },
            )
            s = g.add_inter(
                ts,
                c.session if g.consistent else PROXY,
                "inbound",
                "request",
                None,
                None,
                json.dumps(arr),
            )
            batch_seqs.append(s)
            # The proxy's get(request, "method") throws on an array: internal error, id null.
            g.add_inter(
                ts + 2,
                PROXY,
                "outbound",
                "response",
                None,
                None,
                g.julia_json(
                    {
                        "jsonrpc": "2.0",
                        "id": None,
                        "error": {
                            "code": -32603,
                            "message": "Internal error: MethodError: no method matching "
                            "get(::Vector{Any}, ::String, ::String)",
                        },
                    }
                ),
            )
        elif kind == "tools/call":
            _tools_call(
                g,
                c,
                repl,
                ts,
                (ts, _o) in forced_lost,
                new_id,
                meta_for,
                log_inbound,
                respond,
                exec_rows,
            )

    # ---------- cut the snapshot, order rows, assign ids ----------
    inter = sorted(r for r in g.inter if r[0] <= cutoff)
    events = sorted(e for e in g.events if e[0] <= cutoff)
    inter_id = {r[1]: i + 1 for i, r in enumerate(inter)}
    newest_ms = max([inter[-1][0] if inter else 0, events[-1][0] if events else 0])
    newest = _fmt(base, newest_ms)

    first: dict[str, int] = {}
    last: dict[str, int] = {}
    order_of: dict[str, tuple[int, int]] = {}
    for ts_, sq, sid in [(r[0], r[1], r[2]) for r in inter] + [(e[0], e[1], e[2]) for e in events]:
        if sid not in first or ts_ < first[sid]:
            first[sid] = ts_
        if sid not in order_of or (ts_, sq) < order_of[sid]:
            order_of[sid] = (ts_, sq)
        last[sid] = max(last.get(sid, ts_), ts_)
    sessions = [
        (sid, _fmt(base, first[sid]), _fmt(base, last[sid]), "active", AUTO_META)
        for sid in sorted(order_of, key=lambda s: order_of[s])
    ]

    con = sqlite3.connect(out)
    try:
        con.executescript(SCHEMA_PATH.read_text(encoding="utf-8"))
        with con:
            con.executemany("INSERT INTO sessions VALUES (?,?,?,?,?)", sessions)
            con.executemany(
                "INSERT INTO interactions (id, session_id, timestamp, direction, message_type,"
                " request_id, method, content, content_size) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    (
                        i + 1,
                        r[2],
                        _fmt(base, r[0]),
                        r[3],
                        r[4],
                        r[5],
                        r[6],
                        r[7],
                        len(r[7].encode("utf-8")),
                    )
                    for i, r in enumerate(inter)
                ),
            )
            con.executemany(
                "INSERT INTO events (id, session_id, event_type, timestamp, duration_ms, data)"
                " VALUES (?,?,?,?,?,?)",
                ((i + 1, e[2], e[3], _fmt(base, e[0]), e[4], e[5]) for i, e in enumerate(events)),
            )
    finally:
        con.close()

    if truth is not None:
        _write_truth(
            Path(truth),
            seed,
            calls,
            consistent_sessions,
            newest,
            newest_ms,
            base,
            exec_rows,
            inter_id,
            clients,
            repls,
            drops,
            malformed_seqs,
            batch_seqs,
        )
    return DemoStats(
        calls=len(exec_rows), interactions=len(inter), events=len(events), newest_timestamp=newest
    )


def _tools_call(
    g: _Gen,
    c: _Client,
    repl: _Repl,
    ts: int,
    force_lost: bool,
    new_id: Callable[[_Client], int | str],
    meta_for: Callable[[_Client], dict[str, Any]],
    log_inbound: Callable[..., tuple[int, int]],
    respond: Callable[..., int],
    exec_rows: list[dict[str, Any]],
) -> None:
    """Emit one tools/call with its events, outcome and truth record."""
    rng = g.rng
    jid = new_id(c)
    u = rng.random()
    if u < 0.05:
        tool = rng.choice(PROXY_TOOLS)
    elif u < 0.065:
        tool = rng.choice(("evaluate", "run_julia", "ex2"))  # unknown: -32602 from the REPL
    else:
        tool = rng.choices([n for n, _ in REPL_TOOLS], [w for _, w in REPL_TOOLS])[0]
    is_proxy = tool in PROXY_TOOLS
    route = PROXY if is_proxy else repl.uid
    key = (route, _id_key(jid))
    pkey = (PROXY, _id_key(jid))
    args: dict[str, Any] = {
        "e": rng.choice(("1 + 1", "using Test; runtests()", "x = rand(3)", "methods(push!)"))
    }
    if tool == "run_tests":
        args = {"pattern": "", "verbose": rng.random() < 0.5}
    params: dict[str, Any] = {"name": tool, "arguments": args}
    meta = meta_for(c)
    if c.prof.progress:
        meta = {**meta, "progressToken": jid}
    if meta:
        params["_meta"] = meta
    msg = {"jsonrpc": "2.0", "id": jid, "method": "tools/call", "params": params}

    down = (not is_proxy) and repl.is_down(ts)
    # A REPL-routed call can be answered under 'proxy' too (proxy errors), so its window
    # is kept on both routes: the pairing stays unambiguous for an ETL that checks both.
    bs = [x for x in (g.bound(key, ts), g.bound(pkey, ts)) if x is not None]
    b = min(bs) if bs else None

    # Decide the outcome.
    o = rng.random()
    if down:
        outcome = "repl_down"
    elif is_proxy:
        outcome = "ok"
    elif force_lost and b is None:
        outcome = "lost"
    elif tool in ("evaluate", "run_julia", "ex2"):
        outcome = "rpc_error"
    elif o < 0.78:
        outcome = "ok"
    elif o < 0.83:
        outcome = "is_error"
    elif o < 0.87:
        outcome = "rpc_error"
    elif o < 0.91:
        outcome = "cancel"
    elif o < 0.93:
        outcome = "cancel_then_code0"
    elif o < 0.94:
        outcome = "cancel_then_ok"
    elif o < 0.97:
        outcome = "lost"
    else:
        outcome = "ok"
    if b is not None and outcome in ("lost", "cancel"):
        outcome = "ok"  # inside another call's window: must be answered before it

    req_seq, _ = log_inbound(ts, c, msg, jid, "tools/call", c.session)
    g.add_event(
        ts + rng.randint(0, 3),
        c.session,
        "tool.call.start",
        {"tool_name": tool, "is_proxy_tool": is_proxy, "arguments": args},
    )

    def resp_time(dur: int) -> int:
        t = ts + dur
        if b is not None and t >= b:
            t = rng.randint(ts, b - 1) if b - 1 >= ts else ts
            if repl.is_down(t) and not is_proxy:
                t = ts
        return t

    resp_seq: int | None = None
    resp_ts: int | None = None
    cancel_ts: int | None = None
    cancel_seq: int | None = None
    error_seq: int | None = None
    body: dict[str, Any]
    if outcome == "repl_down":
        et = ts + rng.randint(1, 25)
        g.add_event(
            et,
            repl.uid,
            "request.error",
            {
                "error_type": "HTTP.Exceptions.ConnectError",
                "error_message": f'HTTP.Exceptions.ConnectError("http://127.0.0.1:{repl.port}/",'
                ' Base.IOError("connect: connection refused (ECONNREFUSED)", -111))'
                "\nStacktrace:\n [1] connect at HTTP/src/Connections.jl:524\n"
                " [2] route_to_repl_streaming at MCPRepl/src/proxy.jl:312",
                "method": "tools/call",
            },
        )
        resp_ts = resp_time(et - ts + rng.randint(0, 2))
        body = {"error": {"code": -32003, "message": f"REPL not ready: disconnected ({repl.name})"}}
        resp_seq = respond(resp_ts, PROXY, jid, body, None)
        error_seq = resp_seq
        g.open_window(pkey, ts, resp_ts)
        g.open_window(key, ts, resp_ts)
    elif is_proxy:
        resp_ts = resp_time(rng.randint(1, 15))
        text = {
            "help": "MCPRepl proxy tools: help, proxy_status, list_julia_sessions",
            "proxy_status": "Proxy running on port 3000, 3 REPL(s) connected",
            "list_julia_sessions": "\n".join(f"{r_.name} ({r_.uid})" for r_ in [repl]),
            "dashboard_url": "http://localhost:3000/dashboard",
        }[tool]
        g.add_event(
            resp_ts,
            c.session,
            "tool.call.complete",
            {"tool_name": tool, "success": True, "result_length": len(text)},
            float(resp_ts - ts) + rng.random(),
        )
        resp_seq = respond(
            resp_ts, PROXY, jid, {"result": {"content": [{"type": "text", "text": text}]}}, None
        )
        g.open_window(key, ts, resp_ts)
    elif outcome == "lost":
        pass
    else:
        dur = _duration(rng)
        if outcome.startswith("cancel"):
            cancel_ts = ts + max(2, int(dur * rng.uniform(0.3, 0.9)))
            creason = rng.choice(CANCEL_REASONS)
            cparams: dict[str, Any] = {"requestId": jid}
            if creason is not None:
                cparams["reason"] = creason
            cmeta = meta_for(c)
            if cmeta:
                cparams["_meta"] = cmeta
            cmsg = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cparams}
            cancel_seq = log_inbound(
                cancel_ts, c, cmsg, None, "notifications/cancelled", c.session
            )[0]
            if outcome == "cancel_then_code0":
                dur = cancel_ts - ts + rng.randint(2, 150)
            elif outcome == "cancel_then_ok":
                dur = cancel_ts - ts + rng.randint(5, 2_000)
        if outcome != "cancel":
            resp_ts = resp_time(dur)
            if repl.is_down(resp_ts):
                resp_ts = None  # the REPL died with the call in flight: reply lost
        if resp_ts is not None:
            if outcome == "cancel_then_code0":
                body = {"error": {"code": 0, "message": "Request cancelled"}}
            elif outcome == "rpc_error":
                code = (
                    -32602
                    if tool in ("evaluate", "run_julia", "ex2")
                    else rng.choice((-32603, -32603, -32000))
                )
                err: dict[str, Any] = {
                    "code": code,
                    "message": {
                        -32602: f"Unknown tool: {tool}",
                        -32603: "Internal error",
                        -32000: "Evaluation failed",
                    }[code],
                }
                if code != -32602 and rng.random() < 0.6:
                    err["data"] = (
                        "LoadError: MethodError: no method matching +(::String, "
                        "::Int64)\nStacktrace:\n [1] top-level scope\n"
                        "   @ REPL[3]:1\n [2] eval at ./boot.jl:430"
                    )
                body = {"error": err}
            elif outcome == "is_error":
                body = {
                    "result": {
                        "content": [
                            {
                                "type": "text",
                                "text": "ERROR: UndefVarError: `foo` not defined in `Main`",
                            }
                        ],
                        "isError": True,
                    }
                }
            else:
                r = rng.random()
                if r < 0.02:
                    png = base64.b64encode(rng.randbytes(rng.randint(2_000, 30_000))).decode()
                    blocks: list[dict[str, Any]] = [
                        {"type": "image", "data": png, "mimeType": "image/png"}
                    ]
                    if rng.random() < 0.5:
                        blocks.insert(0, {"type": "text", "text": "Plot saved"})
                    res: dict[str, Any] = {"content": blocks}
                elif r < 0.025:
                    res = {"content": []}
                else:
                    res = {
                        "content": [
                            {"type": "text", "text": _text_block(rng, rng.random() < 0.003)}
                        ]
                    }
                    if rng.random() < 0.04:
                        res["structuredContent"] = {"value": rng.randint(0, 99), "type": "Int64"}
                body = {"result": res}
            resp_seq = respond(resp_ts, route, jid, body, rng.choice(("tools/call", None, None)))
            if "error" in body or body.get("result", {}).get("isError"):
                error_seq = resp_seq
            g.open_window(key, ts, resp_ts)
            g.open_window(pkey, ts, resp_ts)
    c.req_seqs.append(req_seq)
    if error_seq is not None:
        c.err_seqs.append(error_seq)
    exec_rows.append(
        {
            "req_seq": req_seq,
            "resp_seq": resp_seq,
            "resp_ts": resp_ts,
            "req_ts": ts,
            "cancel_ts": cancel_ts,
            "cancel_seq": cancel_seq,
            "error_seq": error_seq,
            "client": c,
            "tool": tool,
            "jid": jid,
        }
    )


def _write_truth(
    path: Path,
    seed: int,
    calls: int,
    consistent: bool,
    newest: str,
    newest_ms: int,
    base: datetime,
    exec_rows: list[dict[str, Any]],
    inter_id: dict[int, int],
    clients: list[_Client],
    repls: list[_Repl],
    drops: list[tuple[_Repl, int, int]],
    malformed: list[int],
    batches: list[int],
) -> None:
    executions = []
    for e in exec_rows:
        if e["req_seq"] not in inter_id:
            continue  # request after the snapshot cut: not in the source
        has_resp = e["resp_seq"] in inter_id if e["resp_seq"] is not None else False
        cancelled = e["cancel_seq"] is not None and e["cancel_seq"] in inter_id
        dur: int | None = None
        err_id: int | None = None
        if has_resp:
            status = "error" if e["error_seq"] is not None else "success"
            dur = e["resp_ts"] - e["req_ts"]
            if e["error_seq"] is not None:
                err_id = inter_id[e["error_seq"]]
        elif cancelled:
            status = "cancelled"
            dur = e["cancel_ts"] - e["req_ts"]
        elif newest_ms - e["req_ts"] > PENDING_TIMEOUT_MS:
            status = "timeout"
        else:
            status = "pending"
        executions.append(
            {
                "request_row_id": inter_id[e["req_seq"]],
                "response_row_id": inter_id[e["resp_seq"]] if has_resp else None,
                "session_id": e["client"].session,
                "tool_name": e["tool"],
                "request_id": e["jid"],
                "status": status,
                "duration_ms": dur,
                "error_interaction_id": err_id,
            }
        )
    executions.sort(key=lambda x: x["request_row_id"])
    doc = {
        "seed": seed,
        "calls": calls,
        "consistent_sessions": consistent,
        "newest_timestamp": newest,
        "pending_timeout_ms": PENDING_TIMEOUT_MS,
        "executions": executions,
        "client_sessions": [
            {
                "session_id": c.session,
                "client_name": c.prof.name,
                "client_version": c.prof.version,
                "protocol_version": c.prof.protocol,
                "target_repl": repls[c.repl].uid,
                "total_requests": sum(1 for s in c.req_seqs if s in inter_id),
                "total_errors": sum(1 for s in c.err_seqs if s in inter_id),
                "stateless": c.prof.stateless,
            }
            for c in clients
        ],
        "repl_drops": [
            {
                "repl_id": r.uid,
                "unregistered_at": _fmt(base, a),
                "registered_again_at": _fmt(base, b),
            }
            for r, a, b in drops
        ],
        "malformed_interaction_ids": sorted(inter_id[s] for s in malformed if s in inter_id),
        "batch_interaction_ids": sorted(inter_id[s] for s in batches if s in inter_id),
    }
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
