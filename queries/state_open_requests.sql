-- The pairing state: requests with no response as of the settled watermark
-- ($settled_iid), tools/call from tool_executions and the others from etl_requests.
-- Grain: one row per open request; columns in the order of run.OPEN_COLUMNS.
SELECT
    interaction_request_id AS request_iid,
    request_id_json AS id_key,
    request_id AS id_text,
    route,
    tool_method AS method,
    tool_name,
    session_id,
    source_session_id,
    client_name,
    arguments,
    request_time AS ts_ms,
    1 AS is_tool_call
FROM tool_executions
WHERE interaction_request_id <= $settled_iid
    AND (interaction_response_id IS NULL OR interaction_response_id > $settled_iid)
UNION ALL
SELECT
    interaction_id,
    id_json,
    CASE WHEN substr(id_json, 1, 1) = '"' THEN json_extract(id_json, '$') ELSE id_json END,
    route,
    method,
    NULL,
    session_id,
    source_session_id,
    client_name,
    params,
    request_time,
    0
FROM etl_requests
WHERE interaction_id <= $settled_iid
    AND (response_interaction_id IS NULL OR response_interaction_id > $settled_iid)
ORDER BY request_iid
