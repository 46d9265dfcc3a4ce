"""Events whose data is not JSON are recorded in etl_rejects, whatever their type."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipeline.source import validate_source
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


# Types around the three per-request ones in sort order (a query that read the others
# by ranges of event_type would miss one at a wrong bound), then the per-request ones.
AROUND = ["a.first", "request.error", "request.receivedX", "tool.call.completed", "tool.call.z"]
PER_REQUEST = ["request.received", "tool.call.start", "tool.call.complete"]


def _broken_events(conn: sqlite3.Connection, minute: int) -> None:
    conn.executemany(
        "INSERT INTO events (session_id, event_type, timestamp, data) VALUES ('s1', ?, ?, ?)",
        [
            (kind, f"2026-11-20 08:{minute:02d}:{n:02d}.000", data)
            for n, kind in enumerate(AROUND + PER_REQUEST)
            for data in ("{not json", '{"ok": true}')
        ],
    )


@pytest.mark.parametrize(
    "type_index",
    [
        "CREATE INDEX idx_events_type ON events(event_type, timestamp DESC)",  # the producer's
        None,  # an older log without it: the types are read by a scan of the id range
        "CREATE INDEX idx_events_type ON events(event_type) WHERE event_type <> 'x'",
    ],
)
def test_broken_events_of_every_type_are_rejected_in_full_and_incremental_runs(
    tmp_path: Path, type_index: str | None
) -> None:
    """Every broken event is rejected once, whatever its type, by the run that first
    reads it, whether or not the log has the producer's index of events by type."""
    source = tmp_path / "events.db"
    new_live_source(source)
    conn = sqlite3.connect(source)
    with conn:
        conn.execute("DROP INDEX idx_events_type")
        if type_index is not None:
            conn.execute(type_index)
        _broken_events(conn, 0)
    # Only a full index of the type, in BINARY order, serves queries/source_events.sql.
    usable = type_index is not None and "WHERE" not in type_index
    assert validate_source(source, 1000).events_type_index == usable
    first = etl(source, tmp_path / "out.db")
    with conn:
        _broken_events(conn, 1)
    second = etl(source, tmp_path / "out.db")
    conn.execute("ATTACH ? AS out", (str(tmp_path / "out.db"),))
    rejected = conn.execute(
        "SELECT e.event_type, count(*) FROM out.etl_rejects AS r "
        "JOIN events AS e ON e.id = r.source_id "
        "WHERE r.source_table = 'events' AND r.reason = 'invalid_json' GROUP BY 1"
    ).fetchall()
    conn.close()
    assert second.mode == "incremental"
    assert dict(rejected) == dict.fromkeys(AROUND + PER_REQUEST, 2)
    assert first.rejects == second.rejects == {"invalid_json": len(AROUND + PER_REQUEST)}
