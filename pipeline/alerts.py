"""Alerting: rules over the analytics tables, evaluated on demand or after each ETL run.

Each rule is one SQL file in queries/alerts/ that returns the firing rows (zero rows:
quiet), run in DuckDB over the SQLite target like the query library. Windows count back
from the newest data timestamp, never the wall clock, so the same data always gives the
same alerts. Firing alerts are appended to the `alerts` table of the target
(queries/alerts/schema.sql) for Grafana and Metabase. The rules and their defaults are
documented in docs/report.md; `alerts.default.toml` spells the defaults out.
"""

from __future__ import annotations

import sqlite3
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from pipeline import querylib
from pipeline.errors import BadInvocation, TargetError
from pipeline.queries import QUERIES_DIR, sql
from pipeline.transform.sessions import format_ts

ALERT_QUERIES = QUERIES_DIR / "alerts"


# Rules and their defaults ------------------------------------------------------------


@dataclass(frozen=True)
class ErrorRate:
    """A tool fails too often now: error rate over the last window_hours of calls."""

    enabled: bool = True
    window_hours: float = 1.0
    min_calls: int = 20
    threshold_pct: float = 25.0


@dataclass(frozen=True)
class LatencyP95:
    """A tool got slower: p95 of the last window above factor × its trailing p95."""

    enabled: bool = True
    window_hours: float = 24.0
    baseline_hours: float = 168.0
    min_calls: int = 20
    factor: float = 2.0


@dataclass(frozen=True)
class TimeoutsRising:
    """More calls of a tool time out or are cancelled than they used to."""

    enabled: bool = True
    window_hours: float = 24.0
    baseline_hours: float = 168.0
    min_count: int = 5
    factor: float = 2.0


@dataclass(frozen=True)
class NewErrorCategory:
    """An error category appears that the load never had before."""

    enabled: bool = True
    window_hours: float = 24.0


@dataclass(frozen=True)
class UnresolvedGrowing:
    """Unresolved errors pile up faster than they used to."""

    enabled: bool = True
    window_hours: float = 24.0
    baseline_hours: float = 168.0
    min_count: int = 10
    factor: float = 2.0


Rule = ErrorRate | LatencyP95 | TimeoutsRising | NewErrorCategory | UnresolvedGrowing


@dataclass(frozen=True)
class Rules:
    """Every rule, by its name in the TOML file (a [section] each)."""

    error_rate: ErrorRate = ErrorRate()
    latency_p95: LatencyP95 = LatencyP95()
    timeouts_rising: TimeoutsRising = TimeoutsRising()
    new_error_category: NewErrorCategory = NewErrorCategory()
    unresolved_growing: UnresolvedGrowing = UnresolvedGrowing()

    def enabled(self) -> list[tuple[str, Rule]]:
        rules = [(f.name, getattr(self, f.name)) for f in fields(self)]
        return [(name, rule) for name, rule in rules if rule.enabled]


def _check_value(path: Path, section: str, key: str, value: Any, kind: type) -> Any:
    where = f"rules file {path}: [{section}] {key}"
    if kind is bool:
        if not isinstance(value, bool):
            msg = f"{where} must be true or false, not {value!r}"
            raise BadInvocation(msg)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{where} must be a number, not {value!r}"
        raise BadInvocation(msg)
    if kind is int and not isinstance(value, int):
        msg = f"{where} must be a whole number, not {value!r}"
        raise BadInvocation(msg)
    if value < 0 or (key.endswith("_hours") and value <= 0):
        msg = (
            f"{where} must be {'above' if key.endswith('_hours') else 'at least'} 0, not {value!r}"
        )
        raise BadInvocation(msg)
    return kind(value)


