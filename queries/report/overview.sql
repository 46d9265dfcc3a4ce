-- title: Report overview
-- rows: one row: the period the data covers, calls, calls settled, their success rate,
--   client sessions (active ones apart), errors (unresolved ones apart) and the p95 of
--   the calls that got a response, over the whole load.
WITH calls AS (
    SELECT
        MIN(request_time) AS first_call,
        MAX(request_time) AS last_call,
        COUNT(*) AS calls,
        COUNT(*) FILTER (WHERE status <> 'pending') AS settled_calls,
        COUNT(*) FILTER (WHERE status = 'success') AS success_calls,
        QUANTILE_CONT(duration_ms, 0.95) FILTER (WHERE status IN ('success', 'error')) AS p95_ms
    FROM tool_executions
),
sessions AS (
    SELECT
        COUNT(*) AS sessions,
        COUNT(*) FILTER (WHERE status = 'active') AS active_sessions
    FROM client_sessions
),
errs AS (
    SELECT
        COUNT(*) AS errors,
        COUNT(*) FILTER (WHERE NOT COALESCE(resolved, FALSE)) AS unresolved_errors
    FROM errors
)
SELECT
    calls.first_call,
    calls.last_call,
    calls.calls,
    calls.settled_calls,
    ROUND(100.0 * calls.success_calls / NULLIF(calls.settled_calls, 0), 2)::DOUBLE
        AS success_rate_pct,
    ROUND(calls.p95_ms, 3) AS p95_ms,
    sessions.sessions,
    sessions.active_sessions,
    errs.errors,
    errs.unresolved_errors
FROM calls, sessions, errs;
