-- The ten most called tools with their error rate and median latency: the summary
-- `etl` prints. Grain: one row per tool_name.
WITH answered AS (
    SELECT
        tool_name,
        duration_ms,
        ROW_NUMBER() OVER (PARTITION BY tool_name ORDER BY duration_ms) AS pos,
        COUNT(*) OVER (PARTITION BY tool_name) AS n
    FROM tool_executions
    WHERE status IN ('success', 'error')
),
medians AS (
    SELECT tool_name, AVG(duration_ms) AS median_ms
    FROM answered
    WHERE pos IN ((n + 1) / 2, (n + 2) / 2)
    GROUP BY tool_name
)
SELECT
    t.tool_name,
    COUNT(*) AS calls,
    SUM(t.status = 'error') AS errors,
    ROUND(100.0 * SUM(t.status = 'error') / COUNT(*), 1) AS error_rate_pct,
    CAST(ROUND(m.median_ms) AS INTEGER) AS median_ms,
    SUM(t.status = 'timeout') AS timeouts,
    SUM(t.status = 'pending') AS pending
FROM tool_executions AS t
LEFT JOIN medians AS m ON m.tool_name = t.tool_name
GROUP BY t.tool_name
ORDER BY calls DESC, t.tool_name
LIMIT 10
