-- title: Most used tools per client session
-- rows: one per client session and tool, the session's $top most called tools
--   (calls, errors, share of the session's calls), sessions in id order.
-- param: top INTEGER = 5 (tools listed per session)
WITH per_tool AS (
    SELECT
        session_id,
        MIN(client_name) AS client_name,
        tool_name,
        COUNT(*) AS calls,
        COUNT(*) FILTER (WHERE status = 'error') AS errors
    FROM tool_executions
    GROUP BY session_id, tool_name
),
ranked AS (
    SELECT
        *,
        ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY calls DESC, tool_name) AS tool_rank,
        SUM(calls) OVER (PARTITION BY session_id) AS session_calls
    FROM per_tool
)
SELECT
    session_id,
    client_name,
    tool_rank,
    tool_name,
    calls,
    errors,
    ROUND(100.0 * calls / session_calls, 2)::DOUBLE AS share_pct
FROM ranked
WHERE tool_rank <= $top
ORDER BY session_id, tool_rank;
