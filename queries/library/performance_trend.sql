-- title: Performance trends over time
-- rows: one per bucket of the ETL's latency metrics (performance_metrics, metric_type
--   tool_execution) for one tool, or the all-tools rows: calls, error rate, mean and
--   exact p50/p95/p99, max, throughput (calls per second); oldest bucket first.
-- param: resolution VARCHAR = latency_1h (latency_1h or latency_1d)
-- param: tool VARCHAR = NULL (a tool name; default: all tools together)
SELECT
    "timestamp" AS bucket_start,
    COALESCE(tool_name, '(all tools)') AS tool_name,
    execution_count,
    error_count,
    ROUND(100.0 * error_count / NULLIF(execution_count, 0), 2)::DOUBLE AS error_rate_pct,
    duration_ms AS mean_ms,
    p50_ms,
    p95_ms,
    p99_ms,
    max_ms,
    throughput
FROM performance_metrics
WHERE metric_type = 'tool_execution'
    AND metric_name = $resolution
    AND COALESCE(tool_name, '') = COALESCE(CAST($tool AS VARCHAR), '')
ORDER BY bucket_start, tool_name;