def parse_rules(text: str, path: Path) -> Rules:
    """Rules from TOML text: each [section] overrides the defaults of one rule."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"rules file {path} is not valid TOML: {exc}"
        raise BadInvocation(msg) from exc
    rules = Rules()
    known = {f.name: f for f in fields(Rules)}
    for section, table in doc.items():
        if section not in known:
            msg = f"rules file {path}: unknown rule [{section}]; the rules are " + ", ".join(known)
            raise BadInvocation(msg)
        if not isinstance(table, dict):
            msg = f"rules file {path}: {section} must be a [{section}] table"
            raise BadInvocation(msg)
        current = getattr(rules, section)
        types = {f.name: type(getattr(current, f.name)) for f in fields(current)}
        changes: dict[str, Any] = {}
        for key, value in table.items():
            if key not in types:
                msg = (
                    f"rules file {path}: [{section}] has no setting {key!r}; its settings are "
                    + ", ".join(types)
                )
                raise BadInvocation(msg)
            changes[key] = _check_value(path, section, key, value, types[key])
        rules = replace(rules, **{section: replace(current, **changes)})
    return rules


def load_rules(path: Path | None) -> Rules:
    """The built-in defaults, overridden by the rules file when one is given."""
    if path is None:
        return Rules()
    if not path.is_file():
        msg = f"rules file {path} does not exist; give a TOML file (see alerts.default.toml)"
        raise BadInvocation(msg)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read rules file {path}: {exc}"
        raise BadInvocation(msg) from exc
    return parse_rules(text, path)


# Evaluation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One firing: a row of the alerts table."""

    rule: str
    subject: str
    value: float | None
    threshold: float | None
    window_start: str | None
    window_end: str | None
    message: str


@dataclass(frozen=True)
class AlertRun:
    """What one `alerts` run found."""

    alert_run_id: str
    run_time: str
    data_time: str | None
    rules_checked: list[str]
    alerts: list[Alert]


def _ts(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_ts(value)
    return str(value)


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _hours(value: float) -> str:
    return f"{value:g} h"


def _msg_error_rate(r: Mapping[str, Any], rule: Any) -> str:
    return (
        f"tool {r['subject']}: {r['errors']} of {r['calls']} calls failed in the last "
        f"{_hours(rule.window_hours)} ({r['value']:.1f} % > {rule.threshold_pct:g} %)"
    )


def _msg_latency(r: Mapping[str, Any], rule: Any) -> str:
    return (
        f"tool {r['subject']}: p95 {r['value']:,.0f} ms over the last "
        f"{_hours(rule.window_hours)} ({r['recent_calls']} calls) is above {rule.factor:g} × "
        f"its p95 of {r['baseline_p95']:,.0f} ms over the {_hours(rule.baseline_hours)} "
        f"before ({r['baseline_calls']} calls)"
    )


def _msg_timeouts(r: Mapping[str, Any], rule: Any) -> str:
    base = 100.0 * r["baseline_lost"] / r["baseline_calls"]
    return (
        f"tool {r['subject']}: {r['recent_lost']} of {r['recent_calls']} calls timed out or "
        f"were cancelled in the last {_hours(rule.window_hours)} ({r['value']:.1f} %), "
        f"above {rule.factor:g} × the {base:.1f} % of the {_hours(rule.baseline_hours)} before"
    )


def _msg_new_category(r: Mapping[str, Any], rule: Any) -> str:
    return (
        f"error category {r['subject']} is new: first seen {_ts(r['first_seen'])}, "
        f"{r['recent_errors']} errors in the last {_hours(rule.window_hours)}, none before"
    )


def _msg_unresolved(r: Mapping[str, Any], rule: Any) -> str:
    per_window = r["baseline_unresolved"] * rule.window_hours / rule.baseline_hours
    return (
        f"{r['recent_unresolved']} errors of the last {_hours(rule.window_hours)} are "
        f"unresolved, above {rule.factor:g} × the {per_window:.1f} per "
        f"{_hours(rule.window_hours)} of the {_hours(rule.baseline_hours)} before"
    )


MESSAGES: dict[str, Callable[[Mapping[str, Any], Any], str]] = {
    "error_rate": _msg_error_rate,
    "latency_p95": _msg_latency,
    "timeouts_rising": _msg_timeouts,
    "new_error_category": _msg_new_category,
    "unresolved_growing": _msg_unresolved,
}


def evaluate(conn: duckdb.DuckDBPyConnection, rules: Rules) -> tuple[str | None, list[Alert]]:
    """The newest data timestamp and the alerts that fire on the tables behind conn."""
    data_time = conn.execute(sql("alerts/data_time")).fetchone()
    now = data_time[0] if data_time else None
    if now is None:
        return None, []
    fired: list[Alert] = []
    for name, rule in rules.enabled():
        query = querylib.parse_query(ALERT_QUERIES / f"{name}.sql")
        params = {"now": _ts(now) or ""}
        params |= {f.name: str(getattr(rule, f.name)) for f in fields(rule) if f.name != "enabled"}
        result = querylib.run_query(conn, query, params)
        for row in result.rows:
            r = dict(zip(result.columns, row, strict=True))
            fired.append(
                Alert(
                    rule=name,
                    subject=str(r["subject"]) if r["subject"] is not None else "(none)",
                    value=_rounded(r["value"]),
                    threshold=_rounded(r["threshold"]),
                    window_start=_ts(r["window_start"]),
                    window_end=_ts(r["window_end"]),
                    message=MESSAGES[name](r, rule),
                )
            )
    return _ts(now), fired


def write_alerts(db: Path, run: AlertRun, busy_timeout_ms: int = 5000) -> None:
    """Create the alerts table if needed and append this run's firings, in one transaction."""
    try:
        conn = sqlite3.connect(db, timeout=busy_timeout_ms / 1000)
        try:
            with conn:
                conn.executescript(sql("alerts/schema"))
            with conn:
                conn.executemany(
                    "INSERT INTO alerts (alert_run_id, run_time, data_time, rule, subject, "
                    "value, threshold, window_start, window_end, message) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            run.alert_run_id,
                            run.run_time,
                            run.data_time,
                            a.rule,
                            a.subject,
                            a.value,
                            a.threshold,
                            a.window_start,
                            a.window_end,
                            a.message,
                        )
                        for a in run.alerts
                    ],
                )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        msg = f"cannot write the alerts table in {db}: {exc}"
        raise TargetError(msg) from exc


