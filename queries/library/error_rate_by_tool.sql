-- title: Error rate per tool
-- rows: one per tool: calls, calls that ended in error, their rate over settled calls,
--   and the errors table's rows for the tool (unresolved ones apart); worst rate first.
WITH calls AS (
    SELECT
        tool_name,
        COUNT(*) AS calls,
        COUNT(*) FILTER (WHERE status = 'error') AS error_calls,
        COUNT(*) FILTER (WHERE status <> 'pending') AS settled_calls
    FROM tool_executions
    GROUP BY tool_name
),
logged AS (
    SELECT
        tool_name,
        COUNT(*) AS errors_logged,
        COUNT(*) FILTER (WHERE NOT COALESCE(resolved, FALSE)) AS errors_unresolved,
        COUNT(DISTINCT error_code) AS distinct_codes
    FROM errors
    WHERE tool_name IS NOT NULL
    GROUP BY tool_name
)
SELECT
    calls.tool_name,
    calls.calls,
    calls.error_calls,
    ROUND(100.0 * calls.error_calls / NULLIF(calls.settled_calls, 0), 2)::DOUBLE AS error_rate_pct,
    COALESCE(logged.errors_logged, 0) AS errors_logged,
    COALESCE(logged.errors_unresolved, 0) AS errors_unresolved,
    COALESCE(logged.distinct_codes, 0) AS distinct_codes
FROM calls
LEFT JOIN logged ON logged.tool_name = calls.tool_name
ORDER BY error_rate_pct DESC NULLS LAST, calls.calls DESC, calls.tool_name;
