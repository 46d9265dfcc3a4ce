"""The benchmark's results: the table, the targets of issue 5, and bench/RESULTS.md."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil
from rich.table import Table

from bench.baseline import Agreement

__all__ = [
    "STEPS",
    "SizeResult",
    "Step",
    "TargetCheck",
    "check_targets",
    "load_profile",
    "machine_info",
    "render_markdown",
    "rich_table",
]

BARE, BASELINE, FULL, INCREMENTAL = "bare read", "SQLite baseline", "full ETL", "incremental ETL"
# The README's default: the tables go into the log itself (4 KiB pages, WAL mode).
IN_LOG = "full ETL into the log"
INCREMENTAL_IN_LOG = "incremental ETL into the log"
STEPS = (BARE, BASELINE, FULL, IN_LOG, INCREMENTAL, INCREMENTAL_IN_LOG)
ETL_STEPS = (FULL, IN_LOG, INCREMENTAL, INCREMENTAL_IN_LOG)
# The full run each incremental step is a share of ("of full").
FULL_OF = {INCREMENTAL: FULL, INCREMENTAL_IN_LOG: IN_LOG}
MB = 1_000_000.0

# Issue 5's targets.
FULL_VS_BASELINE_MAX = 0.5
INCREMENTAL_VS_FULL_MAX = 0.05
RSS_LIMIT_MB = {"1m": 1024.0, "5m": 1536.0}


@dataclass(frozen=True)
class Step:
    """One measured step of one size."""

    name: str
    rows: int  # interactions the step read (the appended ones for the incremental run)
    json_bytes: int  # interactions' content plus events' data of those rows
    wall_s: float  # of the median run when the step ran more than once
    peak_rss_mb: float  # the largest of its runs
    cpu_percent: float  # of the median run
    runs: tuple[float, ...] = ()  # every run's wall time, in the order they ran

    @property
    def cpu_s(self) -> float:
        return self.cpu_percent * self.wall_s / 100.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.json_bytes / MB / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class SizeResult:
    """Everything measured for one database size."""

    label: str
    interactions: int
    events: int
    json_bytes: int
    appended_interactions: int = 0
    appended_events: int = 0
    steps: dict[str, Step] = field(default_factory=dict)
    agreement: Agreement | None = None
    # Stage -> seconds of the full and incremental runs, when the ETL reports them.
    profile: dict[str, dict[str, float]] = field(default_factory=dict)
    failure: str | None = None  # the step that failed, when one did
    load_before: str = ""  # the machine's load average (1, 5, 15 min) before the steps
    steal_pct: float | None = None  # CPU time stolen by the hypervisor during the steps

    def ratio(self, step: str, reference: str) -> float | None:
        """Wall time of `step` over that of `reference`, when both were measured."""
        a, b = self.steps.get(step), self.steps.get(reference)
        if a is None or b is None or b.wall_s <= 0:
            return None
        return a.wall_s / b.wall_s


@dataclass(frozen=True)
class TargetCheck:
    """One target of issue 5 at one size: the measured value and whether it holds."""

    target: str
    size: str
    measured: str
    met: bool | None  # None: not measured in this run


def check_targets(results: Sequence[SizeResult]) -> list[TargetCheck]:
    """Evaluate issue 5's targets on the sizes that were measured."""
    by_label = {r.label: r for r in results}
    checks: list[TargetCheck] = []
    for r in results:
        scope = " (the issue's target)" if r.label == "1m" else " (information)"
        target = f"full ETL ≤ {FULL_VS_BASELINE_MAX}× baseline wall time{scope}"
        checks.append(_ratio_check(r, FULL, BASELINE, target, FULL_VS_BASELINE_MAX))
    # The runs into the log itself are listed only where they were measured.
    for r in results:
        target = (
            f"full ETL into the log itself ≤ {FULL_VS_BASELINE_MAX}× baseline "
            "(information: the README's default target)"
        )
        check = _ratio_check(r, IN_LOG, BASELINE, target, FULL_VS_BASELINE_MAX)
        if check.met is not None:
            checks.append(check)
    for r in results:
        target = f"incremental after +1% ≤ {INCREMENTAL_VS_FULL_MAX:.0%} of the full run"
        checks.append(_ratio_check(r, INCREMENTAL, FULL, target, INCREMENTAL_VS_FULL_MAX))
    for r in results:
        target = (
            f"incremental after +1% into the log itself ≤ {INCREMENTAL_VS_FULL_MAX:.0%} "
            "of the full run into it (information: the README's default target)"
        )
        check = _ratio_check(r, INCREMENTAL_IN_LOG, IN_LOG, target, INCREMENTAL_VS_FULL_MAX)
        if check.met is not None:
            checks.append(check)
    for label, limit in RSS_LIMIT_MB.items():
        at = by_label.get(label)
        rss = [at.steps[s].peak_rss_mb for s in ETL_STEPS if at and s in at.steps]
        checks.append(
            TargetCheck(
                f"peak RSS of the ETL ≤ {limit / 1024:g} GB",
                label,
                f"{max(rss):.0f} MB" if rss else "—",
                max(rss) <= limit if rss else None,
            )
        )
    small, large = by_label.get("1m"), by_label.get("5m")
    growth = _growth_per_row(small, large, FULL)
    # The script's own growth in the same run, for reference: the machine's speed drifts
    # between the sizes (docs/performance.md), and the script reads the same larger log.
    script = _growth_per_row(small, large, BASELINE)
    measured = "—" if growth is None else f"{growth:.2f}"
    if growth is not None and script is not None:
        measured += f" (the SQLite baseline's: {script:.2f})"
    checks.append(
        TargetCheck(
            "full ETL time grows no faster than linearly (time per row 5M / 1M ≤ 1)",
            "1m → 5m",
            measured,
            None if growth is None else growth <= 1.0,
        )
    )
    return checks


