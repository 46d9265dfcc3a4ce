-- title: Alert: unresolved errors growing
-- rows: at most one ('(all)'): the errors logged in the last $window_hours hours that
--   are still unresolved, when there are at least $min_count of them and more than
--   $factor times the unresolved errors per $window_hours hours over the $baseline_hours
--   hours before (the backlog grows faster than it used to). Needs calls in the
--   baseline, so a log younger than the window never fires.
-- param: now TIMESTAMP = NULL (the newest data timestamp)
-- param: window_hours DOUBLE = 24 (the recent window, back from now)
-- param: baseline_hours DOUBLE = 168 (the trailing window before it)
-- param: min_count INTEGER = 10 (new unresolved errors the window needs)
-- param: factor DOUBLE = 2 (how many times the baseline rate fires)
WITH w AS (
    SELECT
        $now::TIMESTAMP - TO_MICROSECONDS(CAST($window_hours * 3600e6 AS BIGINT)) AS window_start,
        $now::TIMESTAMP
        - TO_MICROSECONDS(CAST(($window_hours + $baseline_hours) * 3600e6 AS BIGINT))
            AS baseline_start,
        $now::TIMESTAMP AS window_end
),
history AS (
    SELECT COUNT(*) AS baseline_calls
    FROM tool_executions, w
    WHERE request_time > w.baseline_start AND request_time <= w.window_start
),
backlog AS (
    SELECT
        COUNT(*) FILTER (WHERE e."timestamp" > w.window_start) AS recent_unresolved,
        COUNT(*) FILTER (WHERE e."timestamp" <= w.window_start) AS baseline_unresolved
    FROM errors AS e, w
    WHERE NOT COALESCE(e.resolved, FALSE)
        AND e."timestamp" > w.baseline_start
        AND e."timestamp" <= w.window_end
)
SELECT
    '(all)' AS subject,
    CAST(recent_unresolved AS DOUBLE) AS value,
    $factor * baseline_unresolved * $window_hours / $baseline_hours AS threshold,
    w.window_start,
    w.window_end,
    recent_unresolved,
    baseline_unresolved
FROM backlog, w, history
WHERE history.baseline_calls > 0
    AND recent_unresolved >= $min_count
    AND recent_unresolved > $factor * baseline_unresolved * $window_hours / $baseline_hours;
