-- After a run's staged rows are applied and load_finish.sql ran (schema stg attached):
-- add what the new rows touch to the sets derive_mark_before.sql started.
-- A full rebuild ($settled_iid = 0) staged every row of tool_executions: its covering
-- indexes give the same days and sessions as the staged rows, without reading the wide
-- staged rows (0.4 s of the 1M full run). A constant false WHERE skips a scan.
INSERT OR IGNORE INTO temp.dirty_days (day)
SELECT request_date FROM stg.calls WHERE $settled_iid > 0;
INSERT OR IGNORE INTO temp.dirty_days (day)
SELECT DISTINCT request_date FROM tool_executions WHERE $settled_iid = 0;
INSERT OR IGNORE INTO temp.dirty_days (day)
SELECT t.request_date
FROM stg.execution_responses AS u
JOIN tool_executions AS t ON t.interaction_request_id = u.interaction_request_id;
INSERT OR IGNORE INTO temp.dirty_days (day)
SELECT t.request_date
FROM stg.execution_cancels AS c
JOIN tool_executions AS t ON t.interaction_request_id = c.interaction_request_id;
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT session_id FROM stg.calls WHERE $settled_iid > 0;
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT DISTINCT session_id FROM tool_executions WHERE $settled_iid = 0;
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT session_id FROM stg.requests;
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT t.session_id
FROM stg.execution_responses AS u
JOIN tool_executions AS t ON t.interaction_request_id = u.interaction_request_id;
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT r.session_id
FROM stg.request_responses AS u
JOIN etl_requests AS r ON r.interaction_id = u.interaction_request_id;
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT session_id FROM stg.client_map;
INSERT OR IGNORE INTO temp.dirty_sessions (session_id)
SELECT session_id FROM stg.stateless_clients;
-- REPLs (derive_mark_before.sql says which): those of the calls staged or answered, of
-- the new registry and request.error events. A full rebuild's staged events name every
-- REPL with a lifecycle, so its calls are not read.
INSERT OR IGNORE INTO temp.dirty_repls (repl_id)
SELECT answered_by FROM stg.calls WHERE $settled_iid > 0 AND answered_by IS NOT NULL;
INSERT OR IGNORE INTO temp.dirty_repls (repl_id)
SELECT t.answered_by
FROM stg.execution_responses AS u
JOIN tool_executions AS t ON t.interaction_request_id = u.interaction_request_id
WHERE t.answered_by IS NOT NULL;
INSERT OR IGNORE INTO temp.dirty_repls (repl_id)
SELECT repl_id FROM stg.repl_events;
INSERT OR IGNORE INTO temp.dirty_repls (repl_id)
SELECT source_session_id FROM stg.errors
WHERE error_source = 'request_error_event' AND source_session_id IS NOT NULL;
-- Days whose rows changed in any partitioned table (for the Parquet export).
INSERT OR IGNORE INTO temp.touched_days (day)
SELECT day FROM temp.dirty_days;
INSERT OR IGNORE INTO temp.touched_days (day)
SELECT substr(timestamp, 1, 10) FROM stg.errors;
INSERT OR IGNORE INTO temp.touched_days (day)
SELECT substr(e.timestamp, 1, 10)
FROM temp.relinked_errors AS e
LEFT JOIN temp.error_links_before AS b ON b.error_key = e.error_key
WHERE b.error_key IS NULL OR b.link IS NOT e.interaction_request_id
    OR b.session_id IS NOT e.session_id;
INSERT OR IGNORE INTO temp.touched_days (day)
SELECT b.day
FROM temp.unanswered_before AS b
LEFT JOIN tool_executions AS t ON t.interaction_request_id = b.interaction_request_id
WHERE t.interaction_request_id IS NULL OR t.status IS NOT b.status
    OR t.duration_ms IS NOT b.duration_ms;
