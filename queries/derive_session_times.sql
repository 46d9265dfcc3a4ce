-- Activity times (request and response times) of the sessions in temp.redo_sessions,
-- for the idle gaps of their lifecycle. Grain: one row per time, any order.
SELECT session_id, request_time AS t
FROM tool_executions
WHERE session_id IN (SELECT session_id FROM temp.redo_sessions)
UNION ALL
SELECT session_id, response_time
FROM tool_executions
WHERE session_id IN (SELECT session_id FROM temp.redo_sessions) AND response_time IS NOT NULL
UNION ALL
SELECT session_id, request_time
FROM etl_requests
WHERE session_id IN (SELECT session_id FROM temp.redo_sessions)
UNION ALL
SELECT session_id, response_time
FROM etl_requests
WHERE session_id IN (SELECT session_id FROM temp.redo_sessions) AND response_time IS NOT NULL