def _growth_per_row(small: SizeResult | None, large: SizeResult | None, step: str) -> float | None:
    """`step`'s wall time per row at the large size over that at the small one."""
    if not small or not large or step not in small.steps or step not in large.steps:
        return None
    per_row_small = small.steps[step].wall_s / small.steps[step].rows
    per_row_large = large.steps[step].wall_s / large.steps[step].rows
    return per_row_large / per_row_small


def _ratio_check(
    r: SizeResult, step: str, reference: str, target: str, limit: float
) -> TargetCheck:
    """`step`'s wall time over `reference`'s against `limit` (met None: not measured):
    written as a multiple of the baseline, or as a share of a full run."""
    ratio = r.ratio(step, reference)
    if ratio is None:
        return TargetCheck(target, r.label, "—", None)
    measured = _fmt_ratio(ratio) if reference == BASELINE else f"{ratio:.1%}"
    return TargetCheck(target, r.label, measured, ratio <= limit)


def load_profile(path: Path) -> dict[str, float]:
    """Stage timings the ETL may write (MCP_ANALYTICS_PROFILE): {} when absent or unusable.

    Accepted: a JSON object of stage -> seconds, or stage -> {"seconds": s, ...}, at the
    top level or under "stages".
    """
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(doc, dict) and isinstance(doc.get("stages"), dict):
        doc = doc["stages"]
    if not isinstance(doc, dict):
        return {}
    stages: dict[str, float] = {}
    for name, value in doc.items():
        if isinstance(value, dict):
            value = value.get("seconds")
        if isinstance(value, int | float) and not isinstance(value, bool):
            stages[str(name)] = float(value)
    return stages


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"') + f" (kernel {platform.release()})"
    except OSError:
        pass
    return platform.platform()


def load_average() -> str:
    """The machine's load average, as text: other work skews the timings."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# The fields of psutil.cpu_times() that make up the machine's CPU time. guest and
# guest_nice are left out: Linux counts them in user and nice already.
_CPU_TIME_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_clock() -> tuple[float, float] | None:
    """The machine's CPU seconds so far, all cores: (stolen, all), None where the OS does
    not count stolen time.

    Steal time is what a virtual machine's cores spent waiting while the hypervisor ran
    other machines on them. No process sees it in its own CPU time, but every step then
    takes longer: it tells a slow spell of the host from a slow change.
    """
    times = psutil.cpu_times()
    fields = times._asdict()
    if "steal" not in fields:
        return None
    return float(fields["steal"]), float(sum(fields.get(f, 0.0) for f in _CPU_TIME_FIELDS))


def steal_percent(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    """The share of the machine's CPU time stolen between two cpu_clock() readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 100.0 * (after[0] - before[0]) / (after[1] - before[1])


