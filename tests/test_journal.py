"""A first rebuild of the log itself writes its pages once (load.rollback_journal_when_alone):
out of WAL mode while nothing else has the file open, back in it afterwards, and in WAL
mode beside another process that has the file open (a live proxy) or over a previous
run's rows; killed in rollback mode, it leaves the log whole."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.load import rollback_journal_when_alone
from tests.helpers import etl, make_demo, outputs


def _journal(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    finally:
        conn.close()


@contextmanager
def _held_open(db: Path) -> Iterator[None]:
    """Another process with the file open and idle between its reads, as the proxy."""
    probe = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('SELECT count(*) FROM sqlite_master').fetchone()\n"
        "print('open', flush=True)\n"
        "sys.stdin.readline()\n"
        "c.close()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", probe, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        yield
    finally:
        proc.communicate("\n", timeout=30)


@pytest.fixture
def wal_log(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A log in WAL mode and a connection to it, as the run's write connection."""
    db = tmp_path / "log.db"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (x TEXT)")
        yield db, conn
    finally:
        conn.close()


def _to_wal(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_leaves_wal_mode_alone_and_goes_back(wal_log: tuple[Path, sqlite3.Connection]) -> None:
    db, conn = wal_log
    with rollback_journal_when_alone(conn, 5_000) as mode:
        assert mode == "delete"
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES ('x')")
        conn.execute("COMMIT")
        assert not Path(f"{db}-wal").exists()
    assert _journal(db) == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5_000


def test_keeps_wal_mode_beside_another_process_without_waiting(
    wal_log: tuple[Path, sqlite3.Connection],
) -> None:
    db, conn = wal_log
    with _held_open(db):
        started = time.monotonic()
        with rollback_journal_when_alone(conn, 5_000) as mode:
            waited = time.monotonic() - started
            assert mode == "wal"
            assert _journal(db) == "wal"
        assert waited < 1, f"waited {waited:.1f} s for a lock it cannot get"
    assert _journal(db) == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5_000


def test_leaves_a_rollback_journal_file_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("CREATE TABLE t (x TEXT)")
        with rollback_journal_when_alone(conn, 5_000) as mode:
            assert mode == "delete"
        assert _journal(db) == "delete"
    finally:
        conn.close()


def test_full_run_into_the_log_itself(tmp_path: Path) -> None:
    """The rebuild runs in rollback mode when alone and in WAL mode beside another
    process; the file ends in WAL mode and the tables are the same either way."""
    source, _ = make_demo(tmp_path, calls=400, seed=31)
    alone, beside = tmp_path / "alone.db", tmp_path / "beside.db"
    shutil.copyfile(source, alone)
    shutil.copyfile(source, beside)
    summary = etl(alone)
    assert summary.mode == "full" and summary.write_journal == "delete"
    assert _journal(alone) == "wal"
    assert _journal(beside) == "delete"  # as the producer made it
    # As a first run leaves it; the proxy then reads and writes through the WAL.
    _to_wal(beside)
    with _held_open(beside):
        summary = etl(beside, full=True)
    assert summary.mode == "full" and summary.write_journal == "wal"
    assert _journal(beside) == "wal"
    assert outputs(alone) == outputs(beside)
    # An incremental run has nothing to rewrite and stays in WAL mode.
    assert etl(alone).write_journal == "wal"
    # A rebuild over a previous run's rows reuses the pages it frees, which rollback
    # mode would journal: it stays in WAL mode, and load_clear.sql empties the tables.
    before = outputs(alone)
    summary = etl(alone, full=True)
    assert summary.mode == "full" and summary.write_journal == "wal"
    assert outputs(alone) == before


def test_a_first_rebuild_killed_in_rollback_mode_leaves_the_log_whole(tmp_path: Path) -> None:
    """SIGKILL while the rebuild's rollback journal exists: the next opener rolls the
    rebuild back (no analytics visible), and the next run does the work and puts the
    log back in WAL mode."""
    source, _ = make_demo(tmp_path, calls=5000, seed=47)
    log = tmp_path / "log.db"
    shutil.copyfile(source, log)
    journal, wal = Path(f"{log}-journal"), Path(f"{log}-wal")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "etl", str(log), "--quiet"])
    try:
        # The schema is written in rollback mode too, before the run switches the log
        # to WAL mode, and leaving WAL mode makes a journal for a moment: the rebuild's
        # journal is the one there once the file grows past its size in WAL mode.
        while not wal.exists() and proc.poll() is None:
            time.sleep(0.0002)
        size = log.stat().st_size
        while not (journal.exists() and log.stat().st_size > size) and proc.poll() is None:
            time.sleep(0.0002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before its write transaction"
    assert journal.exists(), "no rollback journal: the rebuild did not run in rollback mode"
    conn = sqlite3.connect(log)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM tool_executions").fetchone()[0] == 0
    finally:
        conn.close()
    assert _journal(log) == "delete"  # the kill left it out of WAL mode
    reference = tmp_path / "reference.db"
    etl(source, target=reference)
    assert etl(log).write_journal == "delete"
    assert _journal(log) == "wal"
    assert outputs(log) == outputs(reference)
