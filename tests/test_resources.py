"""Resource failures: a full disk or an unwritable target fails cleanly (issue 6).

The disk is filled for real: the CLI runs in a child process whose file size limit
(RLIMIT_FSIZE) stops every write past a few kilobytes, which SQLite reports as a full
disk, exactly as on a full volume.
"""

from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.load import PAGE_SIZE, Staging
from tests.helpers import copy_until, etl, make_demo, new_live_source, outputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _cli(args: list[str], max_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if max_file_bytes is not None:
            # Writes past the limit fail with EFBIG instead of killing the process.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        check=False,
    )


def _assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A full demo and a live copy holding its first half."""
    tmp = tmp_path_factory.mktemp("resources")
    source, _ = make_demo(tmp, calls=600, seed=17)
    live = tmp / "half.db"
    new_live_source(live)
    conn = sqlite3.connect(source)
    stamps = [r[0] for r in conn.execute("SELECT timestamp FROM interactions ORDER BY id")]
    conn.close()
    copy_until(source, live, stamps[len(stamps) // 2])
    return source, live


@pytest.fixture
def live(grown: tuple[Path, Path], tmp_path: Path) -> Path:
    """This test's own copy of the half-grown log, as live.db in its folder."""
    copy = tmp_path / "live.db"
    copy.write_bytes(grown[1].read_bytes())
    return copy


def test_full_disk_during_the_write_leaves_the_previous_state(
    grown: tuple[Path, Path], live: Path, tmp_path: Path
) -> None:
    source, _ = grown
    target = tmp_path / "analytics.db"
    etl(live, target=target)
    before = outputs(target)
    conn = sqlite3.connect(source)
    last = conn.execute("SELECT MAX(timestamp) FROM interactions").fetchone()[0]
    conn.close()
    copy_until(source, live, last)
    # Room for the small staging file of the new rows, not for the target to grow.
    result = _cli(
        ["etl", str(live), "--target", str(target), "--quiet"],
        max_file_bytes=target.stat().st_size + 4096,
    )
    _assert_one_line_error(result, 1)
    assert "nothing was committed" in result.stderr
    assert outputs(target) == before
    check = sqlite3.connect(target)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    assert not list(tmp_path.glob(".mcp-analytics-*"))
    # With room again, the next run finishes the work.
    assert _cli(["etl", str(live), "--target", str(target), "--quiet"]).returncode == 0
    reference = tmp_path / "reference.db"
    etl(live, target=reference, full=True)
    assert outputs(target) == outputs(reference)


def test_full_disk_while_staging_fails_cleanly(live: Path, tmp_path: Path) -> None:
    target = tmp_path / "analytics.db"
    result = _cli(["etl", str(live), "--target", str(target), "--quiet"], max_file_bytes=8192)
    _assert_one_line_error(result, 1)
    assert not target.exists(), "a target this run created is removed again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.db"]


def test_unwritable_target_path(grown: tuple[Path, Path]) -> None:
    _, half = grown
    # /proc refuses new files whoever we are (tests may run as root, which ignores modes).
    result = _cli(["etl", str(half), "--target", "/proc/mcp-analytics.db", "--quiet"])
    _assert_one_line_error(result, 1)
    assert "/proc/mcp-analytics.db" in result.stderr


def test_corrupt_source_is_a_bad_input(tmp_path: Path) -> None:
    source = tmp_path / "events.db"
    source.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    result = _cli(["etl", str(source), "--quiet"])
    _assert_one_line_error(result, 2)
    assert source.read_bytes().startswith(b"SQLite format 3\x00\xff")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.db"]


def test_an_abandoned_staging_file_is_removed(live: Path, tmp_path: Path) -> None:
    leftover = tmp_path / ".mcp-analytics-killed.staging.db"
    leftover.write_bytes(b"left by a run that was killed")
    # SQLite's journals: one beside the killed run's file, one whose file is gone.
    journal = tmp_path / ".mcp-analytics-killed.staging.db-journal"
    journal.write_bytes(b"journal of the killed run")
    orphan = tmp_path / ".mcp-analytics-gone.staging.db-journal"
    orphan.write_bytes(b"journal whose file was removed")
    etl(live)
    assert not leftover.exists()
    assert not journal.exists()
    assert not orphan.exists()


def _page_size(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def test_files_the_etl_creates_use_its_page_size_and_existing_ones_keep_theirs(
    live: Path, tmp_path: Path
) -> None:
    assert _page_size(live) == 4096  # the producer's (SQLite's default)
    target = tmp_path / "analytics.db"
    etl(live, target=target)
    assert _page_size(target) == PAGE_SIZE
    etl(live)  # the log as its own target: already has rows, keeps its pages
    assert _page_size(live) == 4096
    staging = Staging(tmp_path)
    try:
        assert _page_size(staging.path) == PAGE_SIZE
    finally:
        staging.close()
