-- title: Success rate per tool
-- rows: one per tool: calls by status and the success rate over the calls that are
--   settled (everything but pending), lowest rate first.
SELECT
    tool_name,
    COUNT(*) AS calls,
    COUNT(*) FILTER (WHERE status = 'success') AS success,
    COUNT(*) FILTER (WHERE status = 'error') AS error,
    COUNT(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    COUNT(*) FILTER (WHERE status = 'timeout') AS timeout,
    COUNT(*) FILTER (WHERE status = 'pending') AS pending,
    ROUND(
        100.0 * COUNT(*) FILTER (WHERE status = 'success')
        / NULLIF(COUNT(*) FILTER (WHERE status <> 'pending'), 0),
        2
    )::DOUBLE AS success_rate_pct
FROM tool_executions
GROUP BY tool_name
ORDER BY success_rate_pct ASC NULLS LAST, calls DESC, tool_name;
