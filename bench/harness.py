"""Measure one size: bare read, SQLite baseline, full ETL, +1% and incremental ETL.

Every step runs in its own child process on the same working copy of the source, in
this order, so they all read a file the page cache already holds (the copy and the
untimed count that precede them have read it whole). Each step runs `repeat` times and
counts its median run: on a shared machine the same run varies by 10-20% within an
hour, and the baseline and the full ETL alternate so that a slow spell slows both.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.baseline import agreement
from bench.code import CodeVersion, work_tree
from bench.datasets import (
    CHUNK_CALLS,
    Totals,
    append_held_back,
    ensure_bench_db,
    hold_back,
    source_totals,
)
from bench.measure import DEFAULT_MAX_RSS_MB, Measurement, StepFailed, measure
from bench.report import (
    BARE,
    BASELINE,
    FULL,
    IN_LOG,
    INCREMENTAL,
    INCREMENTAL_IN_LOG,
    SizeResult,
    Step,
    cpu_clock,
    load_average,
    load_profile,
    steal_percent,
)

__all__ = ["METHOD", "REPO", "median_run", "run_size", "step_from_runs"]

REPO = Path(__file__).resolve().parent.parent
PROFILE_ENV = "MCP_ANALYTICS_PROFILE"

METHOD = """
**Data.** `pipeline.demo.generate_demo` writes one realistic 24-hour proxy log per call
(11 clients of every kind, 3 REPLs that drop and return, cancellations, errors, lost
replies, stateless clients, malformed rows, batches, 0.3% of outputs of 100-300 KB).
A benchmark database is a run of such days (`bench/datasets.py`): day k has 50,000
tool calls (about 100k interactions and 106k events), seed 5000 + k, and starts 24 h
after day k - 1; its interaction and event ids are shifted after the previous day's.
100k = 1 day, 1M = 10 days, 5M = 50 days (the sizes are prefixes of one another). The
databases are cached in `data/bench/` (git-ignored) with a `.json` note of how they
were made; delete them to rebuild.

**Steps**, for each size, on a working copy of the cached database without its newest
1% of interactions (and the events logged after the last kept one), each run
`--repeat` times (`make bench REPEAT=n`, 3 by default): the runs of steps 2, 3 and 4
alternate, and each full run's target (step 3) then gets its own incremental run
(step 5):

1. *bare read*: `SELECT count(*), sum(length(CAST(content AS BLOB)))` over
   interactions and the same over events' data: every JSON byte read once by SQLite.
2. *SQLite baseline*: `bench/baseline.sql` (JSON1, one INSERT … SELECT per table,
   window functions for pairing) builds `tool_executions`, `errors` and a daily
   per-tool summary with p50/p95/p99 into a new database, the source attached
   read-only. It does less than the ETL (no attribution to client sessions, no routes,
   no client sessions, lifecycles, hourly metrics or histograms, no rejects): a
   conservative yardstick.
3. *full ETL*: `python -m pipeline etl SOURCE --target NEW --full --quiet` (the same
   as `mcp-analytics etl`), run from a snapshot of `pipeline/` and `queries/` at the
   commit named under Machine (`bench/code.py`), so the code cannot change mid-run.
4. *full ETL into the log*: `python -m pipeline etl COPY --full --quiet` on a fresh
   copy of the source (made and synced before the timing starts): the README's
   default, where the tables go into the log itself. The log keeps its 4 KiB pages (a
   new target gets 16 KiB) and is put in WAL mode (docs/rules.md, Live sources). Then
   the held-back 1% is appended to that copy (step 5 says how) and
   *incremental ETL into the log*: `python -m pipeline etl COPY --quiet`.
5. The held-back 1% is appended with its own ids and timestamps (new calls, the
   responses and cancellations of calls already read, new events), then
   *incremental ETL*: `python -m pipeline etl SOURCE --target SAME --quiet`.

