"""Events whose data is not JSON are recorded in etl_rejects, whatever their type."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.helpers import etl, new_live_source


def test_broken_event_data_is_rejected_not_dropped(tmp_path: Path) -> None:
    source = tmp_path / "events.db"
    new_live_source(source)
    conn = sqlite3.connect(source)
    with conn:
        conn.executemany(
            "INSERT INTO events (session_id, event_type, timestamp, data) VALUES (?, ?, ?, ?)",
            [
                ("s1", "request.received", "2026-11-20 08:00:00.000", "{broken"),
                ("s1", "request.received", "2026-11-20 08:00:00.001", '{"method": "ping"}'),
                ("s1", "session.initialized", "2026-11-20 08:00:00.002", "[1,"),
            ],
        )
    conn.close()
    summary = etl(source)
    conn = sqlite3.connect(source)
    rejected = conn.execute(
        "SELECT source_id, reason FROM etl_rejects WHERE source_table = 'events' ORDER BY 1"
    ).fetchall()
    conn.close()
    assert rejected == [(1, "invalid_json"), (3, "invalid_json")]
    assert summary.events_read == 2
    assert summary.rejects == {"invalid_json": 2}
