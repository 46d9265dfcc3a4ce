-- title: Alert: p95 latency above its trailing baseline
-- rows: one per tool whose exact p95 (linear interpolation) over the calls with a
--   response requested in the last $window_hours hours is above $factor times its p95
--   over the $baseline_hours hours before; both windows need $min_calls calls. The
--   baseline is computed from the executions themselves: percentiles of days cannot be
--   averaged into a percentile of a week.
-- param: now TIMESTAMP = NULL (the newest data timestamp)
-- param: window_hours DOUBLE = 24 (the recent window, back from now)
-- param: baseline_hours DOUBLE = 168 (the trailing window before it)
-- param: min_calls INTEGER = 20 (calls each window needs)
-- param: factor DOUBLE = 2 (how many times the baseline p95 fires)
WITH w AS (
    SELECT
        $now::TIMESTAMP - TO_MICROSECONDS(CAST($window_hours * 3600e6 AS BIGINT)) AS window_start,
        $now::TIMESTAMP
        - TO_MICROSECONDS(CAST(($window_hours + $baseline_hours) * 3600e6 AS BIGINT))
            AS baseline_start,
        $now::TIMESTAMP AS window_end
),
done AS (
    SELECT te.tool_name, te.duration_ms, te.request_time > w.window_start AS is_recent
    FROM tool_executions AS te, w
    WHERE te.status IN ('success', 'error')
        AND te.duration_ms IS NOT NULL
        AND te.request_time > w.baseline_start
        AND te.request_time <= w.window_end
),
per_tool AS (
    SELECT
        tool_name,
        COUNT(*) FILTER (WHERE is_recent) AS recent_calls,
        QUANTILE_CONT(duration_ms, 0.95) FILTER (WHERE is_recent) AS recent_p95,
        COUNT(*) FILTER (WHERE NOT is_recent) AS baseline_calls,
        QUANTILE_CONT(duration_ms, 0.95) FILTER (WHERE NOT is_recent) AS baseline_p95
    FROM done
    GROUP BY tool_name
)
SELECT
    tool_name AS subject,
    recent_p95 AS value,
    $factor * baseline_p95 AS threshold,
    w.window_start,
    w.window_end,
    recent_calls,
    baseline_calls,
    baseline_p95
FROM per_tool, w
WHERE recent_calls >= $min_calls
    AND baseline_calls >= $min_calls
    AND recent_p95 > $factor * baseline_p95
ORDER BY recent_p95 / NULLIF(baseline_p95, 0) DESC NULLS FIRST, subject;
