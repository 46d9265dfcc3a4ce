-- Every activity time of a full run's sessions, from its staging file (DuckDB, schema
-- stg): the rows derive.py's _activity_times reads from tool_executions (tbl 0) and
-- etl_requests (tbl 1), each named by its request row. A request's response is staged
-- apart, and joined as load_insert.sql joins it.
-- Grain: one row per staged call and per staged request.
SELECT 0 AS tbl, interaction_request_id AS key, session_id, request_time, response_time
FROM stg.calls
UNION ALL
SELECT 1, r.interaction_id, r.session_id, r.request_time, u.response_time
FROM stg.requests AS r
LEFT JOIN stg.request_responses AS u ON u.interaction_request_id = r.interaction_id