def machine_info() -> dict[str, str]:
    """What the numbers were measured on."""
    return {
        "CPU": _cpu_model(),
        "Cores": f"{psutil.cpu_count(logical=False)} physical, {os.cpu_count()} logical",
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": _os_name(),
        "Python": platform.python_version(),
        "DuckDB": _package_version("duckdb"),
        "Polars": _package_version("polars"),
        "SQLite": sqlite3.sqlite_version,
        "Load average at start (1, 5, 15 min)": load_average(),
    }


def _fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _rows(results: Sequence[SizeResult]) -> list[list[str]]:
    rows: list[list[str]] = []
    for r in results:
        for name in STEPS:
            s = r.steps.get(name)
            if s is None:
                continue
            vs_full = r.ratio(name, FULL_OF[name]) if name in FULL_OF else None
            rows.append(
                [
                    r.label,
                    name,
                    f"{s.rows:,}",
                    f"{s.json_bytes / MB:,.1f}",
                    f"{s.wall_s:.2f}",
                    " / ".join(f"{w:.2f}" for w in s.runs) or "—",
                    f"{s.cpu_s:.2f}",
                    f"{s.rows_per_s:,.0f}",
                    f"{s.mb_per_s:,.1f}",
                    f"{s.peak_rss_mb:,.0f}",
                    f"{s.cpu_percent:.0f}",
                    _fmt_ratio(r.ratio(name, BASELINE)),
                    _fmt_ratio(r.ratio(name, BARE)),
                    "—" if vs_full is None else f"{vs_full:.1%}",
                ]
            )
    return rows


HEADERS = (
    "size",
    "step",
    "interactions",
    "JSON MB",
    "wall s",
    "runs",
    "CPU s",
    "rows/s",
    "MB/s",
    "peak RSS MB",
    "CPU %",
    "× baseline",
    "× bare read",
    "of full",
)


def rich_table(results: Sequence[SizeResult]) -> Table:
    """The results as a rich table for the terminal."""
    table = Table(title="mcp-analytics benchmark (issue 5)")
    for i, h in enumerate(HEADERS):
        table.add_column(h, justify="left" if i < 2 else "right")
    for row in _rows(results):
        table.add_row(*row)
    return table


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _status(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "**NOT met**")


