"""The command line: parse options, make one library call, echo a summary.

Only the project's own errors become exit codes (SPEC §4); anything else is a bug and
keeps its traceback (shown with --debug).
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import click

from pipeline.config import EtlConfig
from pipeline.errors import BadInvocation, PipelineError, SourceMissing

# A run already keeps both cores busy with its own threads (pipeline/run.py: two
# readers, the transform, the staging writer); Polars' own pool on top of them only
# made the threads fight for the cores (1M full run: 37 s of CPU with it, 30 s
# without). Read by Polars when first imported, which the commands do lazily.
os.environ.setdefault("POLARS_MAX_THREADS", "1")
# pyarrow imports numpy where it can (the executable hides it: WithoutNumpy), and
# numpy's OpenBLAS starts a thread for each further core that spins, waiting for work
# the ETL never gives it: 0.12 s of CPU per run (an incremental run at 1M: 1.07 s of
# user CPU to 0.95 s). Nothing here multiplies matrices.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Polars' allocator (jemalloc) gives freed pages back to the OS after 10 s by default,
# and each batch then faults fresh ones in again. Kept 30 s, a 1M full run took 0.1-2.2 s
# less in eight alternating pairs (median 0.6-0.9 s, about 5%) for 50-110 MB more peak
# RSS; at 5M the peak was 1,155-1,229 MB. Never giving them back was faster still but
# reached 1,542 MB at 5M, over the 1.5 GB target (docs/performance.md).
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:30000,muzzy_decay_ms:30000")

F = TypeVar("F", bound=Callable[..., Any])


def exits_cleanly(func: F) -> F:
    """Turn the project's errors into one line on stderr and their exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PipelineError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mcp-analytics")
def main() -> None:
    """mcp-analytics: typed analytics from the Kaimon / MCPRepl.jl proxy log."""


@main.command()
@click.argument("source_db", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--target",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Database for the analytics tables (default: the source database itself).",
)
@click.option("--full", is_flag=True, help="Rebuild every analytics table from the first row.")
@click.option(
    "--pending-timeout",
    "pending_timeout_s",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Seconds after which an unanswered call counts as a timeout.",
)
@click.option(
    "--idle-timeout",
    "idle_timeout_s",
    type=click.IntRange(min=1),
    default=1800,
    show_default=True,
    help="Seconds without activity after which a client session counts as disconnected.",
)
@click.option(
    "--batch-rows",
    type=click.IntRange(min=100),
    default=50_000,
    show_default=True,
    help="Interactions read per batch (bounds memory, never the results).",
)
@click.option(
    "--busy-timeout",
    "busy_timeout_ms",
    type=click.IntRange(min=0),
    default=5000,
    show_default=True,
    help="Milliseconds to wait for a locked source or target before giving up.",
)
@click.option(
    "--parquet",
    type=click.Path(path_type=Path),
    help="Also export the tables as hive-partitioned Parquet into this folder (docs/bi.md).",
)
@click.option(
    "--no-redact",
    is_flag=True,
    help="Write arguments, results and error texts as logged, secrets included.",
)
@click.option(
    "--watch",
    "watch_mode",
    is_flag=True,
    help="Keep running: an incremental run every --interval seconds until SIGINT/SIGTERM.",
)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.1),
    help="Seconds between the runs of --watch.  [default: 60]",
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="MCP_ANALYTICS_PROFILE",
    help="Also write the run's seconds per stage to this JSON file (make bench uses it).",
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@exits_cleanly
def etl(
    source_db: Path,
    target: Path | None,
    full: bool,
    pending_timeout_s: int,
    idle_timeout_s: int,
    batch_rows: int,
    busy_timeout_ms: int,
    parquet: Path | None,
    no_redact: bool,
    watch_mode: bool,
    interval_s: float | None,
    profile_path: Path | None,
    quiet: bool,
) -> None:
    """Build the analytics tables from SOURCE_DB, incrementally from the last run."""
    from pipeline import engine

    # The run's DuckDB connection checks its extension's signature on a thread while
    # the imports below hold the main thread (pipeline/engine.py).
    engine.prepare()
    from pipeline.run import run

    if target is not None and target.exists() and target.is_dir():
        msg = f"target {target} is a directory; give a database file path"
        raise BadInvocation(msg)
    if target is not None and not target.parent.exists():
        msg = f"the folder of target {target} does not exist; create it first"
        raise BadInvocation(msg)
    if parquet is not None:
        # pyarrow's Parquet modules take a fifth of a second to import: only when asked.
        from pipeline.parquet import check_export_dir

        # Checked before the run: a bad invocation changes nothing, not even the target.
        check_export_dir(parquet)
    config = EtlConfig(
        source=source_db,
        target=target if target is not None else source_db,
        full=full,
        pending_timeout_ms=pending_timeout_s * 1000,
        idle_timeout_ms=idle_timeout_s * 1000,
        batch_rows=batch_rows,
        busy_timeout_ms=busy_timeout_ms,
        redact=not no_redact,
        quiet=quiet,
    )
    if interval_s is not None and not watch_mode:
        msg = "--interval needs --watch"
        raise BadInvocation(msg)
    if watch_mode:
        from pipeline.watch import watch

        watched = watch(
            config,
            60.0 if interval_s is None else interval_s,
            parquet,
            echo=(lambda line: None) if quiet else click.echo,
            log=lambda line: click.echo(line, err=True),
        )
        if not quiet:
            last = ", the last one abandoned and rolled back" if watched.abandoned else ""
            click.echo(
                f"etl --watch: stopped after {watched.cycles} cycles "
                f"({watched.failed} failed{last})"
            )
        return
    summary = run(config)
    if profile_path is not None:
        stages = {
            "seconds": summary.seconds,
            "stages": summary.timings,
            "mode": summary.mode,
            "write_journal": summary.write_journal,
        }
        profile_path.write_text(json.dumps(stages, indent=1) + "\n", encoding="utf-8")
    if not quiet:
        from pipeline.summary import print_summary  # rich: 0.1 s of imports, when printing

        print_summary(config, summary)
    if parquet is not None:
        from pipeline.parquet import export_parquet

        exported = export_parquet(config.target, parquet)
        if not quiet:
            click.echo(
                f"parquet: {exported.mode} export to {parquet}: "
                f"{exported.partitions_written} files written, "
                f"{exported.partitions_deleted} partitions removed, "
                f"{exported.rows_written} rows in {exported.seconds:.2f} s"
            )


