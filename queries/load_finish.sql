-- Statuses that depend on the whole source, recomputed every run (SPEC §2): a call with
-- no response is cancelled if a cancellation came, else timeout once older than the
-- pending timeout relative to the newest source timestamp ($newest_ts), else pending.
-- Timestamps carry milliseconds, so the rounded julianday difference is exact.
UPDATE tool_executions
SET status = CASE
        WHEN interaction_cancel_id IS NOT NULL THEN 'cancelled'
        WHEN (julianday($newest_ts) - julianday(request_time)) * 86400000.0 > $pending_timeout_ms
            THEN 'timeout'
        ELSE 'pending'
    END,
    duration_ms = CASE
        WHEN interaction_cancel_id IS NOT NULL
            THEN CAST(round((julianday(cancel_time) - julianday(request_time)) * 86400000.0) AS REAL)
    END
WHERE interaction_response_id IS NULL;
-- A person's resolutions survive every rebuild: they are keyed by the error's source row.
UPDATE errors
SET resolved = 1, resolution_notes = r.resolution_notes
FROM error_resolutions AS r
WHERE errors.error_key = r.error_key
    AND (errors.resolved IS NOT 1 OR errors.resolution_notes IS NOT r.resolution_notes);
