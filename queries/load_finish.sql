-- The run's last load steps, after load_calls.sql: resolutions and request.error links.
-- A person's resolutions survive every rebuild: they are keyed by the error's source row.
UPDATE errors
SET resolved = 1, resolution_notes = r.resolution_notes
FROM error_resolutions AS r
WHERE errors.error_key = r.error_key
    AND (errors.resolved IS NOT 1 OR errors.resolution_notes IS NOT r.resolution_notes);
-- A request.error event (the proxy failed to reach a REPL) names no request: it belongs
-- to the latest call of its method routed to that REPL that was open at that moment.
-- Recomputed in every run that can change it (temp.relinked_errors:
-- derive_mark_before.sql says which), so the link follows the call's own settled
-- attribution.
UPDATE errors
SET interaction_request_id = (
    SELECT t.interaction_request_id
    FROM tool_executions AS t
    WHERE t.route = errors.source_session_id
        AND t.tool_method = errors.method
        AND t.request_time <= errors.timestamp
        AND (t.response_time IS NULL OR t.response_time >= errors.timestamp)
    ORDER BY t.request_time DESC, t.interaction_request_id DESC
    LIMIT 1
)
WHERE id IN (SELECT id FROM temp.relinked_errors);
UPDATE errors
SET session_id = t.session_id,
    tool_name = t.tool_name,
    request_id = t.request_id,
    client_info = CASE WHEN t.client_name IS NOT NULL THEN json_object('name', t.client_name) END,
    input_that_caused_error = t.arguments
FROM tool_executions AS t
WHERE errors.id IN (SELECT id FROM temp.relinked_errors)
    AND t.interaction_request_id = errors.interaction_request_id;
UPDATE errors
SET session_id = source_session_id, tool_name = NULL, request_id = NULL, client_info = NULL,
    input_that_caused_error = NULL
WHERE id IN (SELECT id FROM temp.relinked_errors) AND interaction_request_id IS NULL;
