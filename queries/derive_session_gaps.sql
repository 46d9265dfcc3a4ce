-- For each session in temp.redo_sessions: its first activity at or after its start
-- (before_t NULL), and every idle gap longer than $idle_ms between two consecutive
-- activity times (request or response times) as (before_t, after_t).
-- Grain: one row per session start and per gap, in session and time order.
WITH times AS (
    SELECT session_id, request_time AS t
    FROM tool_executions
    WHERE session_id IN (SELECT session_id FROM temp.redo_sessions)
    UNION ALL
    SELECT session_id, response_time
    FROM tool_executions
    WHERE session_id IN (SELECT session_id FROM temp.redo_sessions) AND response_time IS NOT NULL
    UNION ALL
    SELECT session_id, request_time
    FROM etl_requests
    WHERE session_id IN (SELECT session_id FROM temp.redo_sessions)
    UNION ALL
    SELECT session_id, response_time
    FROM etl_requests
    WHERE session_id IN (SELECT session_id FROM temp.redo_sessions) AND response_time IS NOT NULL
),
counted AS (
    SELECT x.session_id, x.t
    FROM times AS x
    JOIN temp.redo_sessions AS r ON r.session_id = x.session_id
    WHERE x.t >= r.start
),
ordered AS (
    SELECT session_id, t, LAG(t) OVER (PARTITION BY session_id ORDER BY t) AS before_t
    FROM counted
)
SELECT session_id, before_t, t AS after_t
FROM ordered
WHERE before_t IS NULL
    OR round((julianday(t) - julianday(before_t)) * 86400000.0) > $idle_ms
ORDER BY session_id, t
