-- An incremental run's new calls (schema stg, written by pipeline/load.py), after
-- load_rollback.sql. New calls arrive whole (pipeline/run.py stages each once, with the
-- response this run paired to it, or as unanswered at the end of the run), so each row
-- is written once; the UPDATEs in load_apply.sql answer calls inserted by earlier runs.
-- A call's id is its request row; the staged calls (the view of the answered and the
-- still open ones) are inserted in that order. Their tables have tool_executions' very
-- columns, in its order (load.staged_calls_tables), so no column list is needed.
INSERT INTO tool_executions SELECT * FROM stg.calls ORDER BY id;
