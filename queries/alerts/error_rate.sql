-- title: Alert: error rate per tool
-- rows: one per tool whose calls requested in ($now - $window_hours h, $now] ended in
--   error more often than $threshold_pct percent, over at least $min_calls settled calls
--   (pending calls are left out: they have no outcome yet); worst rate first.
-- param: now TIMESTAMP = NULL (the newest data timestamp)
-- param: window_hours DOUBLE = 1 (the window, back from now)
-- param: min_calls INTEGER = 20 (fewer settled calls than this never fire)
-- param: threshold_pct DOUBLE = 25 (the error rate that fires, in percent)
WITH w AS (
    SELECT
        $now::TIMESTAMP - TO_MICROSECONDS(CAST($window_hours * 3600e6 AS BIGINT)) AS window_start,
        $now::TIMESTAMP AS window_end
),
per_tool AS (
    SELECT
        te.tool_name,
        COUNT(*) AS calls,
        COUNT(*) FILTER (WHERE te.status = 'error') AS errors
    FROM tool_executions AS te, w
    WHERE te.request_time > w.window_start
        AND te.request_time <= w.window_end
        AND te.status <> 'pending'
    GROUP BY te.tool_name
)
SELECT
    per_tool.tool_name AS subject,
    100.0 * errors / calls AS value,
    CAST($threshold_pct AS DOUBLE) AS threshold,
    w.window_start,
    w.window_end,
    calls,
    errors
FROM per_tool, w
WHERE calls >= $min_calls
    AND 100.0 * errors / calls > $threshold_pct
ORDER BY value DESC, subject;
