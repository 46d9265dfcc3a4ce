-- title: Most common error codes
-- rows: one per error code and category (code NULL: errors without one, such as
--   isError results and request.error events): occurrences, tools and sessions
--   affected, first and last seen, one example message; most frequent first.
SELECT
    error_code,
    error_category,
    COUNT(*) AS occurrences,
    COUNT(DISTINCT tool_name) AS tools,
    COUNT(DISTINCT session_id) AS sessions,
    MIN("timestamp") AS first_seen,
    MAX("timestamp") AS last_seen,
    MIN(message) AS example_message
FROM errors
GROUP BY error_code, error_category
ORDER BY occurrences DESC, error_code NULLS LAST, error_category NULLS LAST;
