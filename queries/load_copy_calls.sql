-- A rebuild's calls (schema stg, written by pipeline/load.py), into the table that
-- load_rollback.sql emptied and apply_run stripped of its secondary indexes. The staged
-- table has tool_executions' very shape (load.staged_calls_table), so SQLite copies the
-- records as they are, in id order, without decoding them: keep this statement an
-- INSERT … SELECT * with nothing added, or SQLite inserts row by row again.
INSERT INTO tool_executions SELECT * FROM stg.executions;
