"""The dashboard report: offline in headless Chromium, escaped, the same on both backends."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.parquet import export_parquet
from pipeline.querylib import open_backend
from pipeline.report import ReportOptions, build_report, label, script_json
from tests.helpers import etl, make_demo, new_live_source

CHROMIUM = Path(os.environ.get("MCP_ANALYTICS_CHROMIUM", "/usr/bin/chromium"))
TABS = ("tools", "errors", "performance", "clients", "timeline")
# Data strings a hostile client or tool could send; they must show as text.
HOSTILE_TOOL = "<script>window.__xss = 1</script>"
HOSTILE_CLIENT = '<img src=x onerror="window.__xss = 2">'
HOSTILE_CATEGORY = "<b>bold</b>&amp;"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("report")
    source, _ = make_demo(tmp, calls=1500, seed=11)
    target = tmp / "analytics.db"
    etl(source, target)
    conn = sqlite3.connect(target)
    with conn:
        # The most called tool gets a hostile name, so it is in every tool chart.
        conn.execute(
            "UPDATE tool_executions SET tool_name = ? WHERE tool_name = 'ex'", (HOSTILE_TOOL,)
        )
        conn.execute("UPDATE errors SET tool_name = ? WHERE tool_name = 'ex'", (HOSTILE_TOOL,))
        conn.execute(
            "UPDATE errors SET error_category = ? WHERE error_category = 'internal_error'",
            (HOSTILE_CATEGORY,),
        )
        conn.execute(
            "UPDATE client_sessions SET client_name = ? WHERE client_name = 'claude-code'",
            (HOSTILE_CLIENT,),
        )
    conn.close()
    parquet = tmp / "parquet"
    export_parquet(target, parquet)
    html = tmp / "report.html"
    result = CliRunner().invoke(main, ["report", "--db", str(target), "--out", str(html)])
    assert result.exit_code == 0, result.output
    empty_source = tmp / "empty.db"
    new_live_source(empty_source)
    etl(empty_source)
    empty_html = tmp / "empty.html"
    result = CliRunner().invoke(
        main, ["report", "--db", str(empty_source), "--out", str(empty_html)]
    )
    assert result.exit_code == 0, result.output
    return {
        "target": target,
        "parquet": parquet,
        "html": html,
        "empty_html": empty_html,
        "shots": tmp / "shots",
    }


def _chart_data(page: str) -> Any:
    match = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S
    )
    assert match is not None
    return json.loads(match.group(1))


# Without a browser -------------------------------------------------------------------


def test_script_json_cannot_end_the_script_element() -> None:
    text = script_json({"name": "</script><script>alert(1)</script>", "s": "a\u2028b\u2029&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {
        "name": "</script><script>alert(1)</script>",
        "s": "a\u2028b\u2029&",
    }


def test_chart_labels_are_entity_escaped() -> None:
    assert label("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"
    assert label(None) == "(none)"


def test_the_page_inlines_everything(data: dict[str, Path]) -> None:
    page = data["html"].read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    assert "Content-Security-Policy" in page
    # Data never appears raw in the markup: tables are escaped, chart data is \u-escaped.
    assert HOSTILE_TOOL not in page and HOSTILE_CLIENT not in page
    assert html_escape(HOSTILE_TOOL) in page
    charts = _chart_data(page)["charts"]
    assert set(charts) >= {
        "calls_per_tool",
        "error_trend",
        "heatmap",
        "client_versions",
        "timeline",
    }
    assert all(c["points"] > 0 for c in charts.values()), {
        k: c["points"] for k, c in charts.items()
    }


def html_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
    )


def test_both_backends_give_the_same_charts(data: dict[str, Path]) -> None:
    pages = []
    for db, parquet in ((data["target"], None), (None, data["parquet"])):
        conn = open_backend(db, parquet)
        try:
            page, charts = build_report(conn, "x", ReportOptions())
        finally:
            conn.close()
        assert charts >= 10
        pages.append(_chart_data(page))
    assert pages[0] == pages[1]


def test_report_bad_invocations_change_nothing(data: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r.html"
    cases = [
        (
            ["report", "--out", str(out)],
            "error: give exactly one of --db DB or --parquet DIR",
        ),
        (
            [
                "report",
                "--db",
                str(data["target"]),
                "--parquet",
                str(data["parquet"]),
                "--out",
                str(out),
            ],
            "error: give exactly one of --db DB or --parquet DIR",
        ),
        (
            ["report", "--db", str(tmp_path / "missing.db"), "--out", str(out)],
            f"error: database {tmp_path / 'missing.db'} does not exist; "
            "give the database the ETL wrote",
        ),
        (
            ["report", "--db", str(data["target"]), "--out", str(tmp_path / "no" / "r.html")],
            f"error: the folder of --out {tmp_path / 'no' / 'r.html'} does not exist; "
            "create it first",
        ),
        (
            ["report", "--db", str(data["target"]), "--out", str(tmp_path)],
            f"error: --out {tmp_path} is a directory; give the path of the HTML file to write",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr == message + "\n"
        assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# In headless Chromium ----------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does), "
        "or set MCP_ANALYTICS_CHROMIUM"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(CHROMIUM))
        yield instance
        instance.close()


def _open(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    """A page on the file with every request recorded and all but the file refused."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    own = path.resolve().as_uri()

    def route(r: Any) -> None:
        requests.append(r.request.url)
        if r.request.url == own:
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)
    page.goto(own)
    return page, problems, requests


