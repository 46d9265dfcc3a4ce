-- title: Alert: new error categories
-- rows: one per error category that occurs in the last $window_hours hours and never
--   before them, provided the load holds data from before the window (on a log younger
--   than the window every category would be new); newest first.
-- param: now TIMESTAMP = NULL (the newest data timestamp)
-- param: window_hours DOUBLE = 24 (the recent window, back from now)
WITH w AS (
    SELECT
        $now::TIMESTAMP - TO_MICROSECONDS(CAST($window_hours * 3600e6 AS BIGINT)) AS window_start,
        $now::TIMESTAMP AS window_end
),
history AS (
    SELECT COUNT(*) AS earlier_calls
    FROM tool_executions, w
    WHERE request_time <= w.window_start
),
per_category AS (
    SELECT
        COALESCE(e.error_category, 'unknown_error') AS error_category,
        MIN(e."timestamp") AS first_seen,
        COUNT(*) FILTER (WHERE e."timestamp" > w.window_start) AS recent_errors
    FROM errors AS e, w
    WHERE e."timestamp" <= w.window_end
    GROUP BY ALL
)
SELECT
    error_category AS subject,
    CAST(recent_errors AS DOUBLE) AS value,
    CAST(NULL AS DOUBLE) AS threshold,
    w.window_start,
    w.window_end,
    first_seen,
    recent_errors
FROM per_category, w, history
WHERE first_seen > w.window_start
    AND history.earlier_calls > 0
ORDER BY first_seen DESC, subject;
