"""The flusher of a full rebuild (load.flushing): it syncs the target through SQLite's
own descriptors and never drops a lock SQLite holds on the file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.load import _open_fds, flushing

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="the flusher needs /proc/self/fd"
)


def _writer(path: Path, wal: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x TEXT)")
    return conn


def test_finds_the_descriptors_sqlite_has_open(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    conn = _writer(db)
    other = tmp_path / "other.db"
    other.write_bytes(b"")
    try:
        fds = _open_fds({str(db.resolve())})
        assert fds, "SQLite's descriptor of the open target was not found"
        assert all(os.readlink(f"/proc/self/fd/{fd}") == str(db.resolve()) for fd in fds)
        assert _open_fds({str(other.resolve())}) == []
    finally:
        conn.close()
    assert _open_fds({str(db.resolve())}) == []


def test_finds_the_wal_of_a_live_log(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    conn = _writer(db, wal=True)
    try:
        conn.execute("INSERT INTO t VALUES ('x')")
        assert _open_fds({f"{db.resolve()}-wal"}), "the WAL's descriptor was not found"
    finally:
        conn.close()


def test_syncs_while_the_block_runs_and_stops_after(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    conn = _writer(db)
    synced: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:  # the real sync, counted
        synced.append(fd)
        real(fd)

    os.fdatasync = counting  # type: ignore[assignment]
    try:
        with flushing(db, interval_s=0.01):
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(500).hex(),)] * 1000)
            deadline = time.monotonic() + 5
            while not synced and time.monotonic() < deadline:
                time.sleep(0.01)
            conn.execute("COMMIT")
        assert synced, "nothing was synced while the block ran"
        assert set(synced) <= set(_open_fds({str(db.resolve())}))
        after = len(synced)
        time.sleep(0.05)
        assert len(synced) == after, "the flusher went on after the block"
        assert not [t for t in threading.enumerate() if t.name == "flush"]
    finally:
        os.fdatasync = real  # type: ignore[assignment]
        conn.close()


def test_keeps_the_write_lock_of_the_transaction(tmp_path: Path) -> None:
    """Opening the file again and closing it would drop SQLite's POSIX locks: another
    process could then write into the rebuild."""
    db = tmp_path / "t.db"
    conn = _writer(db)
    try:
        with flushing(db, interval_s=0.01):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES ('mine')")
            time.sleep(0.1)  # several flushes
            probe = (
                "import sqlite3, sys\n"
                "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
                "try:\n"
                "    c.execute('BEGIN IMMEDIATE')\n"
                "except sqlite3.OperationalError:\n"
                "    sys.exit(3)\n"
                "sys.exit(0)\n"
            )
            result = subprocess.run([sys.executable, "-c", probe, str(db)], check=False)
            assert result.returncode == 3, "another process could lock the target mid-rebuild"
            conn.execute("COMMIT")
    finally:
        conn.close()
