"""The Grafana dashboard: the seed's five tabs, the SQLite plugin everywhere, and every
panel's SQL runs on a database the ETL produced and returns rows."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import etl, make_demo

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "grafana" / "mcp-analytics.json"
PLUGIN = "frser-sqlite-datasource"
TABS = [
    "Tool Analytics",
    "Error Dashboard",
    "Performance Monitor",
    "Client Activity",
    "Session Timeline",
]
VIEWS = [
    "v_daily_tool_usage",
    "v_error_hotspots",
    "v_session_summary",
    "v_tool_latency_hourly",
    "v_latency_histogram",
    "v_client_activity",
]
# What each view reads, to tell a panel with nothing to show from a broken one.
VIEW_TABLES = {
    "v_daily_tool_usage": {"tool_executions"},
    "v_error_hotspots": {"errors"},
    "v_session_summary": {"client_sessions", "tool_executions", "errors"},
    "v_tool_latency_hourly": {"performance_metrics"},
    "v_latency_histogram": {"performance_metrics"},
    "v_client_activity": {"client_sessions"},
}
TABLES = [
    "tool_executions",
    "errors",
    "performance_metrics",
    "client_sessions",
    "session_lifecycle",
]
# Grafana's global time range variables, the only ones the panels use: epoch ms.
ALL_TIME = {"$__from": "0", "$__to": "4102444800000"}
BEFORE_THE_DATA = {"$__from": "946684800000", "$__to": "978307200000"}  # 2000


def _panels() -> list[dict[str, Any]]:
    return list(json.loads(DASHBOARD.read_text())["panels"])


def _queries() -> list[tuple[str, str]]:
    return [
        (p["title"], t["rawQueryText"])
        for p in _panels()
        if p["type"] != "row"
        for t in p["targets"]
    ]


def _render(sql: str, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        sql = sql.replace(name, value)
    left = re.findall(r"\$\w+", sql)
    assert not left, f"unsubstituted variables or macros: {left}"
    return sql


def _reads(sql: str) -> set[str]:
    names = {n for n in [*TABLES, *VIEWS] if re.search(rf"\b{n}\b", sql)}
    return {t for n in names for t in VIEW_TABLES.get(n, {n})}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("grafana")
    source, _ = make_demo(tmp, calls=1500, seed=31)
    etl(source)
    return source


def test_dashboard_has_the_five_tabs() -> None:
    panels = _panels()
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == TABS
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    # Every tab has panels under it.
    kinds = [p["type"] == "row" for p in panels]
    assert all(not b for a, b in itertools.pairwise(kinds) if a)
    assert not kinds[-1]


def test_every_panel_uses_the_sqlite_plugin() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [i["pluginId"] for i in dashboard["__inputs"]] == [PLUGIN]
    for panel in _panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": PLUGIN, "uid": "${DS_MCP_ANALYTICS}"}
        for t in panel["targets"]:
            assert t["datasource"]["type"] == PLUGIN
            assert t["queryType"] in ("table", "time series")
            assert t["queryText"] == t["rawQueryText"]
            if t["queryType"] == "time series":
                assert "AS time" in t["rawQueryText"], panel["title"]


def test_every_view_is_on_the_dashboard() -> None:
    sql = "\n".join(q for _, q in _queries())
    for view in VIEWS:
        assert view in sql


@pytest.mark.parametrize(("title", "sql"), _queries(), ids=[t for t, _ in _queries()])
def test_panel_sql_runs_and_returns_rows(target: Path, title: str, sql: str) -> None:
    conn = sqlite3.connect(f"{target.as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(_render(sql, ALL_TIME)).fetchall()
        filled = {
            t
            for t in TABLES
            if conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()  # noqa: S608
        }
        if _reads(sql) <= filled:
            assert rows, f"panel {title!r} shows nothing on the demo data"
        if "$__from" in sql:
            # The time range filters: before the data there is nothing to show.
            assert conn.execute(_render(sql, BEFORE_THE_DATA)).fetchall() == [], title
    finally:
        conn.close()
