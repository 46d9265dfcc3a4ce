-- title: Latency percentiles and histogram over time (all tools)
-- rows: one per bucket of the ETL's all-tools latency metrics ($resolution: latency_1h
--   or latency_1d) over the last $days days of data: calls, errors, exact p50/p95/p99
--   and mean in ms, throughput, and the histogram counts on the OpenTelemetry MCP
--   boundaries (hist_10ms … hist_inf); oldest bucket first.
-- param: resolution VARCHAR = latency_1h (latency_1h or latency_1d)
-- param: days INTEGER = 7 (days of data, back from the newest bucket)
WITH rows AS (
    SELECT *
    FROM performance_metrics
    WHERE metric_type = 'tool_execution'
        AND metric_name = $resolution
        AND tool_name IS NULL
),
bounds AS (
    SELECT MAX("timestamp") - TO_DAYS(CAST($days AS INTEGER)) AS since FROM rows
)
SELECT
    "timestamp" AS bucket_start,
    execution_count,
    error_count,
    p50_ms,
    p95_ms,
    p99_ms,
    duration_ms AS mean_ms,
    throughput,
    hist_10ms, hist_20ms, hist_50ms, hist_100ms, hist_200ms, hist_500ms, hist_1s, hist_2s,
    hist_5s, hist_10s, hist_30s, hist_60s, hist_120s, hist_300s, hist_inf
FROM rows, bounds
WHERE "timestamp" > bounds.since
ORDER BY bucket_start;
