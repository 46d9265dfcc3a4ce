"""DuckDB connections with the pinned sqlite extension, one of them made ahead of time.

The extension is loaded from the pinned wheel by path with autoinstall and autoload
off, so a run never downloads anything (STYLE.md, pitfalls). Loading it checks its
signature: a SHA-256 over the 34 MB file and an RSA verification, 0.17-0.35 s of CPU
on this machine, in every connection. `load_extension` holds no GIL meanwhile (a `LOAD`
statement through `execute` holds it for most of the check), so the command line
starts the connection a run will read its source with on a thread (`prepare`) before
it imports Polars and pyarrow, about 0.4 s on the main thread: the check then costs
the run no wall time, and it still runs.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

import duckdb
import duckdb_extension_sqlite_scanner

from pipeline.errors import SourceUnreadable

__all__ = [
    "duckdb_connect",
    "extension_path",
    "prepare",
    "prepared_connection",
    "spill_directory",
]

_lock = threading.Lock()
_prepared: Future[duckdb.DuckDBPyConnection] | None = None
_spill: str | None = None
_spill_lock = threading.Lock()


def extension_path() -> Path:
    """The sqlite_scanner extension file shipped inside the pinned wheel."""
    root = Path(duckdb_extension_sqlite_scanner.__path__[0]) / "extensions"
    found = sorted(root.glob(f"v{duckdb.__version__}/sqlite_scanner.duckdb_extension"))
    if not found:
        msg = (
            f"the DuckDB sqlite extension for duckdb {duckdb.__version__} is not installed "
            f"under {root}; reinstall with `make install`"
        )
        raise SourceUnreadable(msg)
    return found[0]


def duckdb_connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the sqlite extension loaded from the environment (never
    downloaded), one thread and capped memory."""
    conn = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            # Each sqlite_query is one stream; a run reads on threads of its own.
            "threads": 1,
            "memory_limit": "300MB",
            # Sorts beyond the limit spill here, not into the working directory.
            "temp_directory": spill_directory(),
        }
    )
    # By path: DuckDB loads this file and checks its signature; nothing is downloaded.
    conn.load_extension(str(extension_path()))
    return conn


def spill_directory() -> str:
    """The folder this process's DuckDB connections spill into, removed at exit.

    DuckDB deletes its spill files when a connection is destroyed, but the executable
    ends with `os._exit` (cli.console_main), which destroys nothing: a connection left
    open would leave hundreds of MB in the temporary folder. Every command closes its
    connections; this folder is the guarantee. DuckDB makes it only when it first
    spills (a killed run that never spilled leaves nothing), and an atexit handler,
    which the executable runs before it exits, removes it. The name is random, so no
    one can make it ahead of the process.
    """
    global _spill
    with _spill_lock:
        if _spill is None:
            name = f"mcp-analytics-spill-{os.getpid()}-{secrets.token_hex(8)}"
            _spill = os.path.join(tempfile.gettempdir(), name)
            atexit.register(shutil.rmtree, _spill, ignore_errors=True)
        return _spill


def _connect_into(future: Future[duckdb.DuckDBPyConnection]) -> None:
    try:
        future.set_result(duckdb_connect())
    except BaseException as exc:  # handed to whoever takes the connection
        future.set_exception(exc)


def prepare() -> None:
    """Start making the next `prepared_connection()` on a thread, unless one is waiting.

    Not a daemon thread: a process that exits meanwhile (a bad invocation, a signal
    between watch cycles) waits for it. A daemon thread would be stopped inside DuckDB
    as the interpreter shuts down, and the process would abort instead of exiting.
    """
    # One connection waits per process at most; it is the module's on purpose.
    global _prepared
    with _lock:
        if _prepared is not None:
            return
        future: Future[duckdb.DuckDBPyConnection] = Future()
        threading.Thread(
            target=_connect_into, args=(future,), name="duckdb-prepare", daemon=False
        ).start()
        # Only a started one is handed out: a signal's exception (watch mode) between
        # the two lines must not leave a future that nothing will ever complete.
        _prepared = future


def prepared_connection() -> duckdb.DuckDBPyConnection:
    """The connection `prepare()` started (waiting for it), or a new one made now."""
    global _prepared
    with _lock:
        future, _prepared = _prepared, None
    return duckdb_connect() if future is None else future.result()
