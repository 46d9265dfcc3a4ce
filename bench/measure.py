"""Run one command as a child process and measure it alone: wall time, peak RSS, CPU.

Linux starts a new process's peak RSS (`ru_maxrss`) at the RSS of the process that
forked it: the memory map replaced at exec counts as the child's. The harness holds a
few hundred MB after generating data, so it does not spawn the measured command
itself but a small wrapper (bench/spawn.py, a fresh interpreter of about 10 MB) that
spawns the command, reaps it with `os.wait4` (the usage of exactly that child) and
writes the numbers as JSON. A command's peak RSS is therefore its own, with a floor of
the wrapper's size.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["Measurement", "StepFailed", "measure"]

SPAWN = Path(__file__).resolve().parent / "spawn.py"
DEFAULT_MAX_RSS_MB = psutil.virtual_memory().total / 2**20 / 2
POLL_S = 0.25


@dataclass(frozen=True)
class Measurement:
    """One child's wall time, peak resident set, CPU time and output."""

    wall_s: float
    peak_rss_mb: float
    cpu_s: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def cpu_percent(self) -> float:
        """CPU time over wall time; above 100 when several cores work."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class StepFailed(RuntimeError):
    """A measured command exited with a non-zero code."""


def measure(
    cmd: Sequence[str | Path],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    max_rss_mb: float = DEFAULT_MAX_RSS_MB,
) -> Measurement:
    """Run `cmd` in `cwd` (default: the repository's root) through the wrapper; measure it.

    Raises StepFailed if it exits with a non-zero code and `check`, or if its resident
    set grows above `max_rss_mb` (it is then killed: a run that would swap or meet the
    OOM killer on a shared machine is a failed measurement, not a number).
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        report = Path(tmp) / "usage.json"
        wrapper = subprocess.Popen(
            [sys.executable, str(SPAWN), str(report), *(str(c) for c in cmd)],
            cwd=SPAWN.parent.parent if cwd is None else cwd,
            env=None if env is None else dict(env),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        killed_at_mb = _watch(wrapper, max_rss_mb)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        if killed_at_mb is not None:
            msg = (
                f"{cmd[0]} was stopped at {killed_at_mb:.0f} MB resident, above the cap of"
                f" {max_rss_mb:.0f} MB (--max-rss-gb), to spare the machine"
            )
            raise StepFailed(msg)
        if not report.exists():
            msg = f"the measuring wrapper failed for {cmd!r}:\n{stderr[-2000:]}"
            raise StepFailed(msg)
        usage = json.loads(report.read_text(encoding="utf-8"))
    result = Measurement(
        wall_s=float(usage["wall_s"]),
        peak_rss_mb=float(usage["maxrss_kib"]) / 1024.0,  # Linux reports KiB
        cpu_s=float(usage["cpu_s"]),
        returncode=int(usage["returncode"]),
        stdout=stdout,
        stderr=stderr,
    )
    if check and result.returncode != 0:
        shown = " ".join(str(c) for c in cmd)
        msg = f"{shown} exited with {result.returncode}:\n{stderr[-2000:]}"
        raise StepFailed(msg)
    return result


def _watch(wrapper: subprocess.Popen[bytes], max_rss_mb: float) -> float | None:
    """Wait for the wrapper; kill its child if the child's RSS passes the cap.

    Returns the RSS in MB at which the child was killed, or None.
    """
    parent = psutil.Process(wrapper.pid)
    while True:
        try:
            wrapper.wait(timeout=POLL_S)
            return None
        except subprocess.TimeoutExpired:
            pass
        try:
            children = parent.children(recursive=True)
            rss_mb = sum(c.memory_info().rss for c in children) / 2**20
        except psutil.Error:
            continue  # the child just ended; the next wait returns
        if rss_mb > max_rss_mb:
            for c in children:
                with contextlib.suppress(psutil.Error):
                    c.kill()
            wrapper.wait()
            return rss_mb