def run_alerts(db: Path, rules: Rules) -> AlertRun:
    """Evaluate every enabled rule on db and append the firings to its alerts table."""
    started = datetime.now()
    conn = querylib.open_sqlite_backend(db)
    try:
        data_time, fired = evaluate(conn, rules)
    finally:
        conn.close()
    run = AlertRun(
        alert_run_id=f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        run_time=format_ts(started),
        data_time=data_time,
        rules_checked=[name for name, _ in rules.enabled()],
        alerts=fired,
    )
    # Written even when nothing fired: the table then exists for dashboards to query.
    write_alerts(db, run)
    return run


def format_alerts(run: AlertRun, fmt: str) -> str:
    """The firings as a table (or a line saying none fired) or a JSON array."""
    columns = ["rule", "subject", "value", "threshold", "window_start", "window_end", "message"]
    rows = [
        (a.rule, a.subject, a.value, a.threshold, a.window_start, a.window_end, a.message)
        for a in run.alerts
    ]
    if fmt == "json":
        return querylib.format_result(querylib.QueryResult(columns, [], rows), "json")
    if not run.alerts:
        return (
            f"no alerts: {len(run.rules_checked)} rules checked "
            f"({', '.join(run.rules_checked) or 'none enabled'}), "
            f"data up to {run.data_time or 'none'}\n"
        )
    # The table leaves the windows out (they are in the messages, the JSON and the table).
    shown = querylib.QueryResult(
        ["rule", "subject", "value", "threshold", "message"],
        [],
        [(r[0], r[1], r[2], r[3], r[6]) for r in rows],
    )
    title = f"{len(run.alerts)} alerts fired (data up to {run.data_time})"
    return querylib.format_result(shown, "table", title)


__all__ = [
    "Alert",
    "AlertRun",
    "Rules",
    "evaluate",
    "format_alerts",
    "load_rules",
    "parse_rules",
    "run_alerts",
    "write_alerts",
]
