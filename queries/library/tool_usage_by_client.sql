-- title: Most used tools per client
-- rows: one per client name and tool (client '(unknown)' when the call has none):
--   calls, sessions, errors and the tool's share of the client's calls, most used first.
WITH per_tool AS (
    SELECT
        COALESCE(client_name, '(unknown)') AS client_name,
        tool_name,
        COUNT(*) AS calls,
        COUNT(DISTINCT session_id) AS sessions,
        COUNT(*) FILTER (WHERE status = 'error') AS errors
    FROM tool_executions
    GROUP BY ALL
)
SELECT
    client_name,
    tool_name,
    calls,
    sessions,
    errors,
    ROUND(100.0 * calls / SUM(calls) OVER (PARTITION BY client_name), 2)::DOUBLE AS share_pct
FROM per_tool
ORDER BY client_name, calls DESC, tool_name;
