"""The DuckDB connection a run reads with is made ahead of time, on a thread of its own.

Loading the pinned extension checks its signature (0.17-0.35 s of CPU); `etl` starts that
on a thread before its heavy imports, and `--watch` during each wait (pipeline/engine.py).
"""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline import engine
from pipeline.cli import main
from pipeline.config import EtlConfig
from pipeline.errors import SourceUnreadable
from pipeline.watch import watch
from tests.helpers import make_demo, run_python


@pytest.fixture
def made_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The thread each source connection is made on, in order (a full run's derive
    reader imported `duckdb_connect` itself and is not counted)."""
    monkeypatch.setattr(engine, "_prepared", None)  # none left over from another test
    names: list[str] = []
    real = engine.duckdb_connect

    def recorded() -> duckdb.DuckDBPyConnection:
        names.append(threading.current_thread().name)
        return real()

    monkeypatch.setattr(engine, "duckdb_connect", recorded)
    yield names


def _sqlite_loaded(conn: duckdb.DuckDBPyConnection) -> bool:
    row = conn.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'sqlite_scanner'"
    ).fetchone()
    return row is not None and bool(row[0])


def test_a_prepared_connection_is_made_on_its_thread_and_taken_once(made_on: list[str]) -> None:
    engine.prepare()
    engine.prepare()  # one is already on its way: no second
    first = engine.prepared_connection()
    assert made_on == ["duckdb-prepare"]
    assert _sqlite_loaded(first)
    second = engine.prepared_connection()  # nothing prepared any more: made here
    assert made_on == ["duckdb-prepare", threading.current_thread().name]
    assert second is not first and _sqlite_loaded(second)


def test_the_extension_is_loaded_only_with_a_valid_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`load_extension` (which frees the GIL while it loads) still checks the signature:
    a copy of the pinned file with one byte changed is refused."""
    tampered = tmp_path / "sqlite_scanner.duckdb_extension"
    data = bytearray(engine.extension_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    monkeypatch.setattr(engine, "extension_path", lambda: tampered)
    with pytest.raises(duckdb.IOException, match="signature is either missing or invalid"):
        engine.duckdb_connect()


def test_a_failure_while_preparing_reaches_whoever_takes_the_connection(
    made_on: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> Path:
        raise SourceUnreadable("the DuckDB sqlite extension is not installed")

    monkeypatch.setattr(engine, "extension_path", missing)
    engine.prepare()
    with pytest.raises(SourceUnreadable, match="not installed"):
        engine.prepared_connection()


def test_etl_reads_its_source_with_the_prepared_connection(
    tmp_path: Path, made_on: list[str]
) -> None:
    source, _ = make_demo(tmp_path, calls=200, seed=4)
    target = tmp_path / "target.db"
    ran = CliRunner().invoke(main, ["etl", str(source), "--target", str(target), "--quiet"])
    assert ran.exit_code == 0, ran.output
    assert made_on == ["duckdb-prepare"]


def test_each_watch_cycle_reads_with_a_connection_prepared_during_the_wait(
    tmp_path: Path, made_on: list[str]
) -> None:
    source, _ = make_demo(tmp_path, calls=200, seed=5)
    target = tmp_path / "target.db"
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if len(lines) == 3:
            signal.raise_signal(signal.SIGTERM)  # stop after the third cycle

    done = watch(EtlConfig(source=source, target=target, quiet=True), 0.05, echo=echo)
    assert done.cycles == 3 and done.failed == 0
    # Cycle 1: made on this thread (the command line would have prepared it). Cycles 2
    # and 3: each prepared during the wait before it; none after the last.
    here = threading.current_thread().name
    assert made_on == [here, "duckdb-prepare", "duckdb-prepare"]


def test_a_process_that_exits_while_a_connection_is_prepared_exits_cleanly() -> None:
    """A bad invocation or a signal may end the process while the extension loads."""
    for pause in ("0", "0.01", "0.03", "0.06"):
        script = f"from pipeline import engine; engine.prepare(); import time; time.sleep({pause})"
        done = run_python(script)
        assert (done.returncode, done.stderr) == (0, ""), pause


def test_a_quiet_run_does_not_import_rich(tmp_path: Path) -> None:
    """rich (0.1 s of imports) is for the summary and the progress bars; `--quiet` shows
    neither. The run that prints its summary is the probe's own check."""
    source, _ = make_demo(tmp_path, calls=40, seed=3)
    probe = (
        "import sys; from pipeline.cli import main; "
        "main(sys.argv[1:], standalone_mode=False); "
        "print('rich loaded:', any(m == 'rich' or m.startswith('rich.') for m in sys.modules))"
    )
    seen: dict[tuple[str, ...], str] = {}
    for flags in (["--quiet"], []):
        done = run_python(probe, "etl", str(source), *flags)
        assert done.returncode == 0, done.stderr
        seen[tuple(flags)] = done.stdout.strip().splitlines()[-1]
    assert seen == {("--quiet",): "rich loaded: False", (): "rich loaded: True"}


def test_a_run_stages_its_rows_without_importing_pyarrow_dataset(tmp_path: Path) -> None:
    """DuckDB imports pyarrow.dataset (0.1 s holding the GIL) when handed a Polars or
    pyarrow object; the staging writer hands it an Arrow C stream instead."""
    source, _ = make_demo(tmp_path, calls=40, seed=3)
    probe = (
        "import sys; from pipeline.cli import main; "
        "main(sys.argv[1:], standalone_mode=False); "
        "print('pyarrow.dataset loaded:', 'pyarrow.dataset' in sys.modules)"
    )
    done = run_python(probe, "etl", str(source), "--target", str(tmp_path / "out.db"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "pyarrow.dataset loaded: False"
    conn = sqlite3.connect(tmp_path / "out.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM tool_executions").fetchone()[0] == 40
    finally:
        conn.close()


def test_spill_files_of_a_connection_left_open_go_with_the_process() -> None:
    """The executable ends with os._exit, which runs no DuckDB destructor: the spill
    folder is the process's own and an atexit handler removes it."""
    probe = (
        "import os, sys\n"
        "from pipeline import cli, engine\n"
        "conn = engine.duckdb_connect()\n"
        "conn.execute(\"SET memory_limit = '20MB'\")\n"
        'conn.execute("CREATE TEMP TABLE t AS SELECT (random() * 1e9)::BIGINT AS a, "\n'
        "             \"repeat('x', 50) || i::VARCHAR AS b FROM range(1500000) r(i)\")\n"
        "conn.execute('SELECT b FROM t ORDER BY a').fetchone()\n"
        "folder = engine.spill_directory()\n"
        "print(folder, len(os.listdir(folder)), flush=True)\n"
        "sys.argv = ['mcp-analytics', '--version']\n"
        "cli.console_main()\n"
    )
    done = run_python(probe)
    assert done.returncode == 0, done.stderr
    folder, files = done.stdout.splitlines()[0].split()
    assert int(files) > 0  # DuckDB did spill there, with the connection still open
    assert not Path(folder).exists()


def test_a_killed_process_that_never_spilled_leaves_no_spill_folder() -> None:
    """DuckDB makes the folder only when it spills; SIGKILL runs no atexit handler."""
    probe = (
        "import os, signal\n"
        "from pipeline import engine\n"
        "conn = engine.duckdb_connect()\n"
        "conn.execute('SELECT 42').fetchall()\n"
        "print(engine.spill_directory(), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = run_python(probe)
    assert done.returncode == -signal.SIGKILL
    assert not Path(done.stdout.strip()).exists()
