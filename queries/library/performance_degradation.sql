-- title: Performance degradation per tool
-- rows: one per tool called in the last $recent_hours hours of data: its p95 and mean
--   execution time then, against the $baseline_hours hours before (exact, from the
--   executions), and the change in percent; the worst regression first, tools without
--   a baseline last.
-- param: recent_hours INTEGER = 6 (the recent window, back from the newest call)
-- param: baseline_hours INTEGER = 24 (the window before it to compare with)
WITH windows AS (
    SELECT
        MAX(request_time) - TO_HOURS(CAST($recent_hours AS BIGINT)) AS recent_start,
        MAX(request_time)
        - TO_HOURS(CAST($recent_hours AS BIGINT) + CAST($baseline_hours AS BIGINT))
            AS baseline_start
    FROM tool_executions
),
done AS (
    SELECT
        te.tool_name,
        te.duration_ms,
        te.request_time > w.recent_start AS is_recent
    FROM tool_executions AS te, windows AS w
    WHERE te.status IN ('success', 'error')
        AND te.duration_ms IS NOT NULL
        AND te.request_time > w.baseline_start
),
per_tool AS (
    SELECT
        tool_name,
        COUNT(*) FILTER (WHERE is_recent) AS recent_calls,
        QUANTILE_CONT(duration_ms, 0.95) FILTER (WHERE is_recent) AS recent_p95,
        AVG(duration_ms) FILTER (WHERE is_recent) AS recent_avg,
        COUNT(*) FILTER (WHERE NOT is_recent) AS baseline_calls,
        QUANTILE_CONT(duration_ms, 0.95) FILTER (WHERE NOT is_recent) AS baseline_p95,
        AVG(duration_ms) FILTER (WHERE NOT is_recent) AS baseline_avg
    FROM done
    GROUP BY tool_name
)
SELECT
    tool_name,
    recent_calls,
    ROUND(recent_p95, 3) AS recent_p95_ms,
    ROUND(recent_avg, 3) AS recent_avg_ms,
    baseline_calls,
    ROUND(baseline_p95, 3) AS baseline_p95_ms,
    ROUND(baseline_avg, 3) AS baseline_avg_ms,
    ROUND(100.0 * (recent_p95 - baseline_p95) / NULLIF(baseline_p95, 0), 2)::DOUBLE
        AS p95_change_pct
FROM per_tool
WHERE recent_calls > 0
ORDER BY p95_change_pct DESC NULLS LAST, tool_name;
