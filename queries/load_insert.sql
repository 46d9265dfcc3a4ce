-- The run's new requests other than tools/call (schema stg, written by pipeline/load.py),
-- after load_rollback.sql and the calls (load_insert_calls.sql, or load_copy_calls.sql
-- in a rebuild), before load_apply.sql. A full rebuild runs this with the tables'
-- secondary indexes dropped and builds the indexes afterwards, which is much faster
-- than maintaining them row by row. The staged rows are read in request order through
-- their index (load.py STAGED_KEYS).
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
