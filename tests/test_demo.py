"""Tests for the demo generator: determinism, refusal to overwrite, consistent truth."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo import generate_demo


def _dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(db)
    try:
        # Table names are fixed literals, not input.
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()  # noqa: S608
            for t in ("sessions", "events", "interactions")
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("demo")
    db, truth = d / "a.db", d / "a.json"
    generate_demo(db, calls=2000, seed=7, truth=truth)
    return db, json.loads(truth.read_text())


def test_deterministic_per_seed(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    generate_demo(a, calls=300, seed=3, truth=tmp_path / "a.json")
    generate_demo(b, calls=300, seed=3, truth=tmp_path / "b.json")
    generate_demo(c, calls=300, seed=4)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert _dump(a) == _dump(b)
    assert _dump(a) != _dump(c)


def test_refuses_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "x.db"
    out.write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_demo(out, calls=10)
    assert out.read_text() == "keep me"


def test_truth_ids_exist_and_match(demo: tuple[Path, dict[str, Any]]) -> None:
    db, truth = demo
    con = sqlite3.connect(db)
    rows = {
        r[0]: r
        for r in con.execute(
            "SELECT id, session_id, direction, request_id, content FROM interactions"
        )
    }
    con.close()
    assert len(truth["executions"]) == 2000
    for e in truth["executions"]:
        req = rows[e["request_row_id"]]
        assert req[2] == "inbound"
        msg = json.loads(req[4])
        assert msg["method"] == "tools/call" and msg["id"] == e["request_id"]
        assert msg["params"]["name"] == e["tool_name"]
        if e["response_row_id"] is not None:
            resp = rows[e["response_row_id"]]
            assert resp[2] == "outbound"
            assert json.loads(resp[4])["id"] == e["request_id"]
            assert e["response_row_id"] > e["request_row_id"]
        if e["error_interaction_id"] is not None:
            assert e["error_interaction_id"] == e["response_row_id"]
    for i in truth["malformed_interaction_ids"] + truth["batch_interaction_ids"]:
        assert i in rows


def test_every_status_occurs(demo: tuple[Path, dict[str, Any]]) -> None:
    counts = Counter(e["status"] for e in demo[1]["executions"])
    assert set(counts) == {"success", "error", "cancelled", "timeout", "pending"}


def test_colliding_ids_across_clients(demo: tuple[Path, dict[str, Any]]) -> None:
    by_id: dict[str, list[dict[str, Any]]] = {}
    for e in demo[1]["executions"]:
        by_id.setdefault(json.dumps(e["request_id"]), []).append(e)
    overlapping = 0
    for group in by_id.values():
        for a in group:
            for b in group:
                if (
                    a["session_id"] != b["session_id"]
                    and a["response_row_id"]
                    and a["request_row_id"] < b["request_row_id"] < a["response_row_id"]
                ):
                    overlapping += 1
    assert overlapping > 0


def test_nearest_preceding_rule_reproduces_truth(demo: tuple[Path, dict[str, Any]]) -> None:
    # SPEC pairing: same JSON id, on the call's route (target REPL, or 'proxy' which also
    # carries the proxy's own errors), nearest preceding open request of any method.
    # It must give exactly the generator's real pairing, else the truth is unreachable.
    db, truth = demo
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT id, session_id, direction, content FROM interactions ORDER BY id"
    ).fetchall()
    con.close()
    target = {c["session_id"]: c["target_repl"] for c in truth["client_sessions"]}
    execs = {e["request_row_id"]: e for e in truth["executions"]}
    proxy_tools = {"help", "proxy_status", "list_julia_sessions", "dashboard_url"}
    got: dict[int, int] = {}
    open_: dict[tuple[str, str], list[int]] = {}
    for rid, route, direction, content in rows:
        try:
            msg = json.loads(content)
        except ValueError:
            continue
        if not isinstance(msg, dict) or msg.get("id") is None:
            continue
        key = json.dumps(msg["id"])
        if direction == "inbound" and "method" in msg:
            e = execs.get(rid)
            routes = {"proxy"}
            if e is not None and e["tool_name"] not in proxy_tools:
                routes.add(target[e["session_id"]])
            for r in routes:
                open_.setdefault((r, key), []).append(rid)
        elif direction == "outbound":
            stack = open_.get((route, key), [])
            if stack:
                req = stack.pop()
                got[req] = rid
                for other in open_.values():
                    if req in other:
                        other.remove(req)
    for e in truth["executions"]:
        assert got.get(e["request_row_id"]) == e["response_row_id"], e


def test_consistent_sessions_rows(tmp_path: Path) -> None:
    db, tj = tmp_path / "c.db", tmp_path / "c.json"
    generate_demo(db, calls=200, seed=1, truth=tj, consistent_sessions=True)
    truth = json.loads(tj.read_text())
    con = sqlite3.connect(db)
    sid = dict(con.execute("SELECT id, session_id FROM interactions"))
    con.close()
    for e in truth["executions"]:
        assert sid[e["request_row_id"]] == e["session_id"]
