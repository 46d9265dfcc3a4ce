"""queries/source_interactions.sql gives the same frame as the per-path scan it replaced,
and queries/source_context_events.sql the same as its json_extract version.

The reference is a frozen copy of the earlier query (tests/data/); both run on the same
sources and the frames must be equal, column for column: real MCP messages, demo logs,
hand-written hostile documents, and generated ones.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from bench.datasets import ensure_bench_db
from pipeline.queries import sql
from pipeline.source import SourceInfo, connect_source
from tests.helpers import HOSTILE_INPUT_CHECKS, make_demo
from tests.test_fuzz import contents as fuzz_contents
from tests.test_real_messages import MESSAGES, build_source

REFERENCE = Path(__file__).resolve().parent / "data" / "source_interactions_reference.sql"

# The producer's columns, with content nullable so that a missing body can be tested.
INTERACTIONS = """
CREATE TABLE interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    direction TEXT NOT NULL,
    message_type TEXT NOT NULL,
    request_id TEXT,
    method TEXT,
    content TEXT,
    content_size INTEGER
)
"""

Content = str | bytes | None


def scan(source: Path, query: str, lo: int = 0, hi: int = 2**62) -> pl.DataFrame:
    """The rows of one scan query, as the ETL reads them (SourceReader.interactions)."""
    conn = connect_source(SourceInfo(source, has_interactions=True))
    try:
        return conn.execute(query, {"lo": lo, "hi": hi}).pl().sort("interaction_id")
    finally:
        conn.close()


def assert_same_scan(source: Path, lo: int = 0, hi: int = 2**62) -> pl.DataFrame:
    old = scan(source, REFERENCE.read_text(encoding="utf-8"), lo, hi)
    new = scan(source, sql("source_interactions"), lo, hi)
    assert new.columns == old.columns
    assert_frame_equal(new, old)
    return new


def write_source(path: Path, bodies: Sequence[Content]) -> Path:
    """A source whose interactions hold these bodies; bytes are stored as TEXT unchanged."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(INTERACTIONS)
        for n, body in enumerate(bodies):
            size = None if body is None or n % 3 == 0 else len(body)
            conn.execute(
                "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
                "content, content_size) VALUES ('s', ?, 'inbound', 'request', CAST(? AS TEXT), ?)",
                (f"2026-01-01 00:00:{n % 60:02d}.000", body, size),
            )
    conn.close()
    return path


def _msg(**fields: object) -> str:
    return json.dumps({"jsonrpc": "2.0", **fields})


ID_VALUES = [
    "null", "0", "-0", "1", "-1", "1.5", "-0.0", "1e400", "1E2", "18446744073709551615",
    "18446744073709551616", "9223372036854775808", "-9223372036854775809", '"7"', '""',
    '"a\\"b"', '"a\\u0000b"', '"\\u00e9t\\u00e9"', '"é"', '"tab\\tnew\\nline"', "[]", "[1]",
    "{}", '{"a":null}', "true", "false", "NaN", "-Infinity", "Infinity",
]  # fmt: skip
OTHER_VALUES = [
    "null", "5", "-1.5", '"s"', '"text"', '"tools/call"', '"tools\\/call"', "[]", "[null]",
    "{}", '{"a":1,"a":2}', "true", "false", "NaN",
    # Numbers DuckDB writes its own way as VARCHAR (1e+16) and as JSON otherwise.
    "1e+16", "2.50", "-0", "1E2",
]  # fmt: skip
BLOCKS = [
    "1", '"a"', "null", "[]", "[[]]", "{}", '{"type":null}', '{"type":5,"text":6}',
    '{"type":"text"}', '{"type":"text","text":null}', '{"type":"image","data":"AAAA"}',
    '{"type":{"t":"text"},"text":[1,2]}', '{"type":"text","text":"' + "x" * 600 + '"}',
    '{"type":"text","text":"first"}', '{"type":"text","text":"é\\u0000\\n"}',
    '{"text":"no type"}', '{"type":"text","type":"image","text":"dup"}',
    '{"type":"resource","resource":{"text":"inner"}}',
    '{"type":1e+16,"text":2.50}', '{"type":"te\\u0078t","text":1e+16}',
    '{"type":"text","text":-0}', '{"type":"text","text":"1e+16"}',
    '{"type":"text","text":1e400}', '{"type":"text","text":18446744073709551616}',
    '{"type":"text","text":[1e+16,{"a":2.50,"b":"\\u00e9"}]}', '{"type":"text","text":true}',
]  # fmt: skip


