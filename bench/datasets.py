"""The benchmark's source databases: large demo logs built from one-day chunks.

`generate_demo` writes one 24-hour log per call and keeps every row in memory until the
end, so one call for 2.5M tool calls would need many GB. A benchmark database is
instead a run of consecutive demo days: chunk k is `generate_demo(calls=CHUNK_CALLS,
seed=SEED_BASE + k)` starting at FIRST_DAY + k days, appended with its interaction and
event ids shifted after the previous chunk's (its timestamps already are: a demo day
ends before the next one starts). Each day has its own clients, sessions and REPL
uuids, so the days never pair with each other, like a proxy that runs for weeks.

The sizes are prefixes of one another (the 1M database is the first 10 days of the 5M
one), so a larger size starts from a copy of the largest cached smaller one.

The incremental run needs new rows that continue the log: `hold_back` copies a cached
database without its last 1% of interactions (and the events logged after the last
kept one), and `append_held_back` appends those rows back with their own ids and
timestamps: real new calls, responses to calls already read, cancellations and all.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pipeline.demo import generate_demo

__all__ = [
    "CHUNK_CALLS",
    "SIZES",
    "BenchDb",
    "HeldBack",
    "append_held_back",
    "ensure_bench_db",
    "hold_back",
    "source_totals",
]

# Demo days per size; one day of CHUNK_CALLS calls is about 100k interactions.
SIZES: dict[str, int] = {"100k": 1, "1m": 10, "5m": 50}
CHUNK_CALLS = 50_000
SEED_BASE = 5_000
FIRST_DAY = datetime(2026, 1, 5, 8, 0, 0)
HOLD_BACK_FRACTION = 0.01


@dataclass(frozen=True)
class BenchDb:
    """A cached benchmark database and how it was made (kept beside it as JSON)."""

    path: Path
    label: str
    chunks: int
    chunk_calls: int
    seed_base: int
    interactions: int
    events: int


@dataclass(frozen=True)
class HeldBack:
    """The rows a working copy lacks: interaction ids above `last_id`, events after."""

    last_interaction_id: int
    last_event_id: int
    last_timestamp: str


@dataclass(frozen=True)
class Totals:
    """Row counts and JSON bytes (interactions' content plus events' data)."""

    interactions: int
    events: int
    json_bytes: int


def _meta_path(db: Path) -> Path:
    return db.with_name(db.name + ".json")


def _read_meta(db: Path) -> BenchDb | None:
    meta = _meta_path(db)
    if not db.exists() or not meta.exists():
        return None
    doc = json.loads(meta.read_text(encoding="utf-8"))
    return BenchDb(
        path=db,
        label=str(doc["label"]),
        chunks=int(doc["chunks"]),
        chunk_calls=int(doc["chunk_calls"]),
        seed_base=int(doc["seed_base"]),
        interactions=int(doc["interactions"]),
        events=int(doc["events"]),
    )


def _write_meta(info: BenchDb) -> None:
    doc = {k: v for k, v in asdict(info).items() if k != "path"}
    _meta_path(info.path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def _count(db: Path, table: str) -> int:
    con = sqlite3.connect(db)
    try:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        return int(row[0])
    finally:
        con.close()


def append_chunk(db: Path, chunk: Path) -> None:
    """Append a demo database's rows to `db` with ids after its own, in one transaction."""
    con = sqlite3.connect(db)
    try:
        con.execute("ATTACH DATABASE ? AS chunk", (str(chunk),))
        (newest,) = con.execute(
            "SELECT max((SELECT max(timestamp) FROM main.interactions),"
            " (SELECT max(timestamp) FROM main.events))"
        ).fetchone()
        (first,) = con.execute(
            "SELECT min((SELECT min(timestamp) FROM chunk.interactions),"
            " (SELECT min(timestamp) FROM chunk.events))"
        ).fetchone()
        if newest is not None and first <= newest:
            msg = f"chunk {chunk} starts at {first}, not after the log's end {newest}"
            raise ValueError(msg)
        with con:
            con.execute(
                "INSERT INTO main.interactions (id, session_id, timestamp, direction,"
                " message_type, request_id, method, content, content_size)"
                " SELECT id + (SELECT coalesce(max(id), 0) FROM main.interactions),"
                " session_id, timestamp, direction, message_type, request_id, method,"
                " content, content_size FROM chunk.interactions ORDER BY id"
            )
            con.execute(
                "INSERT INTO main.events (id, session_id, event_type, timestamp,"
                " duration_ms, data)"
                " SELECT id + (SELECT coalesce(max(id), 0) FROM main.events),"
                " session_id, event_type, timestamp, duration_ms, data"
                " FROM chunk.events ORDER BY id"
            )
            # Session ids like 'proxy' or a tool's name recur every day: keep the first
            # row and stretch its last_activity, as the producer would.
            con.execute(
                "INSERT INTO main.sessions SELECT * FROM chunk.sessions WHERE true"
                " ON CONFLICT (session_id) DO UPDATE SET last_activity ="
                " max(last_activity, excluded.last_activity)"
            )
        con.execute("DETACH DATABASE chunk")
    finally:
        con.close()


