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

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Measurement", "StepFailed", "measure"]

SPAWN = Path(__file__).resolve().parent / "spawn.py"


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
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> Measurement:
    """Run `cmd` in the repository's root through the wrapper and measure it.

    Raises StepFailed if it exits with a non-zero code and `check`.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        report = Path(tmp) / "usage.json"
        subprocess.run(
            [sys.executable, str(SPAWN), str(report), *(str(c) for c in cmd)],
            check=False,
            cwd=SPAWN.parent.parent,
            env=None if env is None else dict(env),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
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
