-- title: Alert: timeouts and cancellations rising
-- rows: one per tool whose share of calls that timed out or were cancelled, among the
--   calls requested in the last $window_hours hours that are settled, is above $factor
--   times that share over the $baseline_hours hours before, with at least $min_count
--   such calls in the window and some calls in the baseline (a tool with none there is
--   new, not rising). value and threshold are percentages of settled calls.
-- param: now TIMESTAMP = NULL (the newest data timestamp)
-- param: window_hours DOUBLE = 24 (the recent window, back from now)
-- param: baseline_hours DOUBLE = 168 (the trailing window before it)
-- param: min_count INTEGER = 5 (timeouts and cancellations the window needs)
-- param: factor DOUBLE = 2 (how many times the baseline share fires)
WITH w AS (
    SELECT
        $now::TIMESTAMP - TO_MICROSECONDS(CAST($window_hours * 3600e6 AS BIGINT)) AS window_start,
        $now::TIMESTAMP
        - TO_MICROSECONDS(CAST(($window_hours + $baseline_hours) * 3600e6 AS BIGINT))
            AS baseline_start,
        $now::TIMESTAMP AS window_end
),
calls AS (
    SELECT
        te.tool_name,
        te.status IN ('timeout', 'cancelled') AS is_lost,
        te.request_time > w.window_start AS is_recent
    FROM tool_executions AS te, w
    WHERE te.status <> 'pending'
        AND te.request_time > w.baseline_start
        AND te.request_time <= w.window_end
),
per_tool AS (
    SELECT
        tool_name,
        COUNT(*) FILTER (WHERE is_recent) AS recent_calls,
        COUNT(*) FILTER (WHERE is_recent AND is_lost) AS recent_lost,
        COUNT(*) FILTER (WHERE NOT is_recent) AS baseline_calls,
        COUNT(*) FILTER (WHERE NOT is_recent AND is_lost) AS baseline_lost
    FROM calls
    GROUP BY tool_name
)
SELECT
    tool_name AS subject,
    100.0 * recent_lost / recent_calls AS value,
    $factor * 100.0 * baseline_lost / baseline_calls AS threshold,
    w.window_start,
    w.window_end,
    recent_calls,
    recent_lost,
    baseline_calls,
    baseline_lost
FROM per_tool, w
WHERE recent_lost >= $min_count
    AND baseline_calls > 0
    AND 100.0 * recent_lost / recent_calls > $factor * 100.0 * baseline_lost / baseline_calls
ORDER BY value DESC, subject;
