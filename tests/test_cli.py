"""CLI tests: help text everywhere, exact one-line errors with exit code 2, a real round trip."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from pipeline.cli import exit_status, main
from pipeline.demo import generate_demo
from tests.helpers import run_python

PRODUCER_SCHEMA = Path(__file__).resolve().parents[1] / "queries" / "producer_schema.sql"


def _walk(
    cmd: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _walk(sub, (*path, name))


def _snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under folder with its size, mtime and bytes: proof that nothing changed."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args)


def _assert_bad_invocation(result: Result, message: str) -> None:
    """Exit 2, exactly `error: <message>` on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def _assert_usage_error(result: Result, *fragments: str) -> None:
    """click's own usage error: exit 2, its message on stderr, no traceback.

    Only fragments are compared: click's wording changes between versions.
    """
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stdout == ""
    assert "Error: " in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def _producer_db(path: Path, schema: str | None = None) -> Path:
    con = sqlite3.connect(path)
    con.executescript(schema if schema is not None else PRODUCER_SCHEMA.read_text())
    con.close()
    return path


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "events.db"
    generate_demo(db, calls=200, seed=3)
    result = _invoke(["etl", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    return db


# Help ---------------------------------------------------------------------------------


def test_every_command_has_help_text() -> None:
    commands = list(_walk(main))
    assert {p for p, _ in commands} >= {(), ("etl",), ("errors",), ("errors", "resolve"), ("demo",)}
    for path, cmd in commands:
        assert (cmd.help or "").strip(), f"command {' '.join(path) or 'main'} has no help text"
        assert cmd.get_short_help_str().strip()
        result = _invoke([*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.stdout
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert (param.help or "").strip(), f"{' '.join(path)} {param.opts} has no help"


def test_python_dash_m_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout
    for name in ("etl", "errors", "demo"):
        assert name in proc.stdout
    assert proc.stderr == ""


# The executable skips the interpreter's teardown (0.13-0.28 s after a +1% run at 1M).
_EXIT_PROBE = """
import atexit, os, sys, threading, time
class Torn:
    def __del__(self):
        os.write(2, b"teardown\\n")
keep = Torn()
atexit.register(lambda: os.write(2, b"atexit\\n"))
if os.environ.get("PROBE_THREAD"):
    def late():
        time.sleep(0.3)
        with open(os.environ["PROBE_THREAD"], "w") as fh:
            fh.write("done")
    threading.Thread(target=late).start()
from pipeline.cli import console_main
sys.argv = ["mcp-analytics", *sys.argv[1:]]
console_main()
"""


def _exit_probe(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(_EXIT_PROBE, *args, env={**os.environ, **env}, timeout=60)


def test_the_executable_runs_atexit_handlers_but_skips_the_teardown() -> None:
    proc = _exit_probe(["--version"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("mcp-analytics, version")
    # The libraries' atexit handlers (and ours) still run; object destructors do not.
    assert proc.stderr == "atexit\n"


def test_the_executable_keeps_the_exit_status_and_the_one_line_error(tmp_path: Path) -> None:
    proc = _exit_probe(["etl", str(tmp_path / "missing.db")])
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("error: source database") and lines[1:] == ["atexit"]
    assert list(tmp_path.iterdir()) == []


def test_the_executable_waits_for_a_thread_still_running(tmp_path: Path) -> None:
    """A live non-daemon thread gets the interpreter's normal exit, which joins it."""
    marker = tmp_path / "thread-finished"
    proc = _exit_probe(["--version"], PROBE_THREAD=str(marker))
    assert proc.returncode == 0, proc.stderr
    assert marker.read_text() == "done"
    assert "teardown" in proc.stderr


def test_the_executable_on_a_closed_pipe_exits_without_a_traceback() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _EXIT_PROBE, "--help"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    # click reports the broken pipe as status 1; nothing else is printed.
    assert proc.returncode == 1
    assert proc.stderr == "atexit\n"


def test_the_executable_runs_without_numpy_even_where_it_is_installed(tmp_path: Path) -> None:
    """A runtime install has no numpy (a test dependency); pyarrow would import it."""
    assert importlib.util.find_spec("numpy") is not None  # the dev environment has it
    source = tmp_path / "src.db"
    generate_demo(source, calls=40, seed=5)
    probe = (
        "import atexit, os, sys\n"
        "seen = lambda: os.write(1, f'numpy loaded: {\"numpy\" in sys.modules}'.encode())\n"
        "atexit.register(seen)\n"
        "from pipeline.cli import console_main\n"
        "sys.argv = ['mcp-analytics', *sys.argv[1:]]\n"
        "console_main()\n"
    )
    target = tmp_path / "out.db"
    proc = run_python(probe, "etl", str(source), "--target", str(target), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "numpy loaded: False"
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("SELECT COUNT(*) FROM tool_executions").fetchone()[0] == 40
    finally:
        conn.close()


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (2, 2), (True, 1)])
def test_exit_status_of_sys_exit_values(code: object, status: int) -> None:
    assert exit_status(code) == status


def test_exit_status_prints_a_text_and_is_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status("stopped: the target is locked") == 1
    assert capsys.readouterr().err == "stopped: the target is locked\n"


def test_the_command_line_keeps_the_libraries_pools_to_one_thread() -> None:
    """Polars' pool and OpenBLAS's spinning threads would compete with the run's own."""
    probe = (
        "import os\n"
        "import pipeline.cli\n"
        "import numpy\n"
        "print(len(os.listdir('/proc/self/task')))\n"
        "import polars\n"
        "print(polars.thread_pool_size())\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"POLARS_MAX_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}
    }
    proc = run_python(probe, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # numpy's OpenBLAS starts no thread of its own; Polars' pool has one thread.
    assert proc.stdout.split() == ["1", "1"]


def test_the_command_line_sets_polars_allocator_before_polars_loads() -> None:
    """jemalloc reads its settings once, when Polars' library first allocates."""
    probe = (
        "import os, sys\n"
        "import pipeline.cli\n"
        "print('polars' in sys.modules, os.environ['_RJEM_MALLOC_CONF'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    proc = run_python(probe, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "dirty_decay_ms:30000,muzzy_decay_ms:30000"]
    # A setting of the user's own is kept.
    proc = run_python(probe, env={**env, "_RJEM_MALLOC_CONF": "dirty_decay_ms:0"}, timeout=60)
    assert proc.stdout.split() == ["False", "dirty_decay_ms:0"]


# Bad invocations (SPEC §4) ---------------------------------------------------------------


def test_missing_source_creates_nothing(tmp_path: Path) -> None:
    src = tmp_path / "missing.db"
    result = _invoke(["etl", str(src)])
    _assert_bad_invocation(
        result,
        f"source database {src} does not exist; give the path of the proxy's events.db",
    )
    assert not src.exists()
    assert list(tmp_path.iterdir()) == []


def test_missing_source_with_target_creates_nothing(tmp_path: Path) -> None:
    src, target = tmp_path / "missing.db", tmp_path / "out.db"
    result = _invoke(["etl", str(src), "--target", str(target)])
    _assert_bad_invocation(
        result,
        f"source database {src} does not exist; give the path of the proxy's events.db",
    )
    assert list(tmp_path.iterdir()) == []


def test_directory_as_source(tmp_path: Path) -> None:
    folder = tmp_path / "events.db"
    folder.mkdir()
    before = _snapshot(tmp_path)
    result = _invoke(["etl", str(folder)])
    # click's Path(dir_okay=False) answers before our own check does.
    _assert_usage_error(result, "is a directory")
    assert _snapshot(tmp_path) == before
    assert list(folder.iterdir()) == []


def test_text_file_as_source(tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("not a database\n")
    before = _snapshot(tmp_path)
    result = _invoke(["etl", str(src)])
    _assert_bad_invocation(
        result, f"source {src} is not a SQLite database; give the proxy's events.db"
    )
    assert _snapshot(tmp_path) == before


def test_empty_file_as_source(tmp_path: Path) -> None:
    src = tmp_path / "empty.db"
    src.write_bytes(b"")
    before = _snapshot(tmp_path)
    result = _invoke(["etl", str(src)])
    _assert_bad_invocation(
        result, f"source {src} is not a SQLite database; give the proxy's events.db"
    )
    assert _snapshot(tmp_path) == before


def test_source_without_events_table(tmp_path: Path) -> None:
    src = _producer_db(tmp_path / "old.db")
    con = sqlite3.connect(src)
    con.execute("DROP TABLE events")
    con.close()
    before = _snapshot(tmp_path)
    result = _invoke(["etl", str(src)])
    _assert_bad_invocation(
        result, f"source {src} is not a Kaimon database: table 'events' is missing"
    )
    assert _snapshot(tmp_path) == before


def test_source_interactions_without_content(tmp_path: Path) -> None:
    src = _producer_db(tmp_path / "bad.db")
    con = sqlite3.connect(src)
    con.execute("ALTER TABLE interactions DROP COLUMN content")
    con.close()
    before = _snapshot(tmp_path)
    result = _invoke(["etl", str(src)])
    _assert_bad_invocation(
        result,
        f"source {src} is not a Kaimon database: table 'interactions' lacks column 'content'",
    )
    assert _snapshot(tmp_path) == before


def test_locked_source(tmp_path: Path) -> None:
    src = _producer_db(tmp_path / "events.db")
    holder = sqlite3.connect(src, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        before = _snapshot(tmp_path)
        result = _invoke(["etl", str(src), "--busy-timeout", "50"])
        _assert_bad_invocation(
            result,
            f"source {src} stayed locked for 50 ms; "
            "retry when the writer is done or raise --busy-timeout",
        )
        assert _snapshot(tmp_path) == before
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_target_in_missing_folder(tmp_path: Path) -> None:
    src = _producer_db(tmp_path / "events.db")
    target = tmp_path / "nowhere" / "analytics.db"
    before = _snapshot(tmp_path)
    result = _invoke(["etl", str(src), "--target", str(target)])
    _assert_bad_invocation(result, f"the folder of target {target} does not exist; create it first")
    assert _snapshot(tmp_path) == before
    assert not target.parent.exists()


def test_resolve_unknown_error_id(demo_db: Path) -> None:
    before = _snapshot(demo_db.parent)
    result = _invoke(["errors", "resolve", "999999", "--notes", "x", "--db", str(demo_db)])
    _assert_bad_invocation(
        result,
        f"no error with id 999999 in {demo_db}; the ids are in the id column of the errors table",
    )
    assert _snapshot(demo_db.parent) == before


def test_resolve_missing_db(tmp_path: Path) -> None:
    db = tmp_path / "missing.db"
    result = _invoke(["errors", "resolve", "1", "--notes", "x", "--db", str(db)])
    _assert_bad_invocation(result, f"database {db} does not exist; give the database the ETL wrote")
    assert list(tmp_path.iterdir()) == []


def test_resolve_db_without_errors_table(tmp_path: Path) -> None:
    db = _producer_db(tmp_path / "events.db")
    before = _snapshot(tmp_path)
    result = _invoke(["errors", "resolve", "1", "--notes", "x", "--db", str(db)])
    _assert_bad_invocation(result, f"{db} has no errors table; run `mcp-analytics etl` on it first")
    assert _snapshot(tmp_path) == before


def test_demo_refuses_existing_out(tmp_path: Path) -> None:
    out = tmp_path / "demo.db"
    out.write_text("keep me")
    before = _snapshot(tmp_path)
    result = _invoke(["demo", "--out", str(out), "--calls", "5"])
    _assert_bad_invocation(result, f"{out} already exists; remove it or choose another --out")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "args",
    [
        ["etl", "--bogus", "x.db"],
        ["--bogus"],
        ["errors", "resolve", "1", "--notes", "x", "--db", "x.db", "--bogus"],
        ["demo", "--out", "x.db", "--bogus"],
    ],
)
def test_unknown_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    _assert_usage_error(_invoke(args), "No such option", "--bogus")
    assert list(tmp_path.iterdir()) == []


def test_unknown_command() -> None:
    _assert_usage_error(_invoke(["frobnicate"]), "No such command", "frobnicate")


def test_bad_busy_timeout_value(tmp_path: Path) -> None:
    src = _producer_db(tmp_path / "events.db")
    before = _snapshot(tmp_path)
    _assert_usage_error(_invoke(["etl", str(src), "--busy-timeout", "-1"]), "--busy-timeout")
    assert _snapshot(tmp_path) == before


# A successful round trip -----------------------------------------------------------------


def test_etl_resolve_and_full_rebuild_keeps_resolution(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    generate_demo(db, calls=200, seed=3)
    result = _invoke(["etl", str(db)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output

    con = sqlite3.connect(db)
    try:
        row = con.execute(
            "SELECT id, error_key, resolved FROM errors ORDER BY id LIMIT 1 OFFSET 3"
        ).fetchone()
    finally:
        con.close()
    assert row is not None, "the demo database should yield errors"
    error_id, error_key, resolved = row
    assert not resolved

    notes = "restarted the REPL; it's fine now"
    result = _invoke(["errors", "resolve", str(error_id), "--notes", notes, "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"error {error_id} ({error_key}) marked resolved\n"

    result = _invoke(["etl", str(db), "--full", "--quiet"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout == ""

    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT resolved, resolution_notes FROM errors WHERE error_key = ?", (error_key,)
        ).fetchall()
        others = con.execute(
            "SELECT COUNT(*) FROM errors WHERE resolved = 1 AND error_key <> ?", (error_key,)
        ).fetchone()
    finally:
        con.close()
    assert rows == [(1, notes)]
    assert others == (0,)


def test_etl_writes_its_stage_profile(tmp_path: Path) -> None:
    source = tmp_path / "events.db"
    generate_demo(source, calls=150, seed=3, truth=None, consistent_sessions=False)
    profile = tmp_path / "profile.json"
    result = CliRunner().invoke(
        main, ["etl", str(source), "--quiet"], env={"MCP_ANALYTICS_PROFILE": str(profile)}
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(profile.read_text())
    assert doc["mode"] == "full" and doc["seconds"] > 0
    for stage in ("scan", "decode", "transform", "stage", "apply", "derive", "write_lock"):
        assert doc["stages"][stage] >= 0
