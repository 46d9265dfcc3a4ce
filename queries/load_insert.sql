-- The run's new calls and requests (schema stg, written by pipeline/load.py), applied
-- after load_rollback.sql and before load_apply.sql. A full rebuild runs these with the
-- tables' secondary indexes dropped and builds the indexes afterwards, which is much
-- faster than maintaining ten indexes row by row.
-- New calls arrive whole (pipeline/run.py stages each once, with the response this run
-- paired to it, or as unanswered at the end of the run), so each row is written once;
-- the UPDATEs in load_apply.sql answer calls inserted by earlier runs. The staged rows
-- are read in request order through their index (load.py STAGED_KEYS).
INSERT INTO tool_executions (
    session_id, request_id, tool_name, tool_method, request_time, input_size,
    argument_count, arguments, status, interaction_request_id, source_session_id,
    client_name, request_id_type, request_id_json, route, is_proxy_tool, request_date,
    interaction_response_id, response_time, duration_ms, output_size, result_type,
    result_summary, error_code, has_structured_content, answered_by,
    interaction_cancel_id, cancel_time, cancel_reason
)
SELECT
    session_id, request_id, tool_name, tool_method, request_time, input_size,
    argument_count, arguments, status, interaction_request_id, source_session_id,
    client_name, request_id_type, request_id_json, route, is_proxy_tool, request_date,
    interaction_response_id, response_time, duration_ms, output_size, result_type,
    result_summary, error_code, has_structured_content, answered_by,
    interaction_cancel_id, cancel_time, cancel_reason
FROM stg.executions
ORDER BY interaction_request_id;
INSERT INTO etl_requests (
    interaction_id, id_json, method, session_id, source_session_id, client_name, route,
    request_time, input_size, params, response_interaction_id, response_time, output_size,
    response_is_error
)
SELECT
    r.interaction_id, r.id_json, r.method, r.session_id, r.source_session_id, r.client_name,
    r.route, r.request_time, r.input_size, r.params, u.interaction_response_id,
    u.response_time, u.output_size, u.response_is_error
FROM stg.requests AS r
LEFT JOIN stg.request_responses AS u ON u.interaction_request_id = r.interaction_id
ORDER BY r.interaction_id;
