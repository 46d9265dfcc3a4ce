-- title: Errors over time by category
-- rows: one per time bucket and error category over the last $days days of data
--   (counted back from the newest error): errors and the unresolved ones among them;
--   oldest bucket first.
-- param: bucket VARCHAR = hour (hour or day)
-- param: days INTEGER = 7 (days of data, back from the newest error)
WITH bounds AS (
    SELECT MAX("timestamp") - TO_DAYS(CAST($days AS INTEGER)) AS since FROM errors
)
SELECT
    DATE_TRUNC($bucket, "timestamp") AS bucket_start,
    COALESCE(error_category, 'unknown_error') AS error_category,
    COUNT(*) AS errors,
    COUNT(*) FILTER (WHERE NOT COALESCE(resolved, FALSE)) AS unresolved
FROM errors, bounds
WHERE "timestamp" > bounds.since
GROUP BY ALL
ORDER BY bucket_start, error_category;
