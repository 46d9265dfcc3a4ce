-- Apply one run's staged rows (schema stg, written by pipeline/load.py) to the target.
-- Runs inside the run's single write transaction, after load_rollback.sql.
INSERT INTO etl_client_map (session_id, client_name, target_repl, capabilities, initialized_at, event_id)
SELECT session_id, client_name, target_repl, capabilities, initialized_at, event_id
FROM stg.client_map
WHERE true
ON CONFLICT (session_id) DO UPDATE SET
    client_name = excluded.client_name, target_repl = excluded.target_repl,
    capabilities = excluded.capabilities, initialized_at = excluded.initialized_at,
    event_id = excluded.event_id;
UPDATE tool_executions
SET interaction_response_id = u.interaction_response_id,
    response_time = u.response_time,
    duration_ms = u.duration_ms,
    output_size = u.output_size,
    result_type = u.result_type,
    result_summary = u.result_summary,
    error_code = u.error_code,
    has_structured_content = u.has_structured_content,
    status = u.status,
    answered_by = u.answered_by
FROM stg.execution_responses AS u
-- Only calls from earlier runs are staged here: this run's arrive whole (load_insert.sql).
WHERE tool_executions.interaction_request_id = u.interaction_request_id;
UPDATE etl_requests
SET response_interaction_id = u.interaction_response_id,
    response_time = u.response_time,
    output_size = u.output_size,
    response_is_error = u.response_is_error
FROM stg.request_responses AS u
WHERE etl_requests.interaction_id = u.interaction_request_id
    AND u.interaction_request_id NOT IN (SELECT interaction_id FROM stg.requests);
INSERT INTO errors (
    session_id, timestamp, error_type, error_code, error_category, tool_name, method,
    request_id, message, stack_trace, client_info, input_that_caused_error,
    interaction_id, event_id, error_key, error_source, interaction_request_id, source_session_id
)
SELECT
    session_id, timestamp, error_type, error_code, error_category, tool_name, method,
    request_id, message, stack_trace, client_info, input_that_caused_error,
    interaction_id, event_id, error_key, error_source, interaction_request_id, source_session_id
FROM stg.errors
ORDER BY timestamp, error_key;
INSERT INTO etl_rejects (source_table, source_id, reason, excerpt)
SELECT source_table, source_id, reason, excerpt
FROM stg.rejects
WHERE true
ON CONFLICT (source_table, source_id) DO UPDATE SET reason = excluded.reason, excerpt = excluded.excerpt;
INSERT INTO etl_repl_events (event_id, repl_id, event_type, timestamp, data)
SELECT event_id, repl_id, event_type, timestamp, data
FROM stg.repl_events
ORDER BY event_id;
-- A stateless session keeps the identity of the first request that carried one.
INSERT INTO etl_stateless_clients (
    session_id, client_name, client_version, protocol_version, capabilities, first_seen,
    interaction_id
)
SELECT
    session_id, client_name, client_version, protocol_version, capabilities, first_seen,
    interaction_id
FROM stg.stateless_clients
WHERE true
ORDER BY interaction_id
ON CONFLICT (session_id) DO NOTHING;
INSERT INTO etl_other_messages (interaction_id, direction, kind, method)
SELECT interaction_id, direction, kind, method
FROM stg.other_messages
ORDER BY interaction_id;