The page cache holds the source for every step. Peak RSS, wall and CPU time are each
child's own (`os.wait4`). A step's wall and CPU time are those of its median run (the
faster middle one of an even count), its peak RSS the largest of its runs, and the
`runs` column lists every run's wall time in the order they ran.
"""


def median_run(runs: Sequence[Measurement]) -> int:
    """The index of the run of median wall time (the faster middle one of an even count)."""
    order = sorted(range(len(runs)), key=lambda i: runs[i].wall_s)
    return order[(len(runs) - 1) // 2]


def step_from_runs(name: str, rows: int, json_bytes: int, runs: Sequence[Measurement]) -> Step:
    """A step from its runs: the median run's wall and CPU time, the largest peak RSS of
    any run (the memory targets are limits), and every run's wall time in order."""
    m = runs[median_run(runs)]
    return Step(
        name,
        rows,
        json_bytes,
        m.wall_s,
        max(r.peak_rss_mb for r in runs),
        m.cpu_percent,
        tuple(r.wall_s for r in runs),
    )


def run_size(
    label: str,
    data_dir: Path,
    keep_work: bool = False,
    log: Callable[[str], None] = print,
    max_rss_mb: float = DEFAULT_MAX_RSS_MB,
    chunk_calls: int = CHUNK_CALLS,
    code: CodeVersion | None = None,
    repeat: int = 1,
) -> SizeResult:
    """Build (or reuse) the database of `label` and measure every step on it, each
    `repeat` times.

    A step that fails (or passes the memory cap) ends the size: the result keeps the
    steps measured before it and says which one failed in `failure`. The ETL runs from
    `code` (default: the work tree).
    """
    if repeat < 1:
        msg = f"repeat must be at least 1, not {repeat}"
        raise ValueError(msg)
    data_dir = data_dir.resolve()
    etl_code = work_tree(REPO) if code is None else code
    info = ensure_bench_db(data_dir, label, chunk_calls=chunk_calls, log=log)
    work = data_dir / "work" / label
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = work / "source.db"
    try:
        log(f"{label}: copying {info.path.name} without its newest 1%")
        hold_back(info.path, source)
        totals = source_totals(source)
        result = SizeResult(label, totals.interactions, totals.events, totals.json_bytes)
        result.load_before = load_average()
        clock = cpu_clock()
        try:
            _measure_steps(result, info.path, work, etl_code, log, max_rss_mb, repeat)
        except StepFailed as exc:
            result.failure = str(exc).splitlines()[0]
            log(f"{label}: [red]failed[/red]: {exc}")
        result.steal_pct = steal_percent(clock, cpu_clock())
        return result
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def _measure_steps(
    result: SizeResult,
    cached: Path,
    work: Path,
    code: CodeVersion,
    log: Callable[[str], None],
    max_rss_mb: float,
    repeat: int,
) -> None:
    label, source, python = result.label, work / "source.db", sys.executable
    rows, size = result.interactions, result.json_bytes
    runs = range(1, repeat + 1)

    log(f"{label}: bare read")
    bare = [
        measure([python, "-m", "bench.baseline", "bare-read", source], max_rss_mb=max_rss_mb)
        for _ in runs
    ]
    result.steps[BARE] = step_from_runs(BARE, rows, size, bare)

    # The baseline and the two full ETLs alternate. Every full run into a new file
    # leaves its own target, the state an incremental run starts from. The run into the
    # log itself (the README's default) gets a fresh copy of the source each time, then
    # the held-back 1% and an incremental run into the log; copying and appending are
    # not timed.
    baselines: list[Measurement] = []
    fulls: list[Measurement] = []
    in_logs: list[Measurement] = []
    in_log_incrementals: list[Measurement] = []
    profiles: list[dict[str, float]] = []
    in_log_profiles: dict[str, list[dict[str, float]]] = {"full": [], "incremental": []}
    in_log_added: Totals | None = None
    targets = [work / f"etl-{i}.db" for i in runs]
    baseline_db = work / "baseline.db"
    log_copy = work / "log.db"
    for i, target in zip(runs, targets, strict=True):
        log(f"{label}: SQLite baseline ({i} of {repeat})")
        baseline_db.unlink(missing_ok=True)
        baselines.append(
            measure(
                [python, "-m", "bench.baseline", "script", source, baseline_db],
                max_rss_mb=max_rss_mb,
            )
        )
        log(f"{label}: full ETL ({i} of {repeat})")
        m, stages = _etl(python, source, target, ["--full"], code, work, max_rss_mb)
        fulls.append(m)
        profiles.append(stages)
        log(f"{label}: full ETL into the log itself ({i} of {repeat})")
        _fresh_copy(source, log_copy)
        m, stages = _etl(python, log_copy, None, ["--full"], code, work, max_rss_mb)
        in_logs.append(m)
        in_log_profiles["full"].append(stages)
        log(f"{label}: incremental ETL into the log itself ({i} of {repeat})")
        in_log_added = append_held_back(cached, log_copy)
        m, stages = _etl(python, log_copy, None, [], code, work, max_rss_mb)
        in_log_incrementals.append(m)
        in_log_profiles["incremental"].append(stages)
    _remove_db(log_copy)
    result.steps[BASELINE] = step_from_runs(BASELINE, rows, size, baselines)
    result.steps[FULL] = step_from_runs(FULL, rows, size, fulls)
    result.steps[IN_LOG] = step_from_runs(IN_LOG, rows, size, in_logs)
    if in_log_added is not None:
        result.steps[INCREMENTAL_IN_LOG] = step_from_runs(
            INCREMENTAL_IN_LOG,
            in_log_added.interactions,
            in_log_added.json_bytes,
            in_log_incrementals,
        )
    if stages := profiles[median_run(fulls)]:
        result.profile["full"] = stages
    for run_name, measured in (("full", in_logs), ("incremental", in_log_incrementals)):
        if stages := in_log_profiles[run_name][median_run(measured)]:
            result.profile[f"{run_name}, into the log"] = stages
    result.agreement = agreement(targets[0], baseline_db)

    log(f"{label}: appending the held-back 1%")
    added = append_held_back(cached, source)
    result.appended_interactions = added.interactions
    result.appended_events = added.events
    incrementals: list[Measurement] = []
    profiles = []
    for i, target in zip(runs, targets, strict=True):
        log(f"{label}: incremental ETL ({i} of {repeat})")
        m, stages = _etl(python, source, target, [], code, work, max_rss_mb)
        incrementals.append(m)
        profiles.append(stages)
    result.steps[INCREMENTAL] = step_from_runs(
        INCREMENTAL, added.interactions, added.json_bytes, incrementals
    )
    if stages := profiles[median_run(incrementals)]:
        result.profile["incremental"] = stages


def _remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)


def _fresh_copy(source: Path, copy: Path) -> None:
    """`copy` made anew from `source`, and on disk: the run must not wait for the
    write-back of the copy (the page cache still holds it, as it holds the source)."""
    _remove_db(copy)
    shutil.copyfile(source, copy)
    with copy.open("rb+") as f:
        os.fsync(f.fileno())


def _etl(
    python: str,
    source: Path,
    target: Path | None,
    options: list[str],
    code: CodeVersion,
    work: Path,
    max_rss_mb: float,
) -> tuple[Measurement, dict[str, float]]:
    """One `python -m pipeline etl` run from `code`, with the stage timings it reports;
    target None: into the source itself, as the README runs it."""
    profile = work / "profile.json"
    profile.unlink(missing_ok=True)
    env = {**os.environ, PROFILE_ENV: str(profile)}
    cmd: list[str | Path] = [python, "-m", "pipeline", "etl", source]
    if target is not None:
        cmd += ["--target", target]
    m = measure([*cmd, *options, "--quiet"], cwd=code.root, env=env, max_rss_mb=max_rss_mb)
    return m, load_profile(profile)
