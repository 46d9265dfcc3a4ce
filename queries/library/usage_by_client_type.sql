-- title: Usage patterns by client type
-- rows: one per client name and session kind: sessions, requests per session, error
--   rate, bytes sent and received per session, mean session length in minutes, and the
--   client's most called tool; most requests first.
WITH top_tool AS (
    SELECT client_name, tool_name, calls
    FROM (
        SELECT
            client_name,
            tool_name,
            COUNT(*) AS calls,
            ROW_NUMBER() OVER (PARTITION BY client_name ORDER BY COUNT(*) DESC, tool_name) AS r
        FROM tool_executions
        WHERE client_name IS NOT NULL
        GROUP BY client_name, tool_name
    )
    WHERE r = 1
)
SELECT
    cs.client_name,
    cs.session_kind,
    COUNT(*) AS sessions,
    CAST(SUM(cs.total_requests) AS BIGINT) AS total_requests,
    ROUND(AVG(cs.total_requests), 2) AS requests_per_session,
    ROUND(100.0 * SUM(cs.total_errors) / NULLIF(SUM(cs.total_requests), 0), 2)::DOUBLE
        AS error_rate_pct,
    ROUND(AVG(cs.total_data_sent), 1) AS bytes_sent_per_session,
    ROUND(AVG(cs.total_data_received), 1) AS bytes_received_per_session,
    ROUND(
        AVG(EPOCH(COALESCE(cs.disconnect_time, cs.last_activity, cs.connect_time) - cs.connect_time))
        / 60.0,
        2
    ) AS avg_minutes,
    ANY_VALUE(top_tool.tool_name) AS top_tool
FROM client_sessions AS cs
LEFT JOIN top_tool ON top_tool.client_name = cs.client_name
GROUP BY cs.client_name, cs.session_kind
ORDER BY total_requests DESC, cs.client_name, cs.session_kind;
