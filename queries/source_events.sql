-- Events in the id range ($lo, $hi] other than the per-request ones (request.received,
-- tool.call.start, tool.call.complete), which are read by time as context
-- (source_context_events.sql); those whose data is not JSON are read for etl_rejects by
-- source_broken_request_events.sql, on a thread of their own.
-- The other types are 0.2% of the events. They are found through the producer's
-- idx_events_type, one range of types on each side of the per-request ones, in
-- BINARY order like SQLite's `NOT IN` (a NULL type is neither); SQLite's planner, with
-- no statistics, took the whole rowid range instead. The run waited for this read
-- before its first batch: 0.56 s at 1M interactions, a whole scan of the events
-- checking the JSON of each per-request one, and 4.7 s at 5M. On a source without
-- that index, SourceReader.events() drops the INDEXED BY and SQLite scans the range.
-- Grain: one row per source event row, with the data keys the ETL reads.
WITH raw AS (
    SELECT
        CAST(id AS BIGINT) AS event_id,
        session_id AS event_session_id,
        event_type,
        "timestamp" AS ts,
        TRY_CAST(duration_ms AS DOUBLE) AS duration_ms,
        data,
        data_ok
    FROM sqlite_query(
        'src',
        'SELECT id, session_id, event_type, timestamp, duration_ms, data, json_valid(data) AS data_ok
         FROM events INDEXED BY idx_events_type
         WHERE id > ? AND id <= ?
           AND (event_type < ''request.received''
                OR (event_type > ''request.received'' AND event_type < ''tool.call.complete'')
                OR (event_type > ''tool.call.complete'' AND event_type < ''tool.call.start'')
                OR event_type > ''tool.call.start'')
         ORDER BY id',
        params = ROW($lo::BIGINT, $hi::BIGINT)
    )
),
checked AS (
    -- Valid by SQLite's json_valid (RFC 8259): DuckDB's parser also accepts NaN,
    -- Infinity and trailing commas, which are not JSON.
    SELECT * EXCLUDE (data_ok), CASE WHEN data_ok = 1 THEN data END AS doc
    FROM raw
),
paths AS (
    SELECT
        *,
        json_extract(doc, [
            '$.method', '$.request_id', '$.client_name', '$.target_repl_id',
            '$.capabilities', '$.tool_name', '$.is_proxy_tool', '$.error_type',
            '$.error_message', '$.name', '$.path', '$.reason', '$.status'
        ]) AS p
    FROM checked
)
SELECT
    event_id,
    event_session_id,
    event_type,
    ts,
    duration_ms,
    data IS NOT NULL AND doc IS NULL AS data_invalid,
    CASE WHEN json_type(p[1]) = 'VARCHAR' THEN p[1] ->> '$' END AS method,
    CAST(p[2] AS VARCHAR) AS request_id_json,
    CASE WHEN json_type(p[3]) = 'VARCHAR' THEN p[3] ->> '$' END AS client_name,
    CASE WHEN json_type(p[4]) = 'VARCHAR' THEN p[4] ->> '$' END AS target_repl_id,
    CAST(p[5] AS VARCHAR) AS capabilities,
    CASE WHEN json_type(p[6]) = 'VARCHAR' THEN p[6] ->> '$' END AS tool_name,
    json_type(p[7]) = 'BOOLEAN' AND CAST(p[7] AS VARCHAR) = 'true' AS is_proxy_tool,
    CASE WHEN json_type(p[8]) = 'VARCHAR' THEN p[8] ->> '$' ELSE CAST(p[8] AS VARCHAR) END AS error_type,
    CASE WHEN json_type(p[9]) = 'VARCHAR' THEN p[9] ->> '$' ELSE CAST(p[9] AS VARCHAR) END AS error_message,
    CASE WHEN json_type(p[10]) = 'VARCHAR' THEN p[10] ->> '$' END AS repl_name,
    CASE WHEN json_type(p[11]) = 'VARCHAR' THEN p[11] ->> '$' END AS path,
    CASE WHEN json_type(p[12]) = 'VARCHAR' THEN p[12] ->> '$' END AS reason,
    CASE WHEN json_type(p[13]) = 'VARCHAR' THEN p[13] ->> '$' END AS repl_status,
    data
FROM paths
ORDER BY event_id
