-- Undo everything derived from source rows after the settled watermarks ($settled_iid for
-- interactions, $events_wm for events): those rows are read again by this run. With both
-- at 0 this empties every derived table (a --full rebuild); error_resolutions are kept.
DELETE FROM tool_executions WHERE interaction_request_id > $settled_iid;
UPDATE tool_executions
SET interaction_response_id = NULL, response_time = NULL, duration_ms = NULL,
    output_size = NULL, result_type = NULL, result_summary = NULL, error_code = NULL,
    has_structured_content = NULL, status = 'pending', answered_by = NULL
WHERE interaction_response_id > $settled_iid;
-- A call that loses its cancellation and has no response is pending until
-- load_calls.sql decides again (it only looks at pending calls and new cancellations).
UPDATE tool_executions
SET interaction_cancel_id = NULL, cancel_time = NULL, cancel_reason = NULL,
    status = CASE WHEN interaction_response_id IS NULL THEN 'pending' ELSE status END,
    duration_ms = CASE WHEN interaction_response_id IS NULL THEN NULL ELSE duration_ms END
WHERE interaction_cancel_id > $settled_iid;
DELETE FROM etl_requests WHERE interaction_id > $settled_iid;
UPDATE etl_requests
SET response_interaction_id = NULL, response_time = NULL, output_size = NULL, response_is_error = NULL
WHERE response_interaction_id > $settled_iid;
DELETE FROM errors WHERE interaction_id > $settled_iid OR event_id > $events_wm;
DELETE FROM etl_rejects WHERE source_table = 'interactions' AND source_id > $settled_iid;
DELETE FROM etl_rejects WHERE source_table = 'events' AND source_id > $events_wm;
DELETE FROM etl_client_map WHERE event_id > $events_wm;
DELETE FROM etl_repl_events WHERE event_id > $events_wm;
DELETE FROM etl_stateless_clients WHERE interaction_id > $settled_iid;
DELETE FROM etl_other_messages WHERE interaction_id > $settled_iid;
