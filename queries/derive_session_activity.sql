-- Recompute etl_session_activity for the sessions in temp.dirty_sessions: totals over the
-- requests attributed to each (tool calls and other requests), bytes each way, first and
-- last activity (request or response time), and the REPL that answered most of its calls.
DELETE FROM etl_session_activity
WHERE session_id IN (SELECT session_id FROM temp.dirty_sessions);
INSERT INTO etl_session_activity (
    session_id, requests, errors, bytes_in, bytes_out, first_activity, last_activity, top_repl
)
WITH parts AS (
    SELECT
        session_id,
        COUNT(*) AS n,
        SUM(status = 'error') AS errs,
        SUM(COALESCE(input_size, 0)) AS b_in,
        SUM(COALESCE(output_size, 0)) AS b_out,
        MIN(request_time) AS first_t,
        MAX(MAX(request_time), COALESCE(MAX(response_time), '')) AS last_t
    FROM tool_executions
    WHERE session_id IN (SELECT session_id FROM temp.dirty_sessions)
    GROUP BY session_id
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
        ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY COUNT(*) DESC, answered_by) AS rn
    FROM tool_executions
    WHERE session_id IN (SELECT session_id FROM temp.dirty_sessions)
        AND answered_by IS NOT NULL AND answered_by <> 'proxy'
    GROUP BY session_id, answered_by
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
