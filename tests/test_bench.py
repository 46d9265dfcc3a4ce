"""Tests for the benchmark harness (bench/): the baseline's rules, the data, the report.

Fast tests only; nothing here asserts a timing.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import pytest

from bench.__main__ import parse_sizes
from bench.baseline import agreement, run_baseline
from bench.code import snapshot_head
from bench.datasets import append_held_back, ensure_bench_db, hold_back
from bench.harness import median_run, run_size, step_from_runs
from bench.measure import Measurement, StepFailed, measure
from bench.report import (
    BARE,
    BASELINE,
    FULL,
    IN_LOG,
    INCREMENTAL,
    INCREMENTAL_IN_LOG,
    SizeResult,
    Step,
    check_targets,
    cpu_clock,
    load_profile,
    render_markdown,
    steal_percent,
)
from tests.helpers import REPO, etl, make_demo

# The baseline pairs on the JSON id alone: it cannot see routes (which REPL a call went
# to needs request.received attribution), so it may pair across clients that reuse an
# id at the same moment. The ETL and the baseline must still agree on nearly all calls.
AGREEMENT_MIN = 0.95


def _rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def _tools_calls_with_id(source: Path) -> int:
    """Inbound tools/call requests with a non-null id, parsed in Python."""
    n = 0
    for (content,) in _rows(source, "SELECT content FROM interactions WHERE direction = 'inbound'"):
        try:
            msg = json.loads(content)
        except ValueError:
            continue
        if (
            isinstance(msg, dict)
            and msg.get("method") == "tools/call"
            and msg.get("id") is not None
        ):
            n += 1
    return n


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return make_demo(tmp_path_factory.mktemp("bench"), calls=400, seed=11)


def test_baseline_agrees_with_the_etl(tmp_path: Path, demo: tuple[Path, dict[str, Any]]) -> None:
    source, truth = demo
    baseline_db, etl_db = tmp_path / "baseline.db", tmp_path / "etl.db"
    run_baseline(source, baseline_db)
    etl(source, target=etl_db, full=True)

    calls = _tools_calls_with_id(source)
    assert _rows(baseline_db, "SELECT count(*) FROM tool_executions")[0][0] == calls
    a = agreement(etl_db, baseline_db)
    assert a.etl_calls == calls
    assert a.common_calls == calls
    assert a.response_rate >= AGREEMENT_MIN
    assert a.status_rate >= AGREEMENT_MIN

    # The pairs are right, not only alike: against the generator's ground truth.
    expected = {e["request_row_id"]: e["response_row_id"] for e in truth["executions"]}
    got = dict(
        _rows(
            baseline_db,
            "SELECT interaction_request_id, interaction_response_id FROM tool_executions",
        )
    )
    same = sum(got.get(k) == v for k, v in expected.items())
    assert same / len(expected) >= AGREEMENT_MIN


def test_baseline_errors_and_summary(tmp_path: Path, demo: tuple[Path, dict[str, Any]]) -> None:
    source, _ = demo
    baseline_db = tmp_path / "baseline.db"
    run_baseline(source, baseline_db)
    types = dict(_rows(baseline_db, "SELECT error_type, count(*) FROM errors GROUP BY 1"))
    assert types.get("tool_error", 0) > 0
    assert types.get("protocol_error", 0) > 0  # the parse errors of malformed rows
    bad = _rows(
        baseline_db,
        "SELECT * FROM daily_tool_summary"
        " WHERE NOT (min_ms <= p50_ms AND p50_ms <= p95_ms AND p95_ms <= p99_ms"
        " AND p99_ms <= max_ms)",
    )
    assert bad == []
    answered = _rows(
        baseline_db, "SELECT count(*) FROM tool_executions WHERE status IN ('success', 'error')"
    )[0][0]
    assert (
        _rows(baseline_db, "SELECT sum(execution_count) FROM daily_tool_summary")[0][0] == answered
    )
    with pytest.raises(FileExistsError):
        run_baseline(source, baseline_db)


def test_held_back_rows_continue_the_log(tmp_path: Path, demo: tuple[Path, dict[str, Any]]) -> None:
    source, _ = demo
    work = tmp_path / "work.db"
    held = hold_back(source, work, fraction=0.05)
    n_source = _rows(source, "SELECT count(*) FROM interactions")[0][0]
    n_work = _rows(work, "SELECT count(*) FROM interactions")[0][0]
    assert 0 < n_work < n_source
    assert _rows(work, "SELECT max(id), max(timestamp) FROM interactions")[0] == (
        held.last_interaction_id,
        held.last_timestamp,
    )
    assert _rows(work, "SELECT max(timestamp) FROM events")[0][0] <= held.last_timestamp

    added = append_held_back(source, work)
    assert added.interactions == n_source - n_work
    assert added.events > 0
    assert added.json_bytes > 0
    # The new rows come after the old ones, in ids and in time.
    for table, last_id in (
        ("interactions", held.last_interaction_id),
        ("events", held.last_event_id),
    ):
        new = _rows(work, f"SELECT min(id), min(timestamp) FROM {table} WHERE id > ?", last_id)  # noqa: S608
        assert new[0][0] == last_id + 1
        assert new[0][1] >= held.last_timestamp
    # And they are the source's own rows: the copy is whole again.
    for table in ("interactions", "events"):
        select = f"SELECT * FROM {table} ORDER BY id"  # noqa: S608
        assert _rows(work, select) == _rows(source, select)


def test_bench_db_is_a_run_of_days(tmp_path: Path) -> None:
    said: list[str] = []
    small = ensure_bench_db(tmp_path, "100k", chunk_calls=40, chunks=2, log=said.append)
    assert small.chunks == 2
    ids = _rows(small.path, "SELECT min(id), max(id), count(*) FROM interactions")[0]
    assert ids == (1, small.interactions, small.interactions)
    for table in ("interactions", "events"):
        backwards = _rows(
            small.path,
            f"SELECT count(*) FROM {table} AS a JOIN {table} AS b ON b.id = a.id + 1"  # noqa: S608
            " WHERE b.timestamp < a.timestamp",
        )
        assert backwards[0][0] == 0
    days = _rows(small.path, "SELECT count(DISTINCT substr(timestamp, 1, 10)) FROM interactions")
    assert days[0][0] >= 2

    said.clear()
    assert ensure_bench_db(tmp_path, "100k", chunk_calls=40, chunks=2, log=said.append) == small
    assert said == []  # cached

    larger = ensure_bench_db(tmp_path, "1m", chunk_calls=40, chunks=3, log=said.append)
    assert said[0].startswith("1m: starting from bench-100k.db")
    first = "SELECT * FROM interactions WHERE id <= ? ORDER BY id"
    assert _rows(larger.path, first, small.interactions) == _rows(
        small.path, first, small.interactions
    )


def test_measure_reports_the_child_alone(tmp_path: Path) -> None:
    m = measure([sys.executable, "-c", "x = bytearray(80_000_000); print(len(x))"])
    assert m.returncode == 0
    assert m.stdout.strip() == "80000000"
    assert m.peak_rss_mb >= 80
    with pytest.raises(StepFailed, match="exited with 3"):
        measure([sys.executable, "-c", "import sys; sys.exit(3)"])


def test_measure_stops_a_child_above_the_memory_cap() -> None:
    hog = "import time; x = bytearray(300_000_000); time.sleep(60)"
    with pytest.raises(StepFailed, match="above the cap of 100 MB"):
        measure([sys.executable, "-c", hog], max_rss_mb=100)


def test_run_size_end_to_end(tmp_path: Path) -> None:
    said: list[str] = []
    code = snapshot_head(REPO, tmp_path / "code")
    r = run_size("100k", tmp_path, log=said.append, chunk_calls=150, code=code, repeat=2)
    assert r.failure is None, said
    assert set(r.steps) == {BARE, BASELINE, FULL, IN_LOG, INCREMENTAL, INCREMENTAL_IN_LOG}
    # Every step ran twice: its time is the faster one (the lower median of two).
    assert all(len(s.runs) == 2 and s.wall_s == min(s.runs) for s in r.steps.values())
    # The incremental run ran once for each full run (on that run's target).
    assert said.count("100k: incremental ETL (2 of 2)") == 1
    assert r.steps[FULL].rows == r.steps[IN_LOG].rows == r.interactions > 0
    assert set(r.profile) == {
        "full",
        "full, into the log",
        "incremental",
        "incremental, into the log",
    }
    # Into the log, the same 1% is appended before each incremental run.
    assert r.steps[INCREMENTAL_IN_LOG].rows == r.appended_interactions
    assert 0 < r.appended_interactions == r.steps[INCREMENTAL].rows < r.interactions
    assert r.agreement is not None
    assert r.agreement.response_rate >= AGREEMENT_MIN
    assert all(s.peak_rss_mb > 0 and s.wall_s > 0 for s in r.steps.values())
    assert not (tmp_path / "work" / "100k").exists()  # work copies removed
    assert r.steal_pct is not None  # Linux counts stolen time: the steps' share is known


def _run(wall: float, rss: float) -> Measurement:
    return Measurement(wall, rss, wall, 0, "", "")


def test_a_step_counts_its_median_run() -> None:
    runs = [_run(12.0, 500.0), _run(10.0, 700.0), _run(11.0, 600.0)]
    assert median_run(runs) == 2
    assert median_run(runs[:2]) == 1  # of two, the faster
    assert median_run(runs[:1]) == 0
    step = step_from_runs(FULL, 10, 100, runs)
    assert (step.wall_s, step.peak_rss_mb, step.runs) == (11.0, 700.0, (12.0, 10.0, 11.0))
    result = SizeResult("1m", 10, 10, 100)
    result.steps[FULL] = step
    assert "| 1m | full ETL | 10 | 0.0 | 11.00 | 12.00 / 10.00 / 11.00 |" in render_markdown(
        [result], {}, "today", ""
    )


def test_snapshot_of_head(tmp_path: Path) -> None:
    code = snapshot_head(REPO, tmp_path)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert code.root == tmp_path / sha[:12]
    assert (code.root / "pipeline" / "cli.py").is_file()
    assert (code.root / "queries" / "schema.sql").is_file()
    assert sha[:12] in code.description
    assert snapshot_head(REPO, tmp_path) == code


def test_the_etl_runs_from_the_snapshot_not_the_editable_install(tmp_path: Path) -> None:
    # python -m pipeline in the snapshot's directory must import the snapshot's package.
    fake = tmp_path / "pipeline"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text("print('snapshot')\n")
    m = measure([sys.executable, "-m", "pipeline"], cwd=tmp_path)
    assert m.stdout.strip() == "snapshot"


def _result(label: str, full_s: float, baseline_s: float, rows: int) -> SizeResult:
    r = SizeResult(label, rows, rows, rows * 600)
    for name, wall, rss in (
        (BARE, 0.5, 15.0),
        (BASELINE, baseline_s, 35.0),
        (FULL, full_s, 700.0),
        (IN_LOG, full_s * 1.2, 650.0),
        (INCREMENTAL, full_s / 50, 300.0),
        (INCREMENTAL_IN_LOG, full_s / 10, 320.0),
    ):
        r.steps[name] = Step(name, rows, rows * 600, wall, rss, 100.0)
    return r


def test_results_markdown(tmp_path: Path) -> None:
    results = [_result("1m", 4.0, 10.0, 1_000_000), _result("5m", 30.0, 50.0, 5_000_000)]
    text = render_markdown(results, {"CPU": "test"}, "2026-01-01", "How it was made.")
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        "# Benchmark results (issue 5)",
        "## Machine",
        "## Results",
        "## Targets",
        "## Baseline agreement",
        "## Stage profile",
        "## Method",
    ]
    assert "placeholder" in text
    assert "| 1m | full ETL | 1,000,000 |" in text
    assert "Steal time" not in text  # not measured: no line

    results[0].steal_pct, results[1].steal_pct = 0.04, 31.25
    assert (
        "\nSteal time during each size's steps (the share of the machine's CPU time that its "
        "hypervisor gave to other machines; every step takes longer with it): "
        "1m: 0.0%; 5m: 31.2%\n"
    ) in render_markdown(results, {}, "today", "")

    results[0].profile["full"] = {"scan": 1.5, "pair": 0.25}
    assert "| 1m | full | 1.50 | 0.25 |" in render_markdown(results, {}, "today", "")


def test_steal_time_is_the_stolen_share_of_the_machine_clock() -> None:
    assert steal_percent((10.0, 1_000.0), (40.0, 1_200.0)) == 15.0
    assert steal_percent((10.0, 1_000.0), (10.0, 1_000.0)) is None  # no time passed
    assert steal_percent(None, (40.0, 1_200.0)) is None  # not counted by the OS
    # The real clock (Linux counts stolen time): both readings only grow, and the
    # stolen share of a busy second is a percentage.
    before = cpu_clock()
    assert before is not None
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        pass
    after = cpu_clock()
    assert after is not None
    assert after[0] >= before[0] and after[1] > before[1]
    share = steal_percent(before, after)
    assert share is not None and 0.0 <= share <= 100.0


def test_targets() -> None:
    checks = {
        (c.target.split(" (")[0], c.size): c.met
        for c in check_targets(
            [_result("1m", 4.0, 10.0, 1_000_000), _result("5m", 30.0, 50.0, 5_000_000)]
        )
    }
    assert checks[("full ETL ≤ 0.5× baseline wall time", "1m")] is True
    assert checks[("full ETL ≤ 0.5× baseline wall time", "5m")] is False
    # Into the log itself 4.8 s against 10 s; at 5M 36 s against 50 s.
    assert checks[("full ETL into the log itself ≤ 0.5× baseline", "1m")] is True
    assert checks[("full ETL into the log itself ≤ 0.5× baseline", "5m")] is False
    assert checks[("incremental after +1% ≤ 5% of the full run", "1m")] is True
    # full_s / 10 against 1.2 full_s: 8.3%.
    assert (
        checks[("incremental after +1% into the log itself ≤ 5% of the full run into it", "1m")]
        is False
    )
    assert checks[("peak RSS of the ETL ≤ 1 GB", "1m")] is True
    results = [_result("1m", 4.0, 10.0, 1_000_000)]
    results[0].steps[IN_LOG] = Step(IN_LOG, 1, 1, 5.0, 1_100.0, 100.0)
    assert {c.size: c.met for c in check_targets(results) if "RSS" in c.target}["1m"] is False
    assert checks[("peak RSS of the ETL ≤ 1.5 GB", "5m")] is True
    # 30 s for 5M rows is 1.5× the time per row of 4 s for 1M rows: worse than linear.
    assert checks[("full ETL time grows no faster than linearly", "1m → 5m")] is False
    linear = [
        c
        for c in check_targets(
            [_result("1m", 4.0, 10.0, 1_000_000), _result("5m", 30.0, 60.0, 5_000_000)]
        )
        if "linearly" in c.target
    ]
    # The baseline's 60 s for 5M rows against 10 s for 1M: 1.2 times the time per row.
    assert [c.measured for c in linear] == ["1.50 (the SQLite baseline's: 1.20)"]
    only_small = check_targets([_result("100k", 4.0, 10.0, 100_000)])
    assert {c.size: c.met for c in only_small if "RSS" in c.target} == {"1m": None, "5m": None}


def test_load_profile(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    assert load_profile(path) == {}
    path.write_text('{"scan": 1, "decode": {"seconds": 2.5, "rows": 10}, "note": "x"}')
    assert load_profile(path) == {"scan": 1.0, "decode": 2.5}
    path.write_text('{"stages": {"write": 0.5}}')
    assert load_profile(path) == {"write": 0.5}
    path.write_text("not json")
    assert load_profile(path) == {}


def test_parse_sizes() -> None:
    assert parse_sizes("5m, 100k") == ["100k", "5m"]
    assert parse_sizes("1m") == ["1m"]
    with pytest.raises(click.BadParameter):
        parse_sizes("2m")
