-- title: Request ids used more than once in one client session
-- rows: one per client session and JSON id (1 and "1" are different ids) that more than
--   one request of the session used, the $limit most used first: how many requests,
--   their methods, first and last request time.
-- param: limit INTEGER = 10 (pairs to list)
WITH requests AS (
    SELECT session_id, request_id_json AS id_json, tool_method AS method, request_time
    FROM tgt.tool_executions
    UNION ALL
    SELECT session_id, id_json, method, request_time FROM tgt.etl_requests
)
SELECT
    session_id,
    id_json,
    COUNT(*) AS requests,
    STRING_AGG(DISTINCT COALESCE(method, '?'), ', ' ORDER BY COALESCE(method, '?')) AS methods,
    MIN(request_time) AS first_request,
    MAX(request_time) AS last_request
FROM requests
GROUP BY session_id, id_json
HAVING COUNT(*) > 1
ORDER BY requests DESC, session_id, id_json
LIMIT $limit;
