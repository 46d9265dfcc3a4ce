-- title: Average execution time per tool
-- rows: one per tool over the calls that got a response (success or error; cancelled,
--   timed-out and pending calls have no execution time): mean, median, p95 (linear
--   interpolation) and max in ms, slowest mean first.
SELECT
    tool_name,
    COUNT(*) AS completed_calls,
    ROUND(AVG(duration_ms), 3) AS avg_ms,
    ROUND(QUANTILE_CONT(duration_ms, 0.5), 3) AS p50_ms,
    ROUND(QUANTILE_CONT(duration_ms, 0.95), 3) AS p95_ms,
    MAX(duration_ms) AS max_ms
FROM tool_executions
WHERE status IN ('success', 'error') AND duration_ms IS NOT NULL
GROUP BY tool_name
ORDER BY avg_ms DESC, tool_name;