@main.command()
@click.argument("name", required=False)
@click.option("--list", "list_all", is_flag=True, help="List the queries: name, then title.")
@click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Run on the SQLite database the ETL wrote.",
)
@click.option(
    "--parquet",
    type=click.Path(path_type=Path),
    help="Run on the Parquet folder `etl --parquet` wrote.",
)
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A query parameter.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@exits_cleanly
def query(
    name: str | None,
    list_all: bool,
    db: Path | None,
    parquet: Path | None,
    params: tuple[str, ...],
    fmt: str,
) -> None:
    """Run the library query NAME (queries/library/NAME.sql) on either backend."""
    from pipeline import querylib

    if list_all:
        if name is not None:
            msg = "give a query NAME or --list, not both"
            raise BadInvocation(msg)
        for q in querylib.list_queries():
            click.echo(f"{q.name}  {q.title}")
        return
    if name is None:
        msg = "give a query NAME (`mcp-analytics query --list` lists them)"
        raise BadInvocation(msg)
    library_query = querylib.load_query(name)
    given = querylib.parse_params(params)
    querylib.bind_params(library_query, given)
    conn = querylib.open_backend(db, parquet)
    try:
        result = querylib.run_query(conn, library_query, given)
    finally:
        conn.close()
    click.echo(querylib.format_result(result, fmt, library_query.title), nl=False)


@main.group()
def errors() -> None:
    """Work with the errors table."""


@errors.command("resolve")
@click.argument("error_id", type=int)
@click.option("--notes", required=True, help="What was done about it.")
@click.option(
    "--db",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The database holding the analytics tables.",
)
@exits_cleanly
def errors_resolve(error_id: int, notes: str, db: Path) -> None:
    """Mark error ERROR_ID resolved; the resolution survives every later run."""
    from pipeline.resolutions import resolve_error

    if not db.exists():
        msg = f"database {db} does not exist; give the database the ETL wrote"
        raise SourceMissing(msg)
    key = resolve_error(db, error_id, notes)
    click.echo(f"error {error_id} ({key}) marked resolved")


@main.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The SQLite file to create (must not exist).",
)
@click.option(
    "--calls",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Number of tools/call requests to generate.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--truth",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the ground truth of every call as JSON.",
)
@click.option(
    "--consistent-sessions",
    is_flag=True,
    help="Log request rows under the client's real session id (no producer quirk).",
)
@exits_cleanly
def demo(out: Path, calls: int, seed: int, truth: Path | None, consistent_sessions: bool) -> None:
    """Write a realistic demo producer database (deterministic per seed)."""
    from pipeline.demo import generate_demo

    if out.exists():
        msg = f"{out} already exists; remove it or choose another --out"
        raise BadInvocation(msg)
    if not out.parent.exists():
        msg = f"the folder of {out} does not exist; create it first"
        raise BadInvocation(msg)
    try:
        stats = generate_demo(
            out, calls=calls, seed=seed, truth=truth, consistent_sessions=consistent_sessions
        )
    except sqlite3.Error as exc:
        msg = f"cannot write {out}: {exc}"
        raise PipelineError(msg) from exc
    click.echo(
        f"wrote {out}: {stats.calls} calls, {stats.interactions} interactions, "
        f"{stats.events} events (newest {stats.newest_timestamp})"
    )


