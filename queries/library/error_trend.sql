-- title: Error trends over time
-- rows: one per time bucket and error type over the last $days days of data (counted
--   back from the newest error): errors, unresolved ones, sessions and tools affected.
-- param: bucket VARCHAR = hour (hour or day)
-- param: days INTEGER = 7 (days of data, back from the newest error)
WITH bounds AS (
    SELECT MAX("timestamp") - TO_DAYS(CAST($days AS INTEGER)) AS since FROM errors
)
SELECT
    DATE_TRUNC($bucket, "timestamp") AS bucket_start,
    error_type,
    COUNT(*) AS errors,
    COUNT(*) FILTER (WHERE NOT COALESCE(resolved, FALSE)) AS unresolved,
    COUNT(DISTINCT session_id) AS sessions,
    COUNT(DISTINCT tool_name) AS tools
FROM errors, bounds
WHERE "timestamp" > bounds.since
GROUP BY bucket_start, error_type
ORDER BY bucket_start, error_type;
