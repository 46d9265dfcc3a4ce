"""One typed configuration object for a run; every field documented once, here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EtlConfig:
    # The producer's SQLite log (sessions, events, interactions); opened read-only.
    source: Path
    # Where the analytics tables go; the design document puts them beside the raw ones.
    target: Path
    # Rebuild every analytics table from the first row instead of from the watermarks.
    full: bool = False
    # A request with no response older than this (relative to the newest source
    # timestamp) is a timeout, younger ones are pending (SPEC §2).
    pending_timeout_ms: int = 300_000
    # request.received is logged 0-5 ms after its interaction row; this is how far
    # apart a request row and its event may be and still be the same request.
    resolve_window_ms: int = 2_000
    # Rows younger than this (relative to the newest event) may still lack their
    # request.received event: they are processed, but redone on the next run.
    settle_ms: int = 5_000
    # A client session with no activity for this long (relative to the newest source
    # timestamp) is disconnected (SPEC §6).
    idle_timeout_ms: int = 1_800_000
    # session.initialized is logged while the proxy handles the initialize request; this
    # is how long before the event its request may have been logged.
    init_window_ms: int = 10_000
    # Interactions read per batch (id range); bounds memory, not results.
    batch_rows: int = 50_000
    # How long SQLite waits for a lock on the source or the target before giving up.
    busy_timeout_ms: int = 5_000
    # Replace secrets (values under sensitive keys, credential-looking strings) with
    # [REDACTED] before anything is written (pipeline/transform/redact.py).
    redact: bool = True
    # No progress bars on the terminal (pipeline/progress.py).
    quiet: bool = False
