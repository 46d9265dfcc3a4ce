-- title: Slowest tool executions
-- rows: one per execution that got a response, the $limit slowest, slowest first
--   (ties by request time, then the request row).
-- param: limit INTEGER = 20 (executions to list)
SELECT
    request_time,
    tool_name,
    duration_ms,
    status,
    session_id,
    client_name,
    request_id,
    input_size,
    output_size,
    result_type,
    interaction_request_id
FROM tool_executions
WHERE status IN ('success', 'error') AND duration_ms IS NOT NULL
ORDER BY duration_ms DESC, request_time, interaction_request_id
LIMIT $limit;