def hostile_bodies() -> list[Content]:
    """Documents that probe each column: ids of every JSON type, keys of the wrong type,
    JSON null against absent, content blocks of every shape, lenient JSON, non-JSON."""
    bodies: list[Content] = []
    for v in ID_VALUES:
        bodies += [
            f'{{"jsonrpc":"2.0","id":{v},"method":"tools/call","params":{{"name":"t"}}}}',
            f'{{"jsonrpc":"2.0","id":{v},"result":{{}}}}',
            f'{{"jsonrpc":"2.0","id":{v},"error":{{"code":{v},"message":{v},"data":{v}}}}}',
            f'{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{v}}}}}',
        ]
    for v in OTHER_VALUES:
        bodies += [
            f'{{"jsonrpc":"2.0","id":1,"method":{v},"params":{v}}}',
            f'{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"name":{v},"arguments":{v},'
            f'"reason":{v},"requestId":{v},"_meta":{v}}}}}',
            f'{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":{v},'
            f'"arguments":{v}}}}}',
            f'{{"jsonrpc":"2.0","method":"initialize","params":{{"_meta":{{'
            f'"io.modelcontextprotocol/clientInfo":{v},'
            f'"io.modelcontextprotocol/protocolVersion":{v},'
            f'"io.modelcontextprotocol/clientCapabilities":{v}}}}}}}',
            f'{{"jsonrpc":"2.0","method":"initialize","params":{{"_meta":{{'
            f'"io.modelcontextprotocol/clientInfo":{{"name":{v},"version":{v}}}}}}}}}',
            f'{{"jsonrpc":"2.0","id":1,"result":{v}}}',
            f'{{"jsonrpc":"2.0","id":1,"result":{{"content":{v},"isError":{v},'
            f'"structuredContent":{v},"resultType":{v},"task":{v}}}}}',
            f'{{"jsonrpc":"2.0","id":1,"error":{v}}}',
            f'{{"jsonrpc":"2.0","id":1,"error":{{"code":{v},"message":{v},"data":{v}}}}}',
        ]
    bodies += [f'{{"jsonrpc":"2.0","id":1,"result":{{"content":[{b}]}}}}' for b in BLOCKS]
    bodies += [
        '{"jsonrpc":"2.0","id":1,"result":{"content":[' + ",".join(BLOCKS) + "]}}",
        '{"jsonrpc":"2.0","id":1,"result":{"content":[' + ",".join(reversed(BLOCKS)) + "]}}",
        '{"jsonrpc":"2.0","id":1,"result":{"content":[]}}',
        # Duplicate keys, escaped keys, a null that is only a word in a string.
        '{"id":1,"id":"x","method":"a","method":null}',
        # params without a method (no params_json), and with a method that is JSON null.
        '{"jsonrpc":"2.0","id":1,"params":{"name":"t"}}',
        '{"jsonrpc":"2.0","params":null,"result":{}}',
        '{"jsonrpc":"2.0","id":1,"method":null,"params":{"a":1}}',
        '{"id":1,"result":{"content":[{"type":"text","text":"a"}]},"result":null}',
        '{"\\u0069d":3,"res\\u0075lt":null,"m\\u0065thod":"tools/call"}',
        '{"jsonrpc":"2.0","id":1,"method":"x","params":{"name":"null","arguments":{"a":"null"}}}',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"a":1,"a":2,"b":[]}}}',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"result":{},'
        '"error":{"code":-32601}}',
        # Whitespace everywhere; lenient JSON DuckDB accepts and RFC 8259 does not.
        '  {\n\t"jsonrpc" : "2.0" ,\r\n "id" : 1 , "result" : { "content" : [ ] } }  ',
        '{"jsonrpc":"2.0","id":1,"result":{},}',
        '{"jsonrpc":"2.0","id":1,"result":{"a":[1, 2 ,\n\t]}}',
        '{"jsonrpc":"2.0","id":1,"result":{"a":1 ,\r\n }}',
        '{"jsonrpc":"2.0","id":NaN,"result":{}}',
        '{"jsonrpc":"2.0","id":1,"error":{"code":-Infinity}}',
        '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"NaN, }"}]}}',
        '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Infinity ,]"}]}}',
        # Not objects.
        "[]", "[1]", '[{"jsonrpc":"2.0","id":1,"method":"ping"}]', '"str"', "5", "-5", "1.5",
        "true", "null", "18446744073709551616", "{}", '{"jsonrpc":"2.0"}', "  {}  ",
        # Not JSON, empty, missing, not UTF-8.
        "", "   ", "\n", "{", "{'a':1}", "nul", "{}x", '{"a":1}{"b":2}', "\x00",
        "GET / HTTP/1.1", '{"id":1,"method":"tools/call"', None,
        b"\xff\xfe{}", b'{"id":1,"method":"\xc3"}', b"\x80",
        # JSON but for one sequence that is not UTF-8: a surrogate, an overlong '/', a
        # code point above U+10FFFF, a stray continuation byte in a key.
        b'{"id":2,"method":"\xed\xa0\x80"}', b'{"id":3,"method":"\xc0\xaf"}',
        b'{"id":4,"method":"x","params":{"name":"\xf4\x90\x80\x80"}}',
        b'{"id":5,"me\x80thod":"ping"}',
        # Deep and large.
        '{"jsonrpc":"2.0","id":1,"method":"x","params":' + "[" * 3000 + "]" * 3000 + "}",
        _msg(id=7, result={"content": [{"type": "text", "text": "z" * 1_100_000}]}),
        _msg(id=8, method="tools/call", params={"name": "n", "arguments": {"code": "é" * 5000}}),
    ]  # fmt: skip
    return bodies


