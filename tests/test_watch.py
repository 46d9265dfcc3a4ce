"""etl --watch: a real process over a growing source, stopped by a real signal."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import pipeline.run
from pipeline.cli import main
from pipeline.config import EtlConfig
from pipeline.watch import MAX_BACKOFF_S, backoff_s, watch
from tests.helpers import REPO, copy_until, etl, make_demo, new_live_source, outputs


def _meta(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    conn = sqlite3.connect(db, timeout=10)
    try:
        return dict(conn.execute("SELECT key, value FROM etl_metadata").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


def _source_max(db: Path) -> tuple[str, str]:
    conn = sqlite3.connect(db, timeout=10)
    try:
        it = conn.execute("SELECT COALESCE(MAX(id), 0) FROM interactions").fetchone()[0]
        ev = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
    finally:
        conn.close()
    return str(it), str(ev)


def _wait_until(check: Callable[[], bool], proc: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert proc.poll() is None, f"watch exited early: {proc.communicate()}"
        assert time.monotonic() < deadline, "watch did not catch up in time"
        time.sleep(0.1)


def _caught_up(source: Path, target: Path) -> Callable[[], bool]:
    def check() -> bool:
        meta = _meta(target)
        return (meta.get("interactions_max_id"), meta.get("events_max_id")) == _source_max(source)

    return check


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "etl", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _timestamps(full: Path) -> list[str]:
    conn = sqlite3.connect(full)
    rows = [r[0] for r in conn.execute("SELECT timestamp FROM interactions ORDER BY id")]
    conn.close()
    return rows


@pytest.mark.slow
def test_watch_follows_a_growing_source_and_stops_on_sigterm(tmp_path: Path) -> None:
    full, _ = make_demo(tmp_path, calls=1500, seed=21)
    live, target, reference = tmp_path / "live.db", tmp_path / "target.db", tmp_path / "ref.db"
    new_live_source(live)
    stamps = _timestamps(full)
    proc = _start(str(live), "--target", str(target), "--watch", "--interval", "0.2")
    try:
        # The source grows between cycles, sometimes with its newest events not logged yet.
        for i, part in enumerate((0.3, 0.55, 0.8, 1.0)):
            cut = stamps[int(part * (len(stamps) - 1))]
            copy_until(full, live, cut, events_lag_ms=0 if part == 1.0 else 3 * (i % 2))
            _wait_until(_caught_up(live, target), proc, 60)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert stderr == ""
    lines = stdout.splitlines()
    assert lines[0].startswith("cycle 1: full run,")
    assert lines[-1].startswith("etl --watch: stopped after ")
    assert lines[-1].endswith(" cycles (0 failed)")
    etl(live, target=reference, full=True)
    assert outputs(target) == outputs(reference)


@pytest.mark.slow
def test_failing_cycles_back_off_and_recover(tmp_path: Path) -> None:
    live, target = tmp_path / "live.db", tmp_path / "target.db"
    source, _ = make_demo(tmp_path, calls=300, seed=5)
    new_live_source(live)
    args = [str(live), "--target", str(target), "--watch", "--interval", "0.2", "--quiet"]
    proc = _start(*args, "--busy-timeout", "50")
    lock = sqlite3.connect(target, timeout=10, isolation_level=None)
    try:
        _wait_until(lambda: bool(_meta(target)), proc, 60)
        lock.execute("BEGIN EXCLUSIVE")  # every cycle now fails to write the target
        copy_until(source, live, "9999-12-31 23:59:59.999")
        time.sleep(2.5)
        lock.execute("ROLLBACK")
        _wait_until(_caught_up(live, target), proc, 60)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        lock.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert stdout == ""
    failures = stderr.splitlines()
    assert len(failures) >= 2, stderr
    delays = []
    for line in failures:
        assert line.startswith("etl --watch: cycle "), line
        assert " failed: " in line and "locked" in line, line
        delays.append(line.rsplit("retrying in ", 1)[1])
    assert delays[:3] == ["0.4 s", "0.8 s", "1.6 s"][: len(delays[:3])]


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff_s(1, n) for n in range(4)] == [1, 2, 4, 8]
    assert backoff_s(1, 30) == MAX_BACKOFF_S
    assert backoff_s(600, 3) == 600  # an interval above the cap is never shortened


def test_second_signal_rolls_the_cycle_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM twice inside the write transaction: the cycle is abandoned, nothing changes."""
    full, _ = make_demo(tmp_path, calls=400, seed=8)
    live = tmp_path / "live.db"
    new_live_source(live)
    copy_until(full, live, _timestamps(full)[300])
    etl(live)
    before = outputs(live)
    copy_until(full, live, "9999-12-31 23:59:59.999")
    real_derive = pipeline.run.derive

    def interrupted(*a: Any, **kw: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)  # first: finish the cycle, then stop
        os.kill(os.getpid(), signal.SIGTERM)  # second: abandon it now
        return real_derive(*a, **kw)

    monkeypatch.setattr(pipeline.run, "derive", interrupted)
    lines: list[str] = []
    done = watch(EtlConfig(source=live, target=live, quiet=True), 0.1, echo=lines.append)
    assert done.abandoned and done.cycles == 1 and lines == []
    assert outputs(live) == before
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    # The next run does the work the abandoned cycle did not commit.
    monkeypatch.setattr(pipeline.run, "derive", real_derive)
    etl(live)
    reference = tmp_path / "ref.db"
    etl(live, target=reference, full=True)
    assert outputs(live) == outputs(reference)


def test_watch_bad_invocations_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = CliRunner().invoke(main, ["etl", str(missing), "--watch", "--interval", "0.2"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: source database {missing} does not exist")
    assert not missing.exists()
    live = tmp_path / "live.db"
    new_live_source(live)
    result = CliRunner().invoke(main, ["etl", str(live), "--interval", "5"])
    assert result.exit_code == 2
    assert result.stderr == "error: --interval needs --watch\n"


def test_each_cycle_exports_parquet(tmp_path: Path) -> None:
    """With --parquet, a cycle is the run and then the export of what it committed."""
    source, _ = make_demo(tmp_path, calls=200, seed=3)
    target, folder = tmp_path / "target.db", tmp_path / "parquet"
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        os.kill(os.getpid(), signal.SIGTERM)  # stop after this cycle

    done = watch(EtlConfig(source=source, target=target, quiet=True), 0.1, folder, echo=echo)
    assert (done.cycles, done.failed, done.abandoned) == (1, 0, False)
    assert "; parquet full, " in lines[0]
    manifest = json.loads((folder / "_manifest.json").read_text(encoding="utf-8"))
    conn = sqlite3.connect(target)
    run_id = conn.execute("SELECT value FROM etl_metadata WHERE key = 'run_id'").fetchone()[0]
    executions = conn.execute("SELECT COUNT(*) FROM tool_executions").fetchone()[0]
    conn.close()
    assert manifest["run_id"] == run_id
    assert manifest["tables"]["tool_executions"]["rows"] == executions
