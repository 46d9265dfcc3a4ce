"""The dashboard report: one self-contained HTML file with the design's five tabs.

The data comes from the same two backends as the query library (DuckDB over the SQLite
target or over the Parquet export, pipeline/querylib.py), through library queries and
the report's own SQL in queries/report/. Charts are plotly figures; plotly.js is
inlined from the plotly package, so the page works offline and loads nothing.

Escaping, the one rule that makes a data-driven page safe:
- HTML text (tables, headers) goes through Jinja2 with autoescape;
- the figures are JSON inside <script type="application/json">, with <, >, & and
  U+2028/U+2029 written as \\uXXXX, so no data can close the script element;
- plotly renders a few HTML-like tags (<b>, <br>, <a>) in chart text, so every string
  from the data is also entity-escaped before it becomes a label (plotly shows the
  entities as the characters they stand for).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import plotly.graph_objects as go
import plotly.offline
from markupsafe import Markup

from pipeline import querylib
from pipeline.errors import BadInvocation, PipelineError
from pipeline.queries import QUERIES_DIR

REPORT_QUERIES = QUERIES_DIR / "report"
TEMPLATES = Path(__file__).resolve().parent / "templates"
# The span of data (within the report's window) up to which trends use hour buckets.
HOURLY_UP_TO_DAYS = 3
TOP_TOOLS = 10
STATUS_COLORS = {
    "success": "#2f9e44",
    "error": "#e03131",
    "timeout": "#f08c00",
    "cancelled": "#868e96",
    "pending": "#1c7ed6",
}
STATE_SYMBOLS = {
    "created": "star",
    "initialized": "diamond",
    "connected": "triangle-up",
    "disconnected": "triangle-down",
    "reconnecting": "hourglass",
    "error": "x",
    "terminated": "square",
}
HIST_BINS = (
    ("hist_10ms", "≤ 10 ms"),
    ("hist_20ms", "≤ 20 ms"),
    ("hist_50ms", "≤ 50 ms"),
    ("hist_100ms", "≤ 100 ms"),
    ("hist_200ms", "≤ 200 ms"),
    ("hist_500ms", "≤ 500 ms"),
    ("hist_1s", "≤ 1 s"),
    ("hist_2s", "≤ 2 s"),
    ("hist_5s", "≤ 5 s"),
    ("hist_10s", "≤ 10 s"),
    ("hist_30s", "≤ 30 s"),
    ("hist_60s", "≤ 60 s"),
    ("hist_120s", "≤ 120 s"),
    ("hist_300s", "≤ 300 s"),
    ("hist_inf", "> 300 s"),
)


@dataclass(frozen=True)
class ReportOptions:
    # Trend charts cover this many days of data, counted back from the newest row.
    days: int = 7
    # The session timeline shows this many client sessions and REPLs (the most recent).
    sessions: int = 20
    # Rows of the tables (slowest executions, hot spots, unresolved errors).
    table_rows: int = 15


@dataclass(frozen=True)
class ReportSummary:
    """What write_report wrote, for the CLI line and the tests."""

    out: Path
    size_bytes: int
    charts: int
    seconds: float


@dataclass
class Chart:
    id: str
    title: str
    figure: dict[str, Any]
    points: int
    wide: bool = False


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Tab:
    id: str
    title: str
    about: str
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


# Values ------------------------------------------------------------------------------


def _ts(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def label(value: Any) -> str:
    """A data string as chart text: entity-escaped, since plotly renders tags in labels."""
    if value is None:
        return "(none)"
    return html.escape(str(value), quote=False)


def cell(value: Any) -> str:
    """A value as table text (the template escapes it)."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return _ts(value) or ""
    if isinstance(value, float | Decimal):
        number = float(value)
        return f"{number:,.3f}".rstrip("0").rstrip(".") if math.isfinite(number) else ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no data can end the element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _inline_script(text: str) -> Markup:
    """Our own script or style text, inlined; `</script` must not occur in it."""
    return Markup(re.sub(r"</(script|style)", r"<\\/\1", text, flags=re.IGNORECASE))


