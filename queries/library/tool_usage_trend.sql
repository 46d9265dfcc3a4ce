-- title: Tool usage over time
-- rows: one per time bucket and tool over the last $days days of data (counted back
--   from the newest call): calls, errors, mean execution time; oldest bucket first.
-- param: bucket VARCHAR = hour (hour or day)
-- param: days INTEGER = 7 (days of data, back from the newest call)
WITH bounds AS (
    SELECT MAX(request_time) - TO_DAYS(CAST($days AS INTEGER)) AS since FROM tool_executions
)
SELECT
    DATE_TRUNC($bucket, request_time) AS bucket_start,
    tool_name,
    COUNT(*) AS calls,
    COUNT(*) FILTER (WHERE status = 'error') AS errors,
    ROUND(AVG(duration_ms) FILTER (WHERE status IN ('success', 'error')), 3) AS avg_ms
FROM tool_executions, bounds
WHERE request_time > bounds.since
GROUP BY bucket_start, tool_name
ORDER BY bucket_start, tool_name;
