-- The answered calls whose durations make a full run's latency metrics, from its staging
-- file (DuckDB, schema stg; executions holds every answered call, executions_open the
-- rest), in day order: the rows derive.py's _latency reads from
-- tool_executions day by day (LATENCY_COLUMNS and LATENCY_FILTER there; keep them alike).
-- DuckDB's sort spills to the temporary directory beyond its memory limit
-- (source.duckdb_connect), so memory holds a few batches.
-- Grain: one row per answered call.
SELECT tool_name, request_time, duration_ms, status, request_date
FROM stg.executions
WHERE status IN ('success', 'error') AND duration_ms IS NOT NULL
ORDER BY request_date NULLS FIRST
