-- title: Error hot spots with unresolved counts
-- rows: one per tool (or method, for errors outside a tool call), error type and
--   category over the whole load: errors, unresolved ones, sessions affected and the
--   last occurrence; the $limit with the most unresolved errors first.
-- param: limit INTEGER = 15 (hot spots to list)
SELECT
    COALESCE(tool_name, method, '(none)') AS subject,
    error_type,
    COALESCE(error_category, 'unknown_error') AS error_category,
    COUNT(*) AS errors,
    COUNT(*) FILTER (WHERE NOT COALESCE(resolved, FALSE)) AS unresolved,
    COUNT(DISTINCT session_id) AS sessions,
    MAX("timestamp") AS last_occurrence
FROM errors
GROUP BY ALL
ORDER BY unresolved DESC, errors DESC, subject, error_type, error_category
LIMIT $limit;
