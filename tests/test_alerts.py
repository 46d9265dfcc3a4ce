"""Alert rules: each fires on the degradation it describes and stays quiet otherwise."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pipeline.alerts import Rules, evaluate, parse_rules
from pipeline.cli import main
from pipeline.querylib import open_sqlite_backend
from tests.helpers import REPO, etl, make_demo, new_live_source

BASE = datetime(2026, 3, 1)
END = BASE + timedelta(days=8)  # the newest call of the healthy load
FMT = "%Y-%m-%d %H:%M:%S.%f"


def _ts(t: datetime) -> str:
    return t.strftime(FMT)[:-3]


class Load:
    """Synthetic analytics rows: calls of a tool at a fixed pace with planned outcomes."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db)
        self.next_id = (
            1
            + (
                self.conn.execute(
                    "SELECT COALESCE(MAX(interaction_request_id), 0) FROM tool_executions"
                ).fetchone()[0]
            )
        )

    def calls(
        self,
        tool: str,
        start: datetime,
        end: datetime,
        every_s: int,
        error_every: int = 0,
        lost_every: int = 0,
        duration_ms: Callable[[int], float] = lambda k: 100.0 + 10 * (k % 10),
    ) -> None:
        k, t = 0, start
        with self.conn:
            while t < end:
                k += 1
                t += timedelta(seconds=every_s)
                status = "success"
                if error_every and k % error_every == 0:
                    status = "error"
                elif lost_every and k % lost_every == 1:
                    status = "timeout"
                dur = None if status == "timeout" else duration_ms(k)
                rid = self.next_id
                self.next_id += 1
                self.conn.execute(
                    "INSERT INTO tool_executions (session_id, request_id, tool_name, tool_method, "
                    "request_time, response_time, duration_ms, status, interaction_request_id, "
                    "request_date) VALUES ('s1', ?, ?, 'tools/call', ?, ?, ?, ?, ?, ?)",
                    (
                        str(rid),
                        tool,
                        _ts(t),
                        None if dur is None else _ts(t + timedelta(milliseconds=dur)),
                        dur,
                        status,
                        rid,
                        _ts(t)[:10],
                    ),
                )
                if status == "error":
                    self.error(tool, t, "tool_execution_error", f"i:{rid}")

    def error(self, tool: str | None, at: datetime, category: str, key: str) -> None:
        self.conn.execute(
            "INSERT INTO errors (session_id, timestamp, error_type, error_category, tool_name, "
            "message, resolved, error_key, error_source) "
            "VALUES ('s1', ?, 'tool_error', ?, ?, 'it broke', 0, ?, 'is_error_result')",
            (_ts(at), category, tool, key),
        )

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight days of two tools: 2 % errors, 1 % timeouts, steady latency."""
    db = tmp_path_factory.mktemp("alerts") / "healthy.db"
    new_live_source(db)
    etl(db)  # an empty load: every analytics table, no rows
    load = Load(db)
    load.calls("alpha", BASE, END, 600, error_every=50, lost_every=100)
    load.calls("beta", BASE, END, 600, error_every=50, lost_every=100)
    load.close()
    return db


def _variant(healthy: Path, tmp_path: Path, change: Callable[[Load], None]) -> Path:
    db = tmp_path / "variant.db"
    shutil.copy(healthy, db)
    load = Load(db)
    change(load)
    load.close()
    return db


def _alerts(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["alerts", "--db", str(db), "--format", "json", *args])


def _fired(result: Result) -> set[tuple[str, str]]:
    return {(a["rule"], a["subject"]) for a in json.loads(result.stdout)}


def test_healthy_load_exits_0(healthy: Path) -> None:
    result = CliRunner().invoke(main, ["alerts", "--db", str(healthy)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("no alerts: 5 rules checked")
    assert "data up to 2026-03-09 00:00:00.120" in result.stdout
    conn = sqlite3.connect(healthy)
    assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone() == (0,)
    conn.close()


def _failing(load: Load) -> None:
    # alpha fails every other call over its last 40 minutes (24 calls, 12 errors).
    load.calls("alpha", END - timedelta(minutes=40), END, 100, error_every=2)


def _slower(load: Load) -> None:
    with load.conn:
        load.conn.execute(
            "UPDATE tool_executions SET duration_ms = duration_ms * 5 "
            "WHERE tool_name = 'beta' AND request_time > ?",
            (_ts(END - timedelta(hours=24)),),
        )


def _timeouts(load: Load) -> None:
    with load.conn:
        load.conn.execute(
            "UPDATE tool_executions SET status = 'timeout', duration_ms = NULL "
            "WHERE tool_name = 'alpha' AND status = 'success' AND request_time > ? "
            "AND interaction_request_id % 5 = 0",
            (_ts(END - timedelta(hours=24)),),
        )


def _new_category(load: Load) -> None:
    with load.conn:
        load.error("beta", END - timedelta(hours=2), "header_mismatch", "e:1")


def _backlog(load: Load) -> None:
    with load.conn:
        for i in range(20):
            load.error(None, END - timedelta(hours=20, minutes=-i), "internal_error", f"e:{i + 10}")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # 12 more errors in the last day also double the day's unresolved errors.
        (_failing, {("error_rate", "alpha"), ("unresolved_growing", "(all)")}),
        (_slower, {("latency_p95", "beta")}),
        (_timeouts, {("timeouts_rising", "alpha")}),
        (_new_category, {("new_error_category", "header_mismatch")}),
        (_backlog, {("unresolved_growing", "(all)"), ("new_error_category", "internal_error")}),
    ],
    ids=["error_rate", "latency_p95", "timeouts_rising", "new_error_category", "unresolved"],
)
def test_each_rule_fires_on_its_degradation(
    healthy: Path, tmp_path: Path, change: Callable[[Load], None], expected: set[tuple[str, str]]
) -> None:
    db = _variant(healthy, tmp_path, change)
    result = _alerts(db)
    assert result.exit_code == 3, result.output
    assert _fired(result) == expected
    conn = sqlite3.connect(db)
    stored = conn.execute(
        "SELECT rule, subject, value, threshold, message, run_time, data_time, alert_run_id "
        "FROM alerts"
    ).fetchall()
    conn.close()
    assert {(r[0], r[1]) for r in stored} == expected
    assert all(r[4] and r[5] and r[6] and r[7] for r in stored)
    assert len({r[7] for r in stored}) == 1


def test_alert_values_and_table(healthy: Path, tmp_path: Path) -> None:
    db = _variant(healthy, tmp_path, _failing)
    result = _alerts(db)
    # The newest data: the response to the last added call (k = 24: 140 ms).
    alert = next(a for a in json.loads(result.stdout) if a["rule"] == "error_rate")
    # The last hour: 6 calls of the steady pace (one failed) and 24 new ones, 12 failed.
    assert alert["value"] == 43.333 and alert["threshold"] == 25.0
    assert alert["window_end"] == "2026-03-09 00:00:00.140"
    assert alert["window_start"] == "2026-03-08 23:00:00.140"
    assert alert["message"] == "tool alpha: 13 of 30 calls failed in the last 1 h (43.3 % > 25 %)"
    table = CliRunner().invoke(main, ["alerts", "--db", str(db)])
    assert table.exit_code == 3
    assert "2 alerts fired (data up to 2026-03-09 00:00:00.140)" in table.stdout
    # Each run appends its own rows.
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(DISTINCT alert_run_id), COUNT(*) FROM alerts").fetchone() == (
        2,
        4,
    )
    conn.close()


RULES = ("error_rate", "latency_p95", "timeouts_rising", "new_error_category", "unresolved_growing")


def _only(rule: str) -> Rules:
    """The defaults with every other rule turned off."""
    text = "\n".join(f"[{n}]\nenabled = {'true' if n == rule else 'false'}" for n in RULES)
    return parse_rules(text, Path("only.toml"))


@pytest.mark.parametrize(
    ("errors", "calls", "fires"),
    [(5, 20, False), (6, 20, True), (19, 19, False)],
    ids=["at-threshold", "above", "too-few-calls"],
)
def test_error_rate_boundaries(tmp_path: Path, errors: int, calls: int, fires: bool) -> None:
    db = tmp_path / "t.db"
    new_live_source(db)
    etl(db)
    load = Load(db)
    # calls spaced 1 min apart in the last 40 minutes; the first `errors` of them fail
    start = END - timedelta(minutes=calls)
    load.calls("gamma", start, END, 60, duration_ms=lambda k: 10.0)
    with load.conn:
        load.conn.execute(
            "UPDATE tool_executions SET status = 'error' WHERE interaction_request_id <= ?",
            (errors,),
        )
    load.close()
    conn = open_sqlite_backend(db)
    try:
        _, fired = evaluate(conn, _only("error_rate"))
    finally:
        conn.close()
    assert [(a.rule, a.subject) for a in fired] == ([("error_rate", "gamma")] if fires else [])


def test_demo_is_quiet_until_a_tool_fails(tmp_path: Path) -> None:
    """A realistic log: quiet by default; its most used tool failing in the last hour fires."""
    source, _ = make_demo(tmp_path, calls=1500, seed=4)
    etl(source)
    assert _alerts(source).exit_code == 0
    conn = sqlite3.connect(source)
    with conn:
        newest = conn.execute("SELECT MAX(request_time) FROM tool_executions").fetchone()[0]
        conn.execute(
            "UPDATE tool_executions SET status = 'error' "
            "WHERE tool_name = 'ex' AND request_time > datetime(?, '-1 hour')",
            (newest,),
        )
    conn.close()
    result = _alerts(source)
    assert result.exit_code == 3, result.output
    assert ("error_rate", "ex") in _fired(result)


def test_default_rules_file_spells_out_the_defaults() -> None:
    path = REPO / "alerts.default.toml"
    assert parse_rules(path.read_text(encoding="utf-8"), path) == Rules()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[error_rate\n", "is not valid TOML: "),
        ("[error_rates]\n", "unknown rule [error_rates]; the rules are error_rate, latency_p95, "),
        ("[error_rate]\nthreshold = 3\n", "[error_rate] has no setting 'threshold'; its settings "),
        ("[error_rate]\nthreshold_pct = 'high'\n", "[error_rate] threshold_pct must be a number"),
        ("[error_rate]\nmin_calls = 2.5\n", "[error_rate] min_calls must be a whole number"),
        ("[latency_p95]\nwindow_hours = 0\n", "[latency_p95] window_hours must be above 0"),
        ("[latency_p95]\nenabled = 1\n", "[latency_p95] enabled must be true or false"),
        ("error_rate = 3\n", "error_rate must be a [error_rate] table"),
    ],
)
def test_bad_rules_file_is_one_line_and_exit_2(
    healthy: Path, tmp_path: Path, text: str, message: str
) -> None:
    db = tmp_path / "copy.db"
    shutil.copy(healthy, db)
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE IF EXISTS alerts")
    conn.close()
    rules = tmp_path / "rules.toml"
    rules.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["alerts", "--db", str(db), "--rules", str(rules)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: rules file {rules}")
    assert message in result.stderr and result.stderr.count("\n") == 1
    conn = sqlite3.connect(db)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert "alerts" not in tables  # nothing was touched


def test_missing_inputs_exit_2(healthy: Path, tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    result = CliRunner().invoke(main, ["alerts", "--db", str(healthy), "--rules", str(missing)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: rules file {missing} does not exist; give a TOML file (see alerts.default.toml)\n"
    )
    result = CliRunner().invoke(main, ["alerts", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: database {tmp_path / 'x.db'} does not exist; give the database the ETL wrote\n"
    )
    assert not (tmp_path / "x.db").exists()