# Data --------------------------------------------------------------------------------


def _query(conn: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a library query (NAME) or of the report's own (report/NAME) as dicts."""
    if name.startswith("report/"):
        query = querylib.parse_query(REPORT_QUERIES / f"{name.removeprefix('report/')}.sql")
    else:
        query = querylib.load_query(name)
    result = querylib.run_query(conn, query, {k: str(v) for k, v in params.items()})
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


# Figures -----------------------------------------------------------------------------


def _layout(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "template": "plotly_white",
        "margin": {"l": 60, "r": 20, "t": 20, "b": 50},
        "height": 380,
        "legend": {"orientation": "h", "y": -0.18},
        "hoverlabel": {"namelength": -1},
    }
    base.update(extra)
    return base


def _points(trace: Any) -> int:
    """The values a trace plots (cells for a heatmap)."""
    z = trace.z if isinstance(trace, go.Heatmap) else None
    if z is not None:
        return sum(len(row) for row in z)
    values = trace.x if trace.x is not None else trace.y
    return len([v for v in values or () if v is not None])


def _figure(traces: Sequence[Any], layout: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """A plotly figure (validated by plotly) as a JSON-ready dict, and its point count."""
    fig = go.Figure(data=list(traces), layout=dict(layout))
    points = sum(_points(t) for t in traces)
    if points == 0:
        fig.add_annotation(
            text="No data in this period",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            font={"size": 16, "color": "#7b8794"},
        )
    spec: dict[str, Any] = json.loads(fig.to_json())
    return spec, points


def _chart(
    chart_id: str,
    title: str,
    traces: Sequence[Any],
    layout: Mapping[str, Any],
    wide: bool = False,
) -> Chart:
    spec, points = _figure(traces, layout)
    return Chart(id=chart_id, title=title, figure=spec, points=points, wide=wide)


def _table(title: str, rows: list[dict[str, Any]], columns: Sequence[str]) -> Table:
    return Table(
        title=title,
        columns=list(columns),
        rows=[[cell(r.get(c)) for c in columns] for r in rows],
    )


# Tabs --------------------------------------------------------------------------------


def _tool_tab(conn: duckdb.DuckDBPyConnection, o: ReportOptions, bucket: str) -> Tab:
    tab = Tab(
        "tools",
        "Tool Analytics",
        "Which tools are called, how often they succeed and how long they take. Success "
        "rate counts settled calls (all but pending); latencies are over the calls that got "
        "a response.",
    )
    usage = _query(conn, "tool_usage_trend", bucket=bucket, days=o.days)
    totals: dict[str, int] = {}
    for r in usage:
        totals[r["tool_name"]] = totals.get(r["tool_name"], 0) + int(r["calls"])
    top = sorted(totals, key=lambda t: (-totals[t], t))[:TOP_TOOLS]
    series: dict[str, dict[str, int]] = {}
    for r in usage:
        name = r["tool_name"] if r["tool_name"] in top else "(other tools)"
        per = series.setdefault(name, {})
        key = _ts(r["bucket_start"]) or ""
        per[key] = per.get(key, 0) + int(r["calls"])
    order = [t for t in top if t in series] + (
        ["(other tools)"] if "(other tools)" in series else []
    )
    traces = [go.Bar(x=list(series[t]), y=list(series[t].values()), name=label(t)) for t in order]
    tab.charts.append(
        _chart(
            "calls_per_tool",
            f"Calls per tool per {bucket}",
            traces,
            _layout(barmode="stack", yaxis={"title": {"text": "calls"}}),
            wide=True,
        )
    )
    rates = _query(conn, "tool_success_rate")
    rates = sorted(rates, key=lambda r: (-int(r["calls"]), r["tool_name"]))[: TOP_TOOLS * 2]
    tab.charts.append(
        _chart(
            "success_rate",
            "Success rate per tool (most called first)",
            [
                go.Bar(
                    x=[label(r["tool_name"]) for r in rates],
                    y=[_num(r["success_rate_pct"]) for r in rates],
                    customdata=[
                        [r["calls"], r["error"], r["timeout"], r["cancelled"]] for r in rates
                    ],
                    hovertemplate="%{x}<br>success %{y:.1f} %<br>calls %{customdata[0]}, "
                    "errors %{customdata[1]}, timeouts %{customdata[2]}, "
                    "cancelled %{customdata[3]}<extra></extra>",
                    marker={"color": "#2f9e44"},
                    name="success rate",
                )
            ],
            _layout(yaxis={"title": {"text": "% of settled calls"}, "range": [0, 100]}),
        )
    )
    perf = _query(conn, "tool_performance_comparison", days=o.days)
    perf = sorted(perf, key=lambda r: (-int(r["calls"]), r["tool_name"]))[: TOP_TOOLS * 2]
    tools = [label(r["tool_name"]) for r in perf]
    tab.charts.append(
        _chart(
            "latency_per_tool",
            f"p50 / p95 / p99 per tool, last {o.days} days (ms, log scale)",
            [
                go.Bar(x=tools, y=[_num(r[f"{p}_ms"]) for r in perf], name=p)
                for p in ("p50", "p95", "p99")
            ],
            _layout(barmode="group", yaxis={"type": "log", "title": {"text": "ms"}}),
        )
    )
    slow = _query(conn, "slowest_executions", limit=o.table_rows)
    tab.charts.append(
        _chart(
            "slowest",
            "Slowest executions (ms)",
            [
                go.Bar(
                    y=[f"#{i + 1} {label(r['tool_name'])}" for i, r in enumerate(slow)],
                    x=[_num(r["duration_ms"]) for r in slow],
                    orientation="h",
                    marker={"color": [STATUS_COLORS.get(r["status"], "#495057") for r in slow]},
                    customdata=[[_ts(r["request_time"]), label(r["session_id"])] for r in slow],
                    hovertemplate="%{y}: %{x:,.0f} ms<br>at %{customdata[0]}<br>"
                    "session %{customdata[1]}<extra></extra>",
                    name="duration",
                )
            ],
            _layout(yaxis={"autorange": "reversed"}, xaxis={"title": {"text": "ms"}}),
        )
    )
    tab.tables.append(
        _table(
            "Slowest executions",
            slow,
            (
                "request_time",
                "tool_name",
                "duration_ms",
                "status",
                "client_name",
                "session_id",
                "request_id",
                "output_size",
            ),
        )
    )
    return tab


def _error_tab(conn: duckdb.DuckDBPyConnection, o: ReportOptions, bucket: str) -> Tab:
    tab = Tab(
        "errors",
        "Error Dashboard",
        "Errors by category over time, where they cluster, and what is still unresolved "
        "(`mcp-analytics errors resolve ID` marks one resolved).",
    )
    trend = _query(conn, "report/error_trend_by_category", bucket=bucket, days=o.days)
    categories = sorted({r["error_category"] for r in trend})
    traces = []
    for category in categories:
        rows = [r for r in trend if r["error_category"] == category]
        traces.append(
            go.Bar(
                x=[_ts(r["bucket_start"]) for r in rows],
                y=[r["errors"] for r in rows],
                customdata=[r["unresolved"] for r in rows],
                hovertemplate="%{x}: %{y} errors (%{customdata} unresolved)",
                name=label(category),
            )
        )
    tab.charts.append(
        _chart(
            "error_trend",
            f"Errors per {bucket} by category",
            traces,
            _layout(barmode="stack", yaxis={"title": {"text": "errors"}}),
            wide=True,
        )
    )
    spots = _query(conn, "report/error_hotspots", limit=o.table_rows)
    names = [
        f"{label(r['subject'])} · {label(r['error_category'])} ({label(r['error_type'])})"
        for r in spots
    ]
    tab.charts.append(
        _chart(
            "hotspots",
            "Error hot spots: unresolved and resolved",
            [
                go.Bar(
                    y=names,
                    x=[r["unresolved"] for r in spots],
                    orientation="h",
                    name="unresolved",
                    marker={"color": "#e03131"},
                ),
                go.Bar(
                    y=names,
                    x=[int(r["errors"]) - int(r["unresolved"]) for r in spots],
                    orientation="h",
                    name="resolved",
                    marker={"color": "#adb5bd"},
                ),
            ],
            _layout(
                barmode="stack",
                yaxis={"autorange": "reversed", "automargin": True},
                xaxis={"title": {"text": "errors"}},
                height=max(380, 60 + 26 * len(spots)),
            ),
            wide=True,
        )
    )
    tab.tables.append(
        _table(
            "Hot spots",
            spots,
            (
                "subject",
                "error_type",
                "error_category",
                "errors",
                "unresolved",
                "sessions",
                "last_occurrence",
            ),
        )
    )
    recent = _query(conn, "unresolved_errors", limit=o.table_rows)
    tab.tables.append(
        _table(
            "Newest unresolved errors",
            recent,
            (
                "id",
                "timestamp",
                "error_type",
                "error_code",
                "error_category",
                "tool_name",
                "method",
                "session_id",
                "message",
            ),
        )
    )
    return tab


def _performance_tab(conn: duckdb.DuckDBPyConnection, o: ReportOptions, bucket: str) -> Tab:
    tab = Tab(
        "performance",
        "Performance Monitor",
        "Exact latency percentiles of all tools per bucket, the latency histogram on the "
        "OpenTelemetry MCP boundaries, and the load (from performance_metrics).",
    )
    resolution = "latency_1h" if bucket == "hour" else "latency_1d"
    rows = _query(conn, "report/latency_over_time", resolution=resolution, days=o.days)
    x = [_ts(r["bucket_start"]) for r in rows]
    tab.charts.append(
        _chart(
            "percentiles",
            f"p50 / p95 / p99 per {bucket}, all tools (ms, log scale)",
            [
                go.Scatter(x=x, y=[_num(r[f"{p}_ms"]) for r in rows], mode="lines+markers", name=p)
                for p in ("p50", "p95", "p99")
            ],
            _layout(yaxis={"type": "log", "title": {"text": "ms"}}),
            wide=True,
        )
    )
    z = [[int(r[col] or 0) for r in rows] for col, _ in HIST_BINS] if rows else []
    tab.charts.append(
        _chart(
            "heatmap",
            f"Latency histogram per {bucket} (calls per bin)",
            [
                go.Heatmap(
                    x=x,
                    y=[name for _, name in HIST_BINS],
                    z=z,
                    colorscale="Viridis",
                    hovertemplate="%{x}<br>%{y}: %{z} calls<extra></extra>",
                )
            ]
            if rows
            else [],
            _layout(margin={"l": 80, "r": 20, "t": 20, "b": 50}),
        )
    )
    tab.charts.append(
        _chart(
            "load",
            f"Calls and errors per {bucket}",
            [
                go.Bar(x=x, y=[r["execution_count"] for r in rows], name="calls with a response"),
                go.Bar(x=x, y=[r["error_count"] for r in rows], name="errors"),
            ],
            _layout(barmode="overlay", yaxis={"title": {"text": "calls"}}),
        )
    )
    return tab


def _client_tab(conn: duckdb.DuckDBPyConnection, o: ReportOptions) -> Tab:
    tab = Tab(
        "clients",
        "Client Activity",
        "MCP clients by name and version, and their sessions: active, disconnected after "
        "the idle timeout, or terminated by the proxy.",
    )
    versions = _query(conn, "client_versions")
    by_version: dict[str, dict[str, int]] = {}
    for r in versions:
        per = by_version.setdefault(r["client_version"] or "(unknown)", {})
        per[r["client_name"]] = per.get(r["client_name"], 0) + int(r["sessions"])
    tab.charts.append(
        _chart(
            "client_versions",
            "Client sessions by client and version",
            [
                go.Bar(
                    x=[label(c) for c in per],
                    y=list(per.values()),
                    name=label(version),
                    text=[label(version)] * len(per),
                    textposition="inside",
                    hovertemplate="%{x} "
                    + label(version).replace("%{", "%&#123;")  # data, not a placeholder
                    + ": %{y} sessions<extra></extra>",
                )
                for version, per in sorted(by_version.items())
            ],
            _layout(barmode="stack", showlegend=False, yaxis={"title": {"text": "sessions"}}),
        )
    )
    status = _query(conn, "client_status")
    kinds = sorted({r["session_kind"] for r in status})
    tab.charts.append(
        _chart(
            "client_status",
            "Sessions: active vs disconnected vs terminated",
            [
                go.Bar(
                    x=[label(r["status"]) for r in status if r["session_kind"] == kind],
                    y=[r["sessions"] for r in status if r["session_kind"] == kind],
                    name=label(kind),
                )
                for kind in kinds
            ],
            _layout(barmode="stack", yaxis={"title": {"text": "sessions"}}),
        )
    )
    clients = _query(conn, "clients_in_use")
    tab.charts.append(
        _chart(
            "client_requests",
            "Requests and errors per client",
            [
                go.Bar(
                    x=[label(r["client_name"]) for r in clients],
                    y=[r["total_requests"] for r in clients],
                    name="requests",
                ),
                go.Bar(
                    x=[label(r["client_name"]) for r in clients],
                    y=[r["total_errors"] for r in clients],
                    name="errors",
                ),
            ],
            _layout(barmode="group", yaxis={"title": {"text": "requests"}}),
        )
    )
    tab.tables.append(
        _table(
            "Clients",
            clients,
            (
                "client_name",
                "sessions",
                "active_sessions",
                "versions",
                "first_connect",
                "last_activity",
                "total_requests",
                "total_errors",
            ),
        )
    )
    return tab


def _timeline_tab(conn: duckdb.DuckDBPyConnection, o: ReportOptions) -> Tab:
    tab = Tab(
        "timeline",
        "Session Timeline",
        f"The {o.sessions} client sessions and REPLs active most recently: their lifecycle "
        "changes (large symbols) and tool calls (dots coloured by outcome).",
    )
    rows = _query(conn, "report/timeline", sessions=o.sessions, days=o.days)
    lanes: list[str] = []
    for r in rows:
        lane = label(r["label"])
        if lane not in lanes:
            lanes.append(lane)
    spans_x: list[str | None] = []
    spans_y: list[str | None] = []
    for lane in lanes:
        times = [_ts(r["event_time"]) for r in rows if label(r["label"]) == lane]
        spans_x += [min(t for t in times if t), max(t for t in times if t), None]
        spans_y += [lane, lane, None]
    traces: list[Any] = [
        go.Scatter(
            x=spans_x,
            y=spans_y,
            mode="lines",
            line={"color": "#ced4da", "width": 6},
            hoverinfo="skip",
            showlegend=False,
        )
    ]
    calls = [r for r in rows if r["kind"] == "call"]
    for status, color in STATUS_COLORS.items():
        picked = [r for r in calls if r["status"] == status]
        if picked:
            traces.append(
                go.Scatter(
                    x=[_ts(r["event_time"]) for r in picked],
                    y=[label(r["label"]) for r in picked],
                    mode="markers",
                    marker={"color": color, "size": 6, "opacity": 0.7},
                    name=f"call: {status}",
                    customdata=[[label(r["what"]), _num(r["duration_ms"])] for r in picked],
                    hovertemplate="%{x}<br>%{customdata[0]} "
                    + status
                    + " (%{customdata[1]:,.0f} ms)<extra></extra>",
                )
            )
    states = [r for r in rows if r["kind"] == "state"]
    for state in sorted({r["what"] for r in states}):
        picked = [r for r in states if r["what"] == state]
        traces.append(
            go.Scatter(
                x=[_ts(r["event_time"]) for r in picked],
                y=[label(r["label"]) for r in picked],
                mode="markers",
                marker={
                    "symbol": STATE_SYMBOLS.get(state, "circle"),
                    "size": 12,
                    "line": {"width": 1, "color": "#1f2933"},
                },
                name=f"state: {label(state)}",
                customdata=[[label(r["status"]), label(r["detail"])] for r in picked],
                hovertemplate="%{x}<br>→ "
                + label(state)
                + " (by %{customdata[0]}: %{customdata[1]})<extra></extra>",
            )
        )
    tab.charts.append(
        _chart(
            "timeline",
            "Lifecycle events and tool calls per session",
            traces if rows else [],
            _layout(
                height=max(380, 120 + 30 * len(lanes)),
                yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
                legend={"orientation": "h", "y": -0.08},
                margin={"l": 20, "r": 20, "t": 20, "b": 40},
            ),
            wide=True,
        )
    )
    transitions = _query(conn, "lifecycle_transitions")
    tab.tables.append(
        _table(
            "State changes",
            transitions,
            (
                "entity_type",
                "from_state",
                "to_state",
                "triggered_by",
                "transitions",
                "sessions",
                "avg_seconds_in_from_state",
            ),
        )
    )
    return tab


# The page ----------------------------------------------------------------------------


def _bucket(overview: Mapping[str, Any], days: int) -> str:
    first, last = overview.get("first_call"), overview.get("last_call")
    if isinstance(first, datetime) and isinstance(last, datetime):
        span_days = (last - first).total_seconds() / 86400
        if min(span_days, days) > HOURLY_UP_TO_DAYS:
            return "day"
    return "hour"


def build_report(
    conn: duckdb.DuckDBPyConnection, source_label: str, options: ReportOptions
) -> tuple[str, int]:
    """The report page for the tables behind conn; returns the HTML and the chart count."""
    overview = _query(conn, "report/overview")[0]
    bucket = _bucket(overview, options.days)
    tabs = [
        _tool_tab(conn, options, bucket),
        _error_tab(conn, options, bucket),
        _performance_tab(conn, options, bucket),
        _client_tab(conn, options),
        _timeline_tab(conn, options),
    ]
    charts = {
        c.id: {
            "data": c.figure.get("data", []),
            "layout": c.figure.get("layout", {}),
            "points": c.points,
        }
        for t in tabs
        for c in t.charts
    }
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    page = env.get_template("report.html.j2").render(
        title="mcp-analytics report",
        source=source_label,
        days=options.days,
        bucket=bucket,
        generated_at=f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        overview={k: (cell(v) if v is not None else "–") for k, v in overview.items()},
        tabs=tabs,
        css=_inline_script((TEMPLATES / "report.css").read_text(encoding="utf-8")),
        app_js=_inline_script((TEMPLATES / "report.js").read_text(encoding="utf-8")),
        plotly_js=_inline_script(plotly.offline.get_plotlyjs()),
        data_json=Markup(script_json({"charts": charts})),
    )
    return page, len(charts)


def check_out_path(out: Path) -> None:
    """A bad --out is a bad invocation: checked before any data is read."""
    if out.is_dir():
        msg = f"--out {out} is a directory; give the path of the HTML file to write"
        raise BadInvocation(msg)
    if not out.parent.is_dir():
        msg = f"the folder of --out {out} does not exist; create it first"
        raise BadInvocation(msg)


def write_report(
    db: Path | None, parquet: Path | None, out: Path, options: ReportOptions
) -> ReportSummary:
    """Read either backend and write the page atomically (a temporary file, then rename)."""
    started = time.perf_counter()
    check_out_path(out)
    conn = querylib.open_backend(db, parquet)
    try:
        source_label = f"SQLite {db}" if db is not None else f"Parquet {parquet}"
        page, charts = build_report(conn, source_label, options)
    finally:
        conn.close()
    data = page.encode("utf-8")
    # A fresh name opened with "x" gets the usual permissions (umask), unlike mkstemp's 0600.
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        try:
            with tmp.open("xb") as fh:
                fh.write(data)
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        msg = f"cannot write {out}: {exc.strerror}"
        raise PipelineError(msg) from exc
    return ReportSummary(
        out=out, size_bytes=len(data), charts=charts, seconds=time.perf_counter() - started
    )


__all__ = ["ReportOptions", "ReportSummary", "build_report", "label", "script_json", "write_report"]
