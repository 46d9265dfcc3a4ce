-- Statuses that depend on the whole source (SPEC §2): a call with no response is
-- cancelled if a cancellation came, else timeout once older than the pending timeout
-- relative to the newest source timestamp ($newest_ts), else pending.
-- Timestamps carry milliseconds, so the rounded julianday difference is exact.
-- Only calls whose status can change are looked at (unless $recheck_all is 1: a full
-- run, or the pending timeout changed): pending ones, and ones that got a cancellation
-- in this run (interaction_cancel_id > $settled_iid). A timeout without a cancellation
-- stays a timeout (the newest timestamp only grows), and a cancellation stays one: the
-- rollback (load_rollback.sql) makes a call whose cancellation it removes pending
-- again. Both kinds are found through indexes (status, cancel row), so a run reads the
-- few calls that can change, not all the unanswered ones of the log. Rows are written
-- only when their values change. The same filter picks the rows
-- derive_mark_before.sql snapshots; keep the two alike.
WITH open_calls AS (
    SELECT interaction_request_id AS iid
    FROM tool_executions
    WHERE $recheck_all = 1 AND interaction_response_id IS NULL
    UNION
    SELECT interaction_request_id
    FROM tool_executions
    WHERE $recheck_all = 0
        AND (status = 'pending' OR interaction_cancel_id > $settled_iid)
        AND +interaction_response_id IS NULL
)
UPDATE tool_executions
SET status = n.status, duration_ms = n.duration_ms
FROM (
    SELECT
        t.interaction_request_id AS iid,
        CASE
            WHEN t.interaction_cancel_id IS NOT NULL THEN 'cancelled'
            WHEN (julianday($newest_ts) - julianday(t.request_time)) * 86400000.0 > $pending_timeout_ms
                THEN 'timeout'
            ELSE 'pending'
        END AS status,
        CASE
            WHEN t.interaction_cancel_id IS NOT NULL
                THEN CAST(round((julianday(t.cancel_time) - julianday(t.request_time)) * 86400000.0) AS REAL)
        END AS duration_ms
    FROM open_calls AS o
    JOIN tool_executions AS t ON t.interaction_request_id = o.iid
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