def render_markdown(
    results: Sequence[SizeResult],
    machine: dict[str, str],
    date: str,
    method: str,
    notes: Sequence[str] = (),
) -> str:
    """bench/RESULTS.md: machine, results, targets, agreement, stage profile, method."""
    out: list[str] = [
        "# Benchmark results (issue 5)",
        "",
        f"Measured on {date} by `make bench` (`python -m bench`); every number below",
        "comes from this one run. Regenerate with `make bench` (all sizes) or",
        "`make bench SIZES=100k` for a quick look.",
        "",
    ]
    notes = [*notes, *(f"size {r.label}: {r.failure}" for r in results if r.failure)]
    if notes:
        out += [f"- {n}" for n in notes] + [""]
    out += ["## Machine", ""]
    out += _md_table(("", ""), [[k, v] for k, v in machine.items()])
    out += [
        "",
        "## Results",
        "",
        "Wall time, peak RSS and CPU (user + system) are each child process's own",
        "(`os.wait4`). Each step ran as often as `runs` lists (in that order); wall and CPU",
        "are its median run's, peak RSS the largest of its runs, and every ratio is of",
        "medians. CPU % below 100 for a one-threaded step means it waited for a core",
        "(the machine is shared: see the load averages and steal time below the table). rows/s",
        "counts interactions (the incremental run: the appended ones); JSON MB are the",
        "bytes of the interactions' content plus the events' data those rows make up.",
        "`× baseline` and `× bare read` divide a step's wall time by theirs at the same",
        "size; `of full` is an incremental run's time over that of the full run it",
        "follows (into a new file, or into the log itself).",
        "",
    ]
    out += _md_table(HEADERS, _rows(results))
    loads = [f"{r.label}: {r.load_before}" for r in results if r.load_before]
    if loads:
        out += ["", "Load average (1, 5, 15 min) before each size's steps: " + "; ".join(loads)]
    steals = [f"{r.label}: {r.steal_pct:.1f}%" for r in results if r.steal_pct is not None]
    if steals:
        out += [
            "",
            "Steal time during each size's steps (the share of the machine's CPU time that "
            "its hypervisor gave to other machines; every step takes longer with it): "
            + "; ".join(steals),
        ]
    out += ["", "## Targets", ""]
    out += _md_table(
        ("target", "size", "measured", "status"),
        [[c.target, c.size, c.measured, _status(c.met)] for c in check_targets(results)],
    )
    out += [
        "",
        "## Baseline agreement",
        "",
        "How far the SQLite baseline's `tool_executions` agree with the ETL's, call by",
        "call (joined on the request row); the baseline cannot route calls (see",
        "`bench/baseline.sql`), so small differences are expected.",
        "",
    ]
    agreement_rows = []
    for r in results:
        a = r.agreement
        if a is None:
            continue
        agreement_rows.append(
            [
                r.label,
                f"{a.etl_calls:,}",
                f"{a.baseline_calls:,}",
                f"{a.response_rate:.2%}",
                f"{a.status_rate:.2%}",
                f"{a.same_duration / a.etl_calls:.2%}" if a.etl_calls else "—",
            ]
        )
    if agreement_rows:
        out += _md_table(
            (
                "size",
                "ETL calls",
                "baseline calls",
                "same response",
                "same status",
                "same duration",
            ),
            agreement_rows,
        )
    else:
        out += ["(not measured)"]
    out += [
        "",
        "## Stage profile",
        "",
        "Seconds per stage of the ETL (scan, decode, pair, aggregate, write), as the ETL",
        "reports them: the harness sets `MCP_ANALYTICS_PROFILE` to a file path for each",
        "ETL run and reads back a JSON object of stage → seconds (or stage →",
        '`{"seconds": s, ...}`, optionally under `"stages"`).',
        "",
    ]
    stage_names: list[str] = []
    for r in results:
        for stages in r.profile.values():
            stage_names += [s for s in stages if s not in stage_names]
    if stage_names:
        profile_rows = []
        for r in results:
            for run_name, stages in r.profile.items():
                profile_rows.append(
                    [r.label, run_name]
                    + [f"{stages[s]:.2f}" if s in stages else "—" for s in stage_names]
                )
        out += _md_table(("size", "run", *stage_names), profile_rows)
    else:
        out += [
            "<!-- placeholder: filled when the ETL writes MCP_ANALYTICS_PROFILE -->",
            "Not reported yet: the ETL does not write a stage profile in this run.",
        ]
    out += ["", "## Method", "", method.strip(), ""]
    return "\n".join(out)


def results_as_json(results: Sequence[SizeResult]) -> list[dict[str, Any]]:
    """The raw numbers, for data/bench/results.json."""
    doc: list[dict[str, Any]] = []
    for r in results:
        doc.append(
            {
                "label": r.label,
                "interactions": r.interactions,
                "events": r.events,
                "json_bytes": r.json_bytes,
                "appended_interactions": r.appended_interactions,
                "appended_events": r.appended_events,
                "steps": {
                    name: {
                        "rows": s.rows,
                        "json_bytes": s.json_bytes,
                        "wall_s": s.wall_s,
                        "peak_rss_mb": s.peak_rss_mb,
                        "cpu_percent": s.cpu_percent,
                        "runs": list(s.runs),
                    }
                    for name, s in r.steps.items()
                },
                "agreement": None if r.agreement is None else asdict(r.agreement),
                "profile": r.profile,
                "failure": r.failure,
                "load_before": r.load_before,
                "steal_percent": r.steal_pct,
            }
        )
    return doc
