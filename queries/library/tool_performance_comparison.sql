-- title: Compare tool performance
-- rows: one per tool over its calls with a response in the last $days days of data:
--   the latency profile (mean, p50, p90, p95, p99, max in ms) and the tool's median
--   relative to the median of all calls (1.0 = typical); slowest p95 first.
-- param: days INTEGER = 30 (days of data, back from the newest call)
WITH done AS (
    SELECT tool_name, duration_ms
    FROM tool_executions
    WHERE status IN ('success', 'error')
        AND duration_ms IS NOT NULL
        AND request_time
        > (SELECT MAX(request_time) FROM tool_executions) - TO_DAYS(CAST($days AS INTEGER))
),
overall AS (
    SELECT QUANTILE_CONT(duration_ms, 0.5) AS p50 FROM done
)
SELECT
    done.tool_name,
    COUNT(*) AS calls,
    ROUND(AVG(done.duration_ms), 3) AS avg_ms,
    ROUND(QUANTILE_CONT(done.duration_ms, 0.5), 3) AS p50_ms,
    ROUND(QUANTILE_CONT(done.duration_ms, 0.9), 3) AS p90_ms,
    ROUND(QUANTILE_CONT(done.duration_ms, 0.95), 3) AS p95_ms,
    ROUND(QUANTILE_CONT(done.duration_ms, 0.99), 3) AS p99_ms,
    MAX(done.duration_ms) AS max_ms,
    ROUND(QUANTILE_CONT(done.duration_ms, 0.5) / NULLIF(ANY_VALUE(overall.p50), 0), 3)
        AS p50_vs_all
FROM done, overall
GROUP BY done.tool_name
ORDER BY p95_ms DESC, done.tool_name;
