-- Before a run's rollback (inside its write transaction): remember what the rollback and
-- the status recomputation may change, so that the derived tables are recomputed only
-- where their inputs changed. Temp tables live on this connection only.
CREATE TEMP TABLE IF NOT EXISTS dirty_days (day TEXT PRIMARY KEY);
CREATE TEMP TABLE IF NOT EXISTS dirty_sessions (session_id TEXT PRIMARY KEY);
CREATE TEMP TABLE IF NOT EXISTS touched_days (day TEXT PRIMARY KEY);
CREATE TEMP TABLE IF NOT EXISTS error_links_before (
    error_key TEXT PRIMARY KEY, link INTEGER, session_id TEXT, day TEXT
);
CREATE TEMP TABLE IF NOT EXISTS unanswered_before (
    interaction_request_id INTEGER PRIMARY KEY, status TEXT, duration_ms REAL, day TEXT
);
DELETE FROM temp.dirty_days;
DELETE FROM temp.dirty_sessions;
DELETE FROM temp.touched_days;
DELETE FROM temp.error_links_before;
DELETE FROM temp.unanswered_before;
-- Executions the rollback deletes or resets: their day buckets and sessions.
INSERT OR IGNORE INTO temp.dirty_days (day)
SELECT request_date FROM tool_executions
WHERE interaction_request_id > $settled_iid OR interaction_response_id > $settled_iid
    OR interaction_cancel_id > $settled_iid;
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT session_id FROM tool_executions
WHERE interaction_request_id > $settled_iid OR interaction_response_id > $settled_iid;
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT session_id FROM etl_requests
WHERE interaction_id > $settled_iid OR response_interaction_id > $settled_iid;
-- Errors the rollback deletes.
INSERT OR IGNORE INTO temp.touched_days (day)
SELECT substr(timestamp, 1, 10) FROM errors
WHERE interaction_id > $settled_iid OR event_id > $events_wm;
-- What load_calls.sql and load_finish.sql recompute every run: open calls' statuses and
-- request.error links.
-- The open-call filter below must stay the one load_calls.sql's status pass uses.
INSERT INTO temp.error_links_before (error_key, link, session_id, day)
SELECT error_key, interaction_request_id, session_id, substr(timestamp, 1, 10)
FROM errors
WHERE error_source = 'request_error_event';
INSERT INTO temp.unanswered_before (interaction_request_id, status, duration_ms, day)
SELECT interaction_request_id, status, duration_ms, request_date
FROM tool_executions
WHERE $recheck_all = 1 AND interaction_response_id IS NULL
UNION
SELECT interaction_request_id, status, duration_ms, request_date
FROM tool_executions
WHERE $recheck_all = 0
    AND (status = 'pending' OR interaction_cancel_id > $settled_iid)
    AND +interaction_response_id IS NULL;
