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
-- REPLs whose lifecycle this run can change; derive._repl_lifecycles redoes only those.
-- A REPL's lifecycle is made of its registry events, its request.error events and the
-- first successful call it answered after each error, so it changes only with rows of
-- those that the run deletes, resets, adds or answers. Here, before the rollback: the
-- REPLs that answered the calls it deletes or resets (a re-read response may then
-- answer no call). The events it deletes are read again and staged, with their REPLs
-- (derive_mark_after.sql). A run that reads every interaction again ($settled_iid = 0)
-- redoes every REPL, old and new. Redoing every REPL in every run read every registry
-- and request.error event of the log: derive of a +1% run at 5M interactions took
-- 0.53 s with it, 0.48 s without.
CREATE TEMP TABLE IF NOT EXISTS dirty_repls (repl_id TEXT PRIMARY KEY);
DELETE FROM temp.dirty_repls;
INSERT OR IGNORE INTO temp.dirty_repls (repl_id)
SELECT answered_by FROM tool_executions
WHERE $settled_iid > 0 AND answered_by IS NOT NULL
    AND (interaction_request_id > $settled_iid OR interaction_response_id > $settled_iid);
INSERT OR IGNORE INTO temp.dirty_repls (repl_id)
SELECT session_id FROM session_lifecycle WHERE $settled_iid = 0 AND entity_type = 'repl';
-- The request.error links this run can change; load_finish.sql relinks only those. A
-- link is the latest call of the error's REPL and method open at the error's time, so
-- it can change only for errors at or after the earliest call whose row or times the
-- run changes: the calls the rollback deletes or resets, the calls the run stages (new
-- ones and the re-read tail's), and the calls of earlier runs it answers. The run's new
-- events are linked besides (event_id > $events_wm). A run that reads every
-- interaction again ($settled_iid = 0: a full run, or no interaction settled before)
-- relinks every error ('' is before every time) without looking. Relinking every error
-- in every run cost 0.35 s of a +1% run at 5M interactions.
CREATE TEMP TABLE IF NOT EXISTS relink_from (t TEXT, events_wm INTEGER);
DELETE FROM temp.relink_from;
INSERT INTO temp.relink_from (t, events_wm)
SELECT '', $events_wm WHERE $settled_iid = 0
UNION ALL
SELECT min(t), $events_wm FROM (
    SELECT min(request_time) AS t FROM tool_executions
    WHERE interaction_request_id > $settled_iid OR interaction_response_id > $settled_iid
    UNION ALL
    SELECT min(request_time) FROM stg.calls
    UNION ALL
    SELECT min(t.request_time)
    FROM stg.execution_responses AS u
    JOIN tool_executions AS t ON t.interaction_request_id = u.interaction_request_id
)
WHERE $settled_iid > 0;
-- The errors of those links, as load_finish.sql and derive_mark_after.sql read them.
CREATE TEMP VIEW IF NOT EXISTS relinked_errors AS
SELECT * FROM main.errors
WHERE error_source = 'request_error_event'
    AND (event_id > (SELECT events_wm FROM temp.relink_from)
        OR timestamp >= (SELECT t FROM temp.relink_from));
-- What load_calls.sql and load_finish.sql recompute: open calls' statuses and the
-- request.error links above.
-- The open-call filter below must stay the one load_calls.sql's status pass uses.
INSERT INTO temp.error_links_before (error_key, link, session_id, day)
SELECT error_key, interaction_request_id, session_id, substr(timestamp, 1, 10)
FROM temp.relinked_errors;
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
