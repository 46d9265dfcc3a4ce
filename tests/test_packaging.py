"""A wheel (`pip install .`, not the editable install of `make etl`) carries the SQL.

The SQL lives in queries/ at the top of the repository, outside the Python package; the
wheel ships it as pipeline/_queries. Without it an installed `mcp-analytics` failed at
its first query with a traceback (FileNotFoundError on .../site-packages/queries).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: setuptools keeps a build/ folder in the tree it builds, and a
    # stale one would put files in the wheel that the configuration no longer ships.
    tree = tmp_path_factory.mktemp("tree") / "mcp-analytics"
    skip = shutil.ignore_patterns(".*", "build", "data", "*.egg-info", "__pycache__")
    shutil.copytree(REPO, tree, ignore=skip)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(tree)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel_file,) = out.glob("mcp_analytics-*.whl")
    return wheel_file


@pytest.mark.slow
def test_the_wheel_carries_every_query(wheel: Path) -> None:
    shipped = {
        name.removeprefix("pipeline/_queries/")
        for name in zipfile.ZipFile(wheel).namelist()
        if name.startswith("pipeline/_queries/")
    }
    in_repo = {p.relative_to(REPO / "queries").as_posix() for p in REPO.glob("queries/**/*.sql")}
    assert len(in_repo) > 50
    assert shipped == in_repo


@pytest.mark.slow
def test_the_installed_command_runs_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    """The wheel's files, first on the path, run every command that reads a query file."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = "import pipeline.queries as q; print(q.QUERIES_DIR)"
    where = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert where.stdout.strip() == str((site / "pipeline" / "_queries").resolve()), where.stderr

    db = str(tmp_path / "events.db")
    for args, ok in (
        (["demo", "--out", db, "--calls", "40"], {0}),
        (["etl", db, "--quiet"], {0}),
        (["validate", "--db", db], {0}),
        (["query", "tool_success_rate", "--db", db], {0}),
        (["report", "--db", db, "--out", str(tmp_path / "report.html")], {0}),
        (["alerts", "--db", db], {0, 3}),  # 3: a rule fired, as it may on a demo log
    ):
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert done.returncode in ok, (args, done.stderr)
