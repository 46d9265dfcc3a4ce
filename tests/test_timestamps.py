"""A timestamp that is not the producer's `YYYY-MM-DD HH:MM:SS.sss` is rejected
(`invalid_timestamp`, docs/rules.md): never trusted, never a crash.

The ETL compares and slices timestamps as text (a day is their first ten characters,
events are read by a time range), which is right only for that exact shape.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from pipeline.transform.decode import ts_ms
from tests.helpers import etl, new_live_source

# Each is wrong in one way; the ones a lenient parser would take come first.
MALFORMED = [
    "2026-11-20 08:00:01",  # no milliseconds
    "2026-11-20 8:00:01.000",  # a one-digit hour
    "2026-11-2 08:00:01.000",  # a one-digit day
    " 2026-11-20 08:00:01.000",  # a leading space
    "2026-11-20  08:00:01.000",  # two spaces
    "2026-11-20 08:00:01.000 ",  # a trailing space
    "2026-11-20T08:00:01.000",  # ISO's T
    "2026-11-20 08:00:01.000Z",  # a zone
    "2026-11-20 08:00:01.0001",  # four digits of fraction
    "2026-11-20 08:00:01.00",  # two
    "+2026-11-20 08:00:01.000",  # a sign
    "2026-11-20 08:00:0\u0661.000",  # a digit that is not ASCII
    "2026-02-30 08:00:01.000",  # no such day
    "2026-11-20 24:00:00.000",  # no such hour
    "2026-11-20 23:59:60.000",  # no such second
    # Fixed-width fields that are not all digits (Polars' own parser reads these).
    "2026-1x-20 08:00:01.000",
    "2026-11-20 08:00: 1.000",
    "2026-11-20 08:00:01.-10",
    "2026-11-20 -8:00:01.000",
    "yesterday",
    "",
]


def test_only_the_exact_shape_parses() -> None:
    good = ["2026-11-20 08:00:01.000", "1999-12-31 23:59:59.999", "2026-02-28 00:00:00.000"]
    frame = pl.DataFrame({"ts": good + MALFORMED}).select(ms=ts_ms("ts"))
    parsed = frame["ms"].to_list()
    assert parsed[: len(good)] == [1795161601000, 946684799999, 1772236800000]
    assert parsed[len(good) :] == [None] * len(MALFORMED)


def _call(n: int) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "t"}})


def _reply(n: int) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": n, "result": {"content": []}})


@pytest.mark.parametrize("first", [True, False], ids=["bad-first", "bad-among-good"])
def test_rows_with_malformed_timestamps_are_rejected(tmp_path: Path, first: bool) -> None:
    """Interactions and events, a malformed timestamp first in its batch or among good
    ones: each such row is in etl_rejects, and every published day is a real date."""
    source = tmp_path / "log.db"
    new_live_source(source)
    rows: list[tuple[str, str, str]] = []  # (timestamp, direction, content)
    events: list[tuple[str, str]] = []  # (event type, timestamp)
    good = 0
    for i, bad in enumerate(MALFORMED):
        ok = f"2026-11-20 08:{i:02d}:00.000"
        pair = [(ok, "inbound", _call(2 * i)), (ok[:-3] + "500", "outbound", _reply(2 * i))]
        rows += (
            [(bad, "inbound", _call(2 * i + 1)), *pair]
            if first
            else [*pair, (bad, "inbound", _call(2 * i + 1))]
        )
        good += 1
        events += [("session.initialized", bad), ("session.initialized", ok)]
    conn = sqlite3.connect(source)
    with conn:
        conn.executemany(
            "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
            "content, content_size) VALUES ('s1', ?, ?, 'request', ?, length(?))",
            [(ts, d, c, c) for ts, d, c in rows],
        )
        conn.executemany(
            "INSERT INTO events (session_id, event_type, timestamp, data) "
            "VALUES ('s1', ?, ?, '{\"client_name\": \"c\"}')",
            events,
        )
    conn.close()

    summary = etl(source, tmp_path / "out.db")

    out = sqlite3.connect(tmp_path / "out.db")
    rejected = out.execute(
        "SELECT source_table, count(*) FROM etl_rejects WHERE reason = 'invalid_timestamp' "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    calls = out.execute("SELECT count(*), sum(status = 'success') FROM tool_executions").fetchone()
    days = {d for (d,) in out.execute("SELECT DISTINCT request_date FROM tool_executions")}
    out.close()
    assert rejected == [("events", len(MALFORMED)), ("interactions", len(MALFORMED))]
    assert summary.rejects["invalid_timestamp"] == 2 * len(MALFORMED)
    assert calls == (good, good)
    assert days == {"2026-11-20"}


@pytest.mark.parametrize(
    "bad", ["yesterday", "2026-02-30 08:00:01.000", " 2026-11-20 09:00:00.000"]
)
@pytest.mark.parametrize("where", ["interactions", "events", "both"])
def test_a_malformed_newest_row_is_not_the_newest_time(
    tmp_path: Path, bad: str, where: str
) -> None:
    """The newest timestamp (timeouts, settling) is the newest valid one. A last row
    with a malformed timestamp stopped every run until the producer wrote another."""
    source = tmp_path / "log.db"
    new_live_source(source)
    conn = sqlite3.connect(source)
    with conn:
        conn.executemany(
            "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
            "content, content_size) VALUES ('s1', ?, ?, 'request', ?, 1)",
            [
                ("2026-11-20 08:00:00.000", "inbound", _call(1)),
                ("2026-11-20 08:00:00.500", "outbound", _reply(1)),
                (bad if where != "events" else "2026-11-20 08:00:00.600", "inbound", _call(2)),
            ],
        )
        conn.executemany(
            "INSERT INTO events (session_id, event_type, timestamp, data) "
            "VALUES ('s1', 'session.initialized', ?, '{}')",
            [
                ("2026-11-20 07:59:59.000",),
                (bad if where != "interactions" else "2026-11-20 08:00:01.000",),
            ],
        )
    conn.close()

    etl(source, tmp_path / "out.db")

    out = sqlite3.connect(tmp_path / "out.db")
    (newest,) = out.execute(
        "SELECT value FROM etl_metadata WHERE key = 'newest_timestamp'"
    ).fetchone()
    statuses = out.execute("SELECT request_id, status FROM tool_executions ORDER BY 1").fetchall()
    out.close()
    expected = {
        "interactions": "2026-11-20 08:00:01.000",
        "events": "2026-11-20 08:00:00.600",
        "both": "2026-11-20 08:00:00.500",
    }
    assert newest == expected[where]
    assert statuses[0] == ("1", "success")
