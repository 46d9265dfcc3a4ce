"""The ETL code a benchmark measures: a snapshot of one commit, not the moving work tree.

The pipeline is installed in editable mode, so a run started while someone edits or
commits `pipeline/` would measure whatever the files hold when each child starts (and
when each module is first imported). By default the harness exports `pipeline/` and
`queries/` at HEAD into `data/bench/code/<sha>/` and runs `python -m pipeline` there
(the current directory comes first on sys.path, before the editable install), so
every step of one run measures the same commit, named in RESULTS.md.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CodeVersion", "snapshot_head", "work_tree"]

CODE_PATHS = ("pipeline", "queries")


@dataclass(frozen=True)
class CodeVersion:
    """Where to run the ETL from, and what it is."""

    root: Path  # holds pipeline/ and queries/; the ETL runs with this as its cwd
    description: str  # for RESULTS.md


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def snapshot_head(repo: Path, into: Path) -> CodeVersion:
    """Export pipeline/ and queries/ at HEAD under `into` (once per commit)."""
    sha = _git(repo, "rev-parse", "HEAD")
    # Name the commit that last changed the measured code, not HEAD's own subject.
    last = _git(repo, "log", "-1", "--format=%h %s", sha, "--", *CODE_PATHS)
    dest = into / sha[:12]
    if not dest.exists():
        tar = subprocess.run(
            ["git", "archive", "--format=tar", sha, *CODE_PATHS],
            cwd=repo,
            check=True,
            capture_output=True,
        ).stdout
        partial = dest.with_name(dest.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            archive.extractall(partial, filter="data")
        partial.rename(dest)
    dirty = _git(repo, "status", "--porcelain", "--", *CODE_PATHS)
    note = " (the work tree had uncommitted changes there, not measured)" if dirty else ""
    return CodeVersion(
        dest, f"`pipeline/` and `queries/` at commit {sha[:12]}, last changed by {last}{note}"
    )


def work_tree(repo: Path) -> CodeVersion:
    """Run the work tree's code as it is (changes made during the run are picked up)."""
    return CodeVersion(repo, "the work tree as it was during the run (`--code worktree`)")
