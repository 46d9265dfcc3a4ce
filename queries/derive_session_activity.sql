-- Recompute etl_session_activity for the sessions in temp.dirty_sessions: totals over the
-- requests attributed to each (tool calls and other requests), bytes each way, first and
-- last activity (request or response time), and the REPL that answered most of its calls.
DELETE FROM etl_session_activity
WHERE session_id IN (SELECT session_id FROM temp.dirty_sessions);
INSERT INTO etl_session_activity (
    session_id, requests, errors, bytes_in, bytes_out, first_activity, last_activity, top_repl
)
-- The calls are read once, grouped by session and answering REPL: the totals and the
-- top REPL both come from that, as in queries/derive_staged_activity.sql (the REPL
-- counts took a second read of every call of the sessions through the session index:
-- 0.12-0.17 to 0.10-0.14 s for the 50,010 calls of the 1M log's last day, 0.63-0.71 to
-- 0.52-0.60 s for the 247,503 of a one-day log). MATERIALIZED says what SQLite does by
-- default with a CTE used twice: `parts` and `repls` then share the one read.
WITH per_repl AS MATERIALIZED (
    SELECT
        session_id,
        answered_by,
        COUNT(*) AS n,
        SUM(status = 'error') AS errs,
        SUM(COALESCE(input_size, 0)) AS b_in,
        SUM(COALESCE(output_size, 0)) AS b_out,
        MIN(request_time) AS first_t,
        MAX(MAX(request_time), COALESCE(MAX(response_time), '')) AS last_t
    FROM tool_executions
    WHERE session_id IN (SELECT session_id FROM temp.dirty_sessions)
    GROUP BY session_id, answered_by
),
parts AS (
    SELECT session_id, n, errs, b_in, b_out, first_t, last_t FROM per_repl
    UNION ALL
    SELECT
        session_id,
        COUNT(*),
        SUM(COALESCE(response_is_error, 0)),
        SUM(COALESCE(input_size, 0)),
        SUM(COALESCE(output_size, 0)),
        MIN(request_time),
        MAX(MAX(request_time), COALESCE(MAX(response_time), ''))
    FROM etl_requests
    WHERE session_id IN (SELECT session_id FROM temp.dirty_sessions)
    GROUP BY session_id
),
repls AS (
    SELECT
        session_id,
        answered_by,
        ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY n DESC, answered_by) AS rn
    FROM per_repl
    WHERE answered_by IS NOT NULL AND answered_by <> 'proxy'
),
top_repl AS MATERIALIZED (
    SELECT session_id, answered_by FROM repls WHERE rn = 1
)
-- Joined, not a correlated subquery: SQLite would evaluate `repls` again per session.
SELECT
    p.session_id,
    SUM(p.n),
    SUM(p.errs),
    SUM(p.b_in),
    SUM(p.b_out),
    MIN(p.first_t),
    MAX(p.last_t),
    MAX(r.answered_by)
FROM parts AS p
LEFT JOIN top_repl AS r ON r.session_id = p.session_id
GROUP BY p.session_id;