def ensure_bench_db(
    data_dir: Path,
    label: str,
    chunk_calls: int = CHUNK_CALLS,
    chunks: int | None = None,
    log: Callable[[str], None] = print,
) -> BenchDb:
    """The cached database of a size, built (or extended from a smaller one) if missing."""
    n_chunks = SIZES[label] if chunks is None else chunks
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"bench-{label}.db"
    cached = _read_meta(path)
    if cached is not None and (cached.chunks, cached.chunk_calls, cached.seed_base) == (
        n_chunks,
        chunk_calls,
        SEED_BASE,
    ):
        return cached

    # Start from the largest cached prefix (same chunk size and seeds) that fits.
    prefix: BenchDb | None = None
    for other in sorted(data_dir.glob("bench-*.db")):
        info = _read_meta(other)
        if (
            info is not None
            and info.path != path
            and (info.chunk_calls, info.seed_base) == (chunk_calls, SEED_BASE)
            and info.chunks <= n_chunks
            and (prefix is None or info.chunks > prefix.chunks)
        ):
            prefix = info
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    _meta_path(path).unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    done = 0
    if prefix is not None:
        log(f"{label}: starting from {prefix.path.name} ({prefix.chunks} days)")
        shutil.copyfile(prefix.path, partial)
        done = prefix.chunks
    for k in range(done, n_chunks):
        chunk = data_dir / f"chunk-{k}.db.tmp"
        chunk.unlink(missing_ok=True)
        start = FIRST_DAY + timedelta(days=k)
        log(f"{label}: generating day {k + 1}/{n_chunks} ({chunk_calls} calls)")
        generate_demo(
            chunk,
            calls=chunk_calls,
            seed=SEED_BASE + k,
            truth=None,
            consistent_sessions=False,
            start=start.strftime("%Y-%m-%d %H:%M:%S.000"),
        )
        if k == 0:
            chunk.replace(partial)
        else:
            append_chunk(partial, chunk)
            chunk.unlink()
    partial.replace(path)
    info = BenchDb(
        path=path,
        label=label,
        chunks=n_chunks,
        chunk_calls=chunk_calls,
        seed_base=SEED_BASE,
        interactions=_count(path, "interactions"),
        events=_count(path, "events"),
    )
    _write_meta(info)
    return info


def hold_back(source: Path, work: Path, fraction: float = HOLD_BACK_FRACTION) -> HeldBack:
    """Copy `source` to `work` without its newest `fraction` of interactions.

    The cut is at an interaction row; the events logged after that row's timestamp are
    left out too, so the copy is the log as it was at that moment.
    """
    work.unlink(missing_ok=True)
    shutil.copyfile(source, work)
    con = sqlite3.connect(work)
    try:
        (max_id,) = con.execute("SELECT max(id) FROM interactions").fetchone()
        keep = int(max_id) - max(1, round(int(max_id) * fraction))
        (cut_ts,) = con.execute(
            "SELECT timestamp FROM interactions WHERE id <= ? ORDER BY id DESC LIMIT 1",
            (keep,),
        ).fetchone()
        with con:
            con.execute("DELETE FROM interactions WHERE id > ?", (keep,))
            con.execute("DELETE FROM events WHERE timestamp > ?", (cut_ts,))
        (last_event,) = con.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        (last_interaction,) = con.execute("SELECT max(id) FROM interactions").fetchone()
    finally:
        con.close()
    return HeldBack(int(last_interaction), int(last_event), str(cut_ts))


def append_held_back(source: Path, work: Path) -> Totals:
    """Append to `work` the rows of `source` after its own (same ids); return what came."""
    con = sqlite3.connect(work)
    try:
        con.execute("ATTACH DATABASE ? AS full_db", (str(source),))
        (last_i,) = con.execute("SELECT coalesce(max(id), 0) FROM main.interactions").fetchone()
        (last_e,) = con.execute("SELECT coalesce(max(id), 0) FROM main.events").fetchone()
        with con:
            con.execute(
                "INSERT INTO main.interactions SELECT * FROM full_db.interactions WHERE id > ?",
                (last_i,),
            )
            con.execute(
                "INSERT INTO main.events SELECT * FROM full_db.events WHERE id > ?", (last_e,)
            )
            con.execute("INSERT OR IGNORE INTO main.sessions SELECT * FROM full_db.sessions")
        row = con.execute(
            "SELECT (SELECT count(*) FROM main.interactions WHERE id > ?),"
            " (SELECT count(*) FROM main.events WHERE id > ?),"
            " (SELECT coalesce(sum(length(CAST(content AS BLOB))), 0)"
            "  FROM main.interactions WHERE id > ?)"
            " + (SELECT coalesce(sum(length(CAST(data AS BLOB))), 0)"
            "  FROM main.events WHERE id > ?)",
            (last_i, last_e, last_i, last_e),
        ).fetchone()
        con.execute("DETACH DATABASE full_db")
    finally:
        con.close()
    return Totals(int(row[0]), int(row[1]), int(row[2]))


def source_totals(db: Path) -> Totals:
    """Rows and JSON bytes of a whole source (read without timing)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute(
            "SELECT (SELECT count(*) FROM interactions), (SELECT count(*) FROM events),"
            " (SELECT coalesce(sum(length(CAST(content AS BLOB))), 0) FROM interactions)"
            " + (SELECT coalesce(sum(length(CAST(data AS BLOB))), 0) FROM events)"
        ).fetchone()
    finally:
        con.close()
    return Totals(int(row[0]), int(row[1]), int(row[2]))
