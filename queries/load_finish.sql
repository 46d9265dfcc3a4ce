-- Statuses that depend on the whole source (SPEC §2): a call with no response is
-- cancelled if a cancellation came, else timeout once older than the pending timeout
-- relative to the newest source timestamp ($newest_ts), else pending.
-- Timestamps carry milliseconds, so the rounded julianday difference is exact.
-- A timeout without a cancellation stays a timeout (the newest timestamp only grows, and
-- a response or a rollback makes the row answered or pending again), so those rows, the
-- bulk of the unanswered ones, are only looked at again when $recheck_all is 1 (the
-- pending timeout changed). Rows are written only when their values change. The same
-- filter picks the rows derive_mark_before.sql snapshots; keep the two alike.
UPDATE tool_executions
SET status = n.status, duration_ms = n.duration_ms
FROM (
    SELECT
        interaction_request_id AS iid,
        CASE
            WHEN interaction_cancel_id IS NOT NULL THEN 'cancelled'
            WHEN (julianday($newest_ts) - julianday(request_time)) * 86400000.0 > $pending_timeout_ms
                THEN 'timeout'
            ELSE 'pending'
        END AS status,
        CASE
            WHEN interaction_cancel_id IS NOT NULL
                THEN CAST(round((julianday(cancel_time) - julianday(request_time)) * 86400000.0) AS REAL)
        END AS duration_ms
    FROM tool_executions
    WHERE interaction_response_id IS NULL
        AND ($recheck_all OR status <> 'timeout' OR interaction_cancel_id IS NOT NULL)
) AS n
WHERE tool_executions.interaction_request_id = n.iid
    AND (tool_executions.status IS NOT n.status OR tool_executions.duration_ms IS NOT n.duration_ms);
-- A person's resolutions survive every rebuild: they are keyed by the error's source row.
UPDATE errors
SET resolved = 1, resolution_notes = r.resolution_notes
FROM error_resolutions AS r
WHERE errors.error_key = r.error_key
    AND (errors.resolved IS NOT 1 OR errors.resolution_notes IS NOT r.resolution_notes);
-- A request.error event (the proxy failed to reach a REPL) names no request: it belongs
-- to the latest call of its method routed to that REPL that was open at that moment.
-- Recomputed every run, so the link follows the call's own settled attribution.
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
WHERE error_source = 'request_error_event';
UPDATE errors
SET session_id = t.session_id,
    tool_name = t.tool_name,
    request_id = t.request_id,
    client_info = CASE WHEN t.client_name IS NOT NULL THEN json_object('name', t.client_name) END,
    input_that_caused_error = t.arguments
FROM tool_executions AS t
WHERE errors.error_source = 'request_error_event'
    AND t.interaction_request_id = errors.interaction_request_id;
UPDATE errors
SET session_id = source_session_id, tool_name = NULL, request_id = NULL, client_info = NULL,
    input_that_caused_error = NULL
WHERE error_source = 'request_error_event' AND interaction_request_id IS NULL;
