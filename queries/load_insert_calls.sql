-- An incremental run's new calls (schema stg, written by pipeline/load.py), after
-- load_rollback.sql. New calls arrive whole (pipeline/run.py stages each once, with the
-- response this run paired to it, or as unanswered at the end of the run), so each row
-- is written once; the UPDATEs in load_apply.sql answer calls inserted by earlier runs.
-- A call's id is its request row; the staged calls (the view of the answered and the
-- still open ones, load.staged_calls_tables) are inserted in that order.
INSERT INTO tool_executions (
    id, session_id, request_id, tool_name, tool_method, request_time, input_size,
    argument_count, arguments, status, interaction_request_id, source_session_id,
    client_name, request_id_type, request_id_json, route, is_proxy_tool, request_date,
    interaction_response_id, response_time, duration_ms, output_size, result_type,
    result_summary, error_code, has_structured_content, answered_by,
    interaction_cancel_id, cancel_time, cancel_reason
)
SELECT
    id, session_id, request_id, tool_name, tool_method, request_time, input_size,
    argument_count, arguments, status, interaction_request_id, source_session_id,
    client_name, request_id_type, request_id_json, route, is_proxy_tool, request_date,
    interaction_response_id, response_time, duration_ms, output_size, result_type,
    result_summary, error_code, has_structured_content, answered_by,
    interaction_cancel_id, cancel_time, cancel_reason
FROM stg.calls
ORDER BY id;
