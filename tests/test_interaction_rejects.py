"""A rejected interaction keeps the first 200 characters of its content as its excerpt.

The excerpts are read for the rejected rows alone (queries/source_excerpts.sql), after
the batch is classified and paired: these rows are rejected at both points, in several
batches, with multibyte text and invalid UTF-8.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import etl, new_live_source

LONG = "é€" * 150 + "{"  # 301 characters, 752 bytes, not JSON


def _call(n: int) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "t"}})


def _reply(n: int, text: str = "ok") -> str:
    return json.dumps(
        {"jsonrpc": "2.0", "id": n, "result": {"content": [{"type": "text", "text": text}]}},
        ensure_ascii=False,
    )


# (direction, content, reason); content None: invalid UTF-8 bytes.
ROWS: list[tuple[str, str | None, str | None]] = [
    ("inbound", _call(1), None),
    ("inbound", LONG, "invalid_json"),
    ("outbound", _reply(1), None),
    ("outbound", _reply(7, "ü" * 250), "unpaired_response"),  # answers nothing
    ("inbound", None, "invalid_utf8"),
    ("inbound", "[" + _call(2) + "]", "batch_not_supported"),
    ("inbound", "   ", "empty_content"),
    ("outbound", _reply(8), "unpaired_response"),
]


@pytest.mark.parametrize("batch_rows", [2, 1000])
def test_rejected_interactions_keep_their_excerpts(tmp_path: Path, batch_rows: int) -> None:
    source = tmp_path / "log.db"
    new_live_source(source)
    conn = sqlite3.connect(source)
    with conn:
        for i, (direction, content, _) in enumerate(ROWS):
            ts = f"2026-11-20 08:00:{i:02d}.000"
            if content is None:
                conn.execute(
                    "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
                    "content) VALUES ('s1', ?, ?, 'request', CAST(x'7b22ff223a317d' AS TEXT))",
                    (ts, direction),
                )
            else:
                conn.execute(
                    "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
                    "content) VALUES ('s1', ?, ?, 'request', ?)",
                    (ts, direction, content),
                )
    conn.close()

    summary = etl(source, tmp_path / "out.db", batch_rows=batch_rows)

    out = sqlite3.connect(tmp_path / "out.db")
    got = out.execute(
        "SELECT source_id, reason, excerpt FROM etl_rejects "
        "WHERE source_table = 'interactions' ORDER BY source_id"
    ).fetchall()
    out.close()
    want = [
        (i + 1, reason, None if content is None else content[:200])
        for i, (_, content, reason) in enumerate(ROWS)
        if reason is not None
    ]
    assert got == want
    assert len(got[0][2]) == 200  # characters, not bytes
    assert summary.rejects == {
        "invalid_json": 1,
        "unpaired_response": 2,
        "invalid_utf8": 1,
        "batch_not_supported": 1,
        "empty_content": 1,
    }