@main.command()
@click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the SQLite database the ETL wrote.",
)
@click.option(
    "--parquet",
    type=click.Path(path_type=Path),
    help="Read the Parquet folder `etl --parquet` wrote.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="The HTML file to write (replaced if it exists).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=7,
    show_default=True,
    help="Days of data the trend charts cover, back from the newest row.",
)
@click.option(
    "--sessions",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Client sessions and REPLs on the session timeline (the most recent).",
)
@exits_cleanly
def report(db: Path | None, parquet: Path | None, out: Path, days: int, sessions: int) -> None:
    """Write the dashboard: one self-contained HTML file, five tabs of charts, offline."""
    from pipeline.report import ReportOptions, write_report

    written = write_report(db, parquet, out, ReportOptions(days=days, sessions=sessions))
    click.echo(
        f"wrote {written.out}: {written.charts} charts in 5 tabs, "
        f"{written.size_bytes / 1e6:.1f} MB, {written.seconds:.1f} s"
    )


@main.command()
@click.option(
    "--db",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The database the ETL wrote; firing alerts are appended to its `alerts` table.",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(path_type=Path),
    help="A TOML file overriding the built-in rules (see alerts.default.toml).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@exits_cleanly
def alerts(db: Path, rules_file: Path | None, fmt: str) -> None:
    """Check the alert rules; print what fires and exit 3 if anything did, else 0."""
    from pipeline.alerts import format_alerts, load_rules, run_alerts

    rules = load_rules(rules_file)
    result = run_alerts(db, rules)
    click.echo(format_alerts(result, fmt), nl=False)
    if result.alerts:
        sys.exit(3)


@main.command()
@click.option(
    "--db",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The database the ETL wrote.",
)
@click.option(
    "--source",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The proxy's log, when its tables are not in --db "
    "(default: --db itself if it holds them, else the source named in etl_metadata).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@exits_cleanly
def validate(db: Path, source: Path | None, fmt: str) -> None:
    """Reconcile the analytics with the raw tables; report data quality; exit 1 on a mismatch."""
    from pipeline.validate import ValidationFailed, format_validation
    from pipeline.validate import validate as run_validation

    result = run_validation(db, source)
    click.echo(format_validation(result, fmt), nl=False)
    if not result.ok:
        raise ValidationFailed(f"validation failed: {result.failure()}")


def console_main() -> None:
    """The `mcp-analytics` executable and `python -m pipeline`: `main`, then a fast exit.

    After a command, the interpreter's teardown (clearing every module Polars, DuckDB and
    pyarrow bring, running the destructors of their objects) took 0.13–0.28 s, up to a
    tenth of an incremental run at 1M (docs/performance.md). Everything a command writes
    is committed and closed by then, so the process ends with `os._exit` once the atexit
    handlers (logging, the libraries' own) have run and stdout and stderr are flushed:
    what a normal exit does, less the teardown. A thread still running keeps the normal
    exit, which waits for it. numpy is hidden (WithoutNumpy). `main` itself stays a plain
    click group for tests.
    """
    if "numpy" not in sys.modules:
        sys.meta_path.insert(0, WithoutNumpy())
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exit_status(exc.code)
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            # A reader that went away (`| head`): Python's own exit status for it.
            code = code or 120
    os._exit(code)


class WithoutNumpy(importlib.abc.MetaPathFinder):
    """Makes numpy look not installed, as in a runtime install (`make etl`).

    pyarrow imports numpy when it finds it (0.1–0.13 s in a slow spell, about a tenth of
    a +1% run's imports), and nothing in a command uses it: numpy is a test dependency
    only, so every command already runs without it where users install the package. The
    executable hides it, so a run costs the same in a virtual environment that has it (a
    dev one, a notebook's). Polars and pyarrow ask for numpy through the import system
    and take its absence as they would on a machine without it.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "numpy" or fullname.startswith("numpy."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def exit_status(code: object) -> int:
    """The process status of `sys.exit(code)`: None is 0, a text is printed and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
