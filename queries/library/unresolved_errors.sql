-- title: Unresolved errors requiring attention
-- rows: one per unresolved error, the $limit newest first; error_key is the stable id
--   and id the one `mcp-analytics errors resolve ID` takes.
-- param: limit INTEGER = 50 (errors to list)
SELECT
    id,
    error_key,
    "timestamp",
    error_type,
    error_code,
    error_category,
    tool_name,
    method,
    session_id,
    LEFT(message, 200) AS message
FROM errors
WHERE NOT COALESCE(resolved, FALSE)
ORDER BY "timestamp" DESC, error_key DESC
LIMIT $limit;