def _svg_text(page: Any, tab: str) -> str:
    """The text plotly drew in the tab's charts (legends, axes), one element a line."""
    texts: list[str] = page.locator(f"#panel-{tab} svg text").all_text_contents()
    return "\n".join(texts)


@pytest.mark.slow
def test_report_in_headless_chromium(browser: Any, data: dict[str, Path]) -> None:
    page, problems, requests = _open(browser, data["html"])
    data["shots"].mkdir(exist_ok=True)
    try:
        titles = page.locator("[role=tab]").all_text_contents()
        assert [t.strip() for t in titles] == [
            "Tool Analytics",
            "Error Dashboard",
            "Performance Monitor",
            "Client Activity",
            "Session Timeline",
        ]
        for tab in TABS:
            page.click(f"#tab-{tab}")
            panel = page.locator(f"#panel-{tab}")
            panel.locator(".js-plotly-plot").first.wait_for()
            assert panel.is_visible()
            drawn = panel.evaluate(
                """p => Array.from(p.querySelectorAll('.js-plotly-plot')).map(el => ({
                    id: el.id,
                    points: Number(el.getAttribute('data-points')),
                    // bars, markers, lines and heatmap images that plotly drew
                    marks: el.querySelectorAll(
                        '.point, .scatterlayer path.js-line, .heatmaplayer image'
                    ).length,
                }))"""
            )
            assert drawn, f"tab {tab} has no chart"
            assert all(c["points"] > 0 and c["marks"] > 0 for c in drawn), (tab, drawn)
            shot = data["shots"] / f"{tab}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
        # The hostile strings are shown as text, in tables and in chart text alike.
        page.click("#tab-tools")
        body_text = page.evaluate("document.body.innerText")
        assert HOSTILE_TOOL in body_text
        assert HOSTILE_TOOL in _svg_text(page, "tools")
        page.click("#tab-errors")
        # Shown as typed: not bold, and its entity not decoded.
        assert HOSTILE_CATEGORY in _svg_text(page, "errors")
        page.click("#tab-clients")
        assert HOSTILE_CLIENT in page.evaluate("document.body.innerText")
        assert page.evaluate("window.__xss") is None
        assert page.evaluate("document.querySelectorAll('script').length") == 3
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert problems == []
        assert requests == [data["html"].resolve().as_uri()]
    finally:
        page.close()


@pytest.mark.slow
def test_empty_report_loads_cleanly(browser: Any, data: dict[str, Path]) -> None:
    page, problems, requests = _open(browser, data["empty_html"])
    try:
        for tab in TABS:
            page.click(f"#tab-{tab}")
            page.locator(f"#panel-{tab} .js-plotly-plot").first.wait_for()
        assert "No data in this period" in page.evaluate("document.body.innerText")
        assert problems == []
        assert requests == [data["empty_html"].resolve().as_uri()]
    finally:
        page.close()