def test_hostile_documents(tmp_path: Path) -> None:
    bodies = hostile_bodies()
    new = assert_same_scan(write_source(tmp_path / "hostile.db", bodies))
    assert new.height == len(bodies)
    # The cases reach the columns they were written for.
    kinds = set(new["doc_kind"].to_list())
    assert {"object", "array", "invalid_json", "empty", "invalid_utf8", "null"} <= kinds
    assert new["lenient_suspect"].is_not_null().sum() >= 8
    assert set(new["id_type"].drop_nulls().to_list()) >= {
        "NULL", "BIGINT", "UBIGINT", "DOUBLE", "VARCHAR", "ARRAY", "OBJECT", "BOOLEAN"
    }  # fmt: skip


def test_each_id_range_is_the_same(tmp_path: Path) -> None:
    """The ETL reads in id ranges ($lo, $hi]: a range boundary changes nothing."""
    source = write_source(tmp_path / "hostile.db", hostile_bodies())
    assert_same_scan(source, lo=10, hi=11)
    assert_same_scan(source, lo=40, hi=90)
    assert assert_same_scan(source, lo=5, hi=5).height == 0


def test_real_messages(tmp_path: Path) -> None:
    if not MESSAGES.exists():
        pytest.skip(f"{MESSAGES} is missing: clone the shared/ folder beside the repository")
    lines = [json.loads(t) for t in MESSAGES.read_text(encoding="utf-8").splitlines() if t.strip()]
    source = tmp_path / "real.db"
    build_source(source, lines)
    assert assert_same_scan(source).height > len(lines)


@pytest.mark.parametrize(("calls", "seed", "consistent"), [(400, 1, False), (300, 7, True)])
def test_demo_logs(tmp_path: Path, calls: int, seed: int, consistent: bool) -> None:
    source, _ = make_demo(tmp_path, calls=calls, seed=seed, consistent=consistent)
    assert assert_same_scan(source).height > calls


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=HOSTILE_INPUT_CHECKS,
)
@given(bodies=st.lists(fuzz_contents, min_size=1, max_size=30))
def test_generated_documents(
    tmp_path_factory: pytest.TempPathFactory, bodies: list[str | bytes]
) -> None:
    source = write_source(tmp_path_factory.mktemp("scan") / "events.db", bodies)
    assert_same_scan(source)


@pytest.mark.slow
def test_benchmark_log_slice(tmp_path: Path) -> None:
    """The first 50,000 rows of the benchmark's log: its first day, built here (about 15 s).

    Every size of `make bench` starts with this day, so the scan is checked on the data
    it is measured on, also on a machine that never ran the benchmark.
    """
    day = ensure_bench_db(tmp_path, "100k", log=lambda _: None)
    assert assert_same_scan(day.path, lo=0, hi=50_000).height == 50_000


CONTEXT_REFERENCE = REFERENCE.with_name("source_context_events_reference.sql")
EVENTS = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT,
    event_type TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    duration_ms REAL,
    data TEXT
)
"""


def context_events(source: Path, query: str) -> pl.DataFrame:
    """Every request.received and tool.call.start event, as _context_events reads them."""
    conn = connect_source(SourceInfo(source, has_interactions=False))
    try:
        window = {"ts_lo": "2000-01-01 00:00:00.000", "ts_hi": "2999-12-31 23:59:59.999"}
        params = {**window, "max_id": 2**62}
        return conn.execute(query, params).pl()
    finally:
        conn.close()


def test_context_events_of_hostile_data(tmp_path: Path) -> None:
    """queries/source_context_events.sql (one json_transform per document) gives the
    frame of the json_extract version it replaced, for every JSON id and odd data."""
    datas = [
        *(f'{{"method":"tools/call","request_id":{v},"tool_name":"t"}}' for v in ID_VALUES),
        *(f'{{"request_id":{v},"method":null,"is_proxy_tool":{v}}}' for v in ID_VALUES),
        '{"method":1,"tool_name":["x"],"is_proxy_tool":"true"}',
        '{"method":"a","method":"b","request_id":1,"request_id":2}',
        '{"is_proxy_tool":true,"tool_name":"\\ud83d\\ude00","method":"\\"q\\""}',
        '{"request_id":[null]}', '{"a":null}', '{"request_id":"null"}', '{"request_id":1,}',
        "[]", '"x"', "5", "null", "{bad", "", None,
    ]  # fmt: skip
    source = tmp_path / "events.db"
    conn = sqlite3.connect(source)
    with conn:
        conn.execute(EVENTS)
        for n, data in enumerate(datas):
            for kind in ("request.received", "tool.call.start"):
                conn.execute(
                    "INSERT INTO events (session_id, event_type, timestamp, data) "
                    "VALUES ('s', ?, ?, ?)",
                    (kind, f"2026-01-01 00:{n // 60:02d}:{n % 60:02d}.000", data),
                )
    conn.close()
    new = context_events(source, sql("source_context_events"))
    old = context_events(source, CONTEXT_REFERENCE.read_text(encoding="utf-8"))
    assert new.height == 2 * len(datas)
    assert_frame_equal(new, old)
    assert new["request_id_json"].is_in(["null"]).any()  # JSON null kept apart from absent
