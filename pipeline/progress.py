"""Progress of a run on a terminal: one bar per stage, with its rows and their rate.

A run reads the events, then the interactions batch by batch, then writes the target
in one transaction. On a terminal (stderr) each stage gets a rich progress bar:

    events        ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━       1,700 rows     7,029 rows/s 0:00:00
    interactions  ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━   1,000,759 rows    95,310 rows/s 0:00:10
    write         ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  commit (3 of 3)                  0:00:04

The interactions' bar moves by id (the producer numbers its rows in order: how far
through the id range the run is); its count is of the rows actually read. The write is
three steps (load, derive, commit) of set-based SQL statements, which report no rows as
they go, so its bar moves by step. Nothing is drawn with --quiet, when stderr is not a terminal (a
pipe, a log file, cron) or for the cycles of --watch after the first, which print a
line each; rich is then not even imported.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

__all__ = ["WRITE_STEPS", "Progress", "open_progress"]

WRITE_STEPS = ("load", "derive", "commit")


class Progress(Protocol):
    def stage(self, name: str, total: int) -> None:
        """Start a stage over `total` ids (ends the stage before it)."""

    def rows(self, read: int, position: int) -> None:
        """`read` rows of the stage read so far, up to `position` ids into it."""

    def step(self, name: str) -> None:
        """Start one of WRITE_STEPS (the first starts the write stage)."""

    def close(self) -> None:
        """End the last stage and stop drawing."""


class Silent:
    """No terminal, or not wanted: a run reports nothing as it goes."""

    def stage(self, name: str, total: int) -> None:
        pass

    def rows(self, read: int, position: int) -> None:
        pass

    def step(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass


class Bars:
    """rich bars on stderr, redrawn ten times a second by rich's own thread."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._bars: RichProgress = RichProgress(
            TextColumn("{task.description:<13}"),
            BarColumn(bar_width=30),
            TextColumn("{task.fields[done]:>16}"),
            TextColumn("{task.fields[rate]:>16}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._bars.start()
        self._task: TaskID | None = None
        self._started = 0.0
        self._read = 0
        self._counts_rows = False
        self._steps = 0

    def _end_stage(self) -> None:
        if self._task is not None:
            if self._counts_rows:
                # The rate over the whole stage, the transform of its last batch included.
                self._rate(self._read)
            self._bars.update(self._task, completed=self._bars.tasks[self._task].total)
            self._bars.stop_task(self._task)
            self._task = None

    def _rate(self, read: int) -> None:
        """Rows per second since the stage started."""
        elapsed = time.perf_counter() - self._started
        if self._task is not None and elapsed > 0 and read:
            self._bars.update(self._task, rate=f"{read / elapsed:,.0f} rows/s")

    def stage(self, name: str, total: int) -> None:
        self._end_stage()
        self._started = time.perf_counter()
        self._read = 0
        self._counts_rows = True
        self._task = self._bars.add_task(name, total=max(total, 1), done="0 rows", rate="")

    def rows(self, read: int, position: int) -> None:
        if self._task is None:
            return
        self._read = read
        self._rate(read)
        # Drawn now, not at rich's next tick: a batch takes longer than a tick anyway.
        self._bars.update(self._task, completed=position, done=f"{read:,} rows", refresh=True)

    def step(self, name: str) -> None:
        if name == WRITE_STEPS[0] or self._task is None:
            self._end_stage()
            self._task = self._bars.add_task("write", total=len(WRITE_STEPS), done="", rate="")
            self._counts_rows = False
            self._steps = 0
        self._steps += 1
        self._bars.update(
            self._task,
            completed=self._steps - 1,
            done=f"{name} ({self._steps} of {len(WRITE_STEPS)})",
        )

    def close(self) -> None:
        self._end_stage()
        self._bars.stop()


def open_progress(quiet: bool) -> Progress:
    """Bars when wanted and stderr is a terminal, else Silent."""
    if quiet or not sys.stderr.isatty():
        return Silent()
    return Bars()
