"""Latency buckets for performance_metrics (SPEC §6): exact percentiles and histograms.

Every percentile the project publishes is computed here, with one interpolation rule:
linear between the two nearest ranks, numpy's default (`numpy.percentile(..., method=
"linear")`). A bucket is an hour or a day of request times in the producer's local clock
(the timestamps carry no zone), per tool and for all tools (tool_name NULL).
"""

from __future__ import annotations

from typing import Final

import polars as pl

PERCENTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}
INTERPOLATION: Final = "linear"

# The OpenTelemetry MCP duration histogram boundaries (seconds), as column -> upper bound
# in ms. Each column counts the durations in (previous bound, bound]; hist_inf the rest.
HISTOGRAM_MS = {
    "hist_10ms": 10.0,
    "hist_20ms": 20.0,
    "hist_50ms": 50.0,
    "hist_100ms": 100.0,
    "hist_200ms": 200.0,
    "hist_500ms": 500.0,
    "hist_1s": 1_000.0,
    "hist_2s": 2_000.0,
    "hist_5s": 5_000.0,
    "hist_10s": 10_000.0,
    "hist_30s": 30_000.0,
    "hist_60s": 60_000.0,
    "hist_120s": 120_000.0,
    "hist_300s": 300_000.0,
}

# metric_name -> (length of the timestamp prefix that names the bucket, padding, seconds)
BUCKETS = {
    "latency_1h": (13, ":00:00.000", 3_600),
    "latency_1d": (10, " 00:00:00.000", 86_400),
}

METRIC_COLUMNS = (
    "session_id",
    "timestamp",
    "metric_type",
    "metric_name",
    "duration_ms",
    "throughput",
    "tool_name",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "execution_count",
    "error_count",
    "min_ms",
    "max_ms",
    "bucket_seconds",
    *HISTOGRAM_MS,
    "hist_inf",
    "metric_date",
)

# performance_metrics.session_id is NOT NULL in the design; these rows span all sessions.
ALL_SESSIONS = "*"


def percentile(column: str, q: float) -> pl.Expr:
    return pl.col(column).quantile(q, interpolation=INTERPOLATION)


def _histogram() -> list[pl.Expr]:
    exprs: list[pl.Expr] = []
    lower: float | None = None
    d = pl.col("duration_ms")
    for name, upper in HISTOGRAM_MS.items():
        inside = d <= upper if lower is None else (d > lower) & (d <= upper)
        exprs.append(inside.sum().cast(pl.Int64).alias(name))
        lower = upper
    exprs.append((d > lower).sum().cast(pl.Int64).alias("hist_inf"))
    return exprs


def latency_metrics(executions: pl.DataFrame) -> pl.DataFrame:
    """performance_metrics rows for the answered executions given.

    executions: tool_name, request_time ('YYYY-MM-DD HH:MM:SS.sss'), duration_ms, status
    (success or error only: cancelled, timeout and pending calls have no latency).
    Returns METRIC_COLUMNS, one row per bucket and tool plus one per bucket for all tools.
    """
    frames: list[pl.DataFrame] = []
    for metric_name, (prefix, pad, seconds) in BUCKETS.items():
        bucketed = executions.with_columns(
            timestamp=pl.col("request_time").str.slice(0, prefix) + pad
        )
        aggregates = [
            pl.len().cast(pl.Int64).alias("execution_count"),
            (pl.col("status") == "error").sum().cast(pl.Int64).alias("error_count"),
            pl.col("duration_ms").mean().alias("duration_ms"),
            pl.col("duration_ms").min().alias("min_ms"),
            pl.col("duration_ms").max().alias("max_ms"),
            *(percentile("duration_ms", q).alias(name) for name, q in PERCENTILES.items()),
            *_histogram(),
        ]
        per_tool = bucketed.group_by("timestamp", "tool_name").agg(aggregates)
        all_tools = (
            bucketed.group_by("timestamp")
            .agg(aggregates)
            .with_columns(tool_name=pl.lit(None, pl.String))
        )
        for frame in (per_tool, all_tools):
            frames.append(
                frame.with_columns(
                    session_id=pl.lit(ALL_SESSIONS),
                    metric_type=pl.lit("tool_execution"),
                    metric_name=pl.lit(metric_name),
                    bucket_seconds=pl.lit(seconds, pl.Int64),
                    throughput=pl.col("execution_count") / seconds,
                    metric_date=pl.col("timestamp").str.slice(0, 10),
                ).select(METRIC_COLUMNS)
            )
    if not frames or executions.is_empty():
        return pl.DataFrame(schema=dict.fromkeys(METRIC_COLUMNS, pl.String)).clear()
    return pl.concat(frames, how="vertical_relaxed").sort(
        "metric_name", "timestamp", "tool_name", nulls_last=False
    )
