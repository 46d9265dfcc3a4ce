"""Progress bars: drawn on a real terminal (a pseudo-terminal here), never elsewhere."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline.run
from pipeline.config import EtlConfig
from pipeline.progress import Progress, Silent
from pipeline.watch import watch
from tests.helpers import REPO, make_demo

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SUMMARY = re.compile(r"(\d+)\s+interactions\s+and\s+(\d+)\s+events\s+read")


def _on_terminal(args: list[str]) -> tuple[int, str]:
    """Run the command line with stdout and stderr on a pseudo-terminal: (exit code,
    everything it wrote, escape sequences removed)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        cwd=REPO,
        env=env,
    )
    os.close(slave)
    out = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=120), ANSI.sub("", out.decode("utf-8", "replace"))


def _last_line(text: str, stage: str) -> str:
    """The last drawing of a stage's bar: the final state of the stage."""
    lines = [line for line in re.split(r"[\r\n]", text) if stage in line and "━" in line]
    assert lines, f"no bar for {stage!r} in {text!r}"
    return lines[-1][lines[-1].rindex(stage) :]


def test_a_run_on_a_terminal_draws_each_stage_with_its_rows_and_rate(tmp_path: Path) -> None:
    source, _ = make_demo(tmp_path, calls=300, seed=6)
    target = tmp_path / "target.db"
    code, text = _on_terminal(["etl", str(source), "--target", str(target), "--batch-rows", "200"])
    assert code == 0, text
    found = SUMMARY.search(text)
    assert found is not None, text
    interactions, events = (int(n) for n in found.groups())
    assert interactions > 400  # several batches of 200
    events_bar = _last_line(text, "events")
    assert f" {events:,} rows" in events_bar and "rows/s" in events_bar
    reads = _last_line(text, "interactions")
    assert f" {interactions:,} rows" in reads and "rows/s" in reads
    assert "commit (3 of 3)" in _last_line(text, "write")
    # Each batch is drawn as it is handed over: the count goes up batch by batch.
    drawn = re.findall(r"interactions\s+[━╸╺]+\s+([\d,]+) rows", text)
    counts = {int(n.replace(",", "")) for n in drawn}
    assert {200, 400, 600, interactions} <= counts


def test_nothing_is_drawn_with_quiet_or_off_a_terminal(tmp_path: Path) -> None:
    source, _ = make_demo(tmp_path, calls=100, seed=7)
    code, text = _on_terminal(["etl", str(source), "--target", str(tmp_path / "a.db"), "--quiet"])
    assert (code, text) == (0, "")
    piped = subprocess.run(
        [sys.executable, "-m", "pipeline", "etl", str(source), "--target", str(tmp_path / "b.db")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert piped.stderr == ""
    assert "rows/s" not in piped.stdout and SUMMARY.search(piped.stdout)


def test_watch_draws_progress_for_its_first_cycle_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = make_demo(tmp_path, calls=100, seed=8)
    asked: list[bool] = []

    def recorded(quiet: bool) -> Progress:
        asked.append(quiet)
        return Silent()

    monkeypatch.setattr(pipeline.run, "open_progress", recorded)
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if len(lines) == 3:
            signal.raise_signal(signal.SIGTERM)

    config = EtlConfig(source=source, target=tmp_path / "t.db", quiet=False)
    assert watch(config, 0.05, echo=echo).cycles == 3
    assert asked == [False, True, True]
