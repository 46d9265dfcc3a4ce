-- The pairing state: requests with no response as of the settled watermark
-- ($settled_iid), tools/call from tool_executions and the others from etl_requests.
-- Grain: one row per open request, any order (an ORDER BY here makes SQLite walk the
-- whole request-id index); columns in the order of run.OPEN_COLUMNS.
-- Rows are found through the response-id indexes (no response, or one after the
-- watermark), not by reading every settled call: the log only grows. (The unary + keeps
-- SQLite from walking the request-id index instead.)
WITH calls AS (
    SELECT * FROM tool_executions WHERE interaction_response_id IS NULL
    UNION ALL
    SELECT * FROM tool_executions WHERE interaction_response_id > $settled_iid
),
others AS (
    SELECT * FROM etl_requests WHERE response_interaction_id IS NULL
    UNION ALL
    SELECT * FROM etl_requests WHERE response_interaction_id > $settled_iid
)
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
FROM calls
WHERE +interaction_request_id <= $settled_iid
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
FROM others
WHERE +interaction_id <= $settled_iid
