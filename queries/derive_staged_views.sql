-- A full run's tool_executions and etl_requests as its load writes them
-- (load_insert.sql), as views over the staging file (schema stg), with every session
-- dirty and redone. pipeline/derive.py (read_staged_facts) runs derive's own reads over
-- them on a thread while the load runs, in a connection of its own (an in-memory main
-- schema, so these are temporary objects that shadow nothing of the target's).
-- Grain: one row per staged call, per staged request, per session.
CREATE TEMP VIEW tool_executions AS
SELECT * FROM stg.executions;
CREATE TEMP VIEW etl_requests AS
SELECT
    r.interaction_id, r.session_id, r.request_time, r.input_size,
    u.response_time, u.output_size, u.response_is_error
FROM stg.requests AS r
LEFT JOIN stg.request_responses AS u ON u.interaction_request_id = r.interaction_id;
CREATE TEMP TABLE dirty_sessions (session_id TEXT PRIMARY KEY);
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT session_id FROM stg.executions;
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT session_id FROM stg.requests;
CREATE TEMP TABLE redo_sessions AS
SELECT session_id FROM temp.dirty_sessions;
