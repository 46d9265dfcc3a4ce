"""A person's resolution of an error, stored by the error's natural key."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import BadInvocation


def resolve_error(db: Path, error_id: int, notes: str) -> str:
    """Mark errors.id = error_id resolved with notes; return its stable error_key."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
    try:
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'errors'"
        ).fetchone()
        if not has_table:
            msg = f"{db} has no errors table; run `mcp-analytics etl` on it first"
            raise BadInvocation(msg)
        row = conn.execute("SELECT error_key FROM errors WHERE id = ?", (error_id,)).fetchone()
        if row is None:
            msg = (
                f"no error with id {error_id} in {db}; "
                "the ids are in the id column of the errors table"
            )
            raise BadInvocation(msg)
        key = str(row[0])
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO error_resolutions (error_key, resolution_notes, resolved_at) "
            "VALUES (?, ?, ?) ON CONFLICT (error_key) DO UPDATE SET "
            "resolution_notes = excluded.resolution_notes, resolved_at = excluded.resolved_at",
            (key, notes, now),
        )
        conn.execute(
            "UPDATE errors SET resolved = 1, resolution_notes = ? WHERE error_key = ?",
            (notes, key),
        )
        conn.execute("COMMIT")
        return key
    finally:
        conn.close()
