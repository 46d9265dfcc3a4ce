-- Frozen copy of queries/source_context_events.sql as it was before json_transform
-- (tests/test_scan_equivalence.py compares the two).
-- The per-request events logged between $ts_lo and $ts_hi (inclusive) with id <= $max_id:
-- request.received (the client's session id for a method + JSON id) and tool.call.start
-- (whether a tool is answered by the proxy). Read by time, through the producer's
-- idx_events_timestamp index, as context for the interactions of one batch.
-- Grain: one row per event.
WITH raw AS (
    SELECT
        CAST(id AS BIGINT) AS event_id,
        session_id AS event_session_id,
        event_type,
        "timestamp" AS ts,
        data
    FROM sqlite_query(
        'src',
        'SELECT id, session_id, event_type, timestamp, data
         FROM events
         WHERE timestamp >= ? AND timestamp <= ? AND id <= ?
           AND event_type IN (''request.received'', ''tool.call.start'')',
        params = ROW($ts_lo::VARCHAR, $ts_hi::VARCHAR, $max_id::BIGINT)
    )
),
paths AS (
    SELECT
        *,
        json_extract(CASE WHEN json_valid(data) THEN data END,
            ['$.method', '$.request_id', '$.tool_name', '$.is_proxy_tool']) AS p
    FROM raw
)
SELECT
    event_id,
    event_session_id,
    event_type,
    ts,
    CASE WHEN json_type(p[1]) = 'VARCHAR' THEN p[1] ->> '$' END AS method,
    CAST(p[2] AS VARCHAR) AS request_id_json,
    CASE WHEN json_type(p[3]) = 'VARCHAR' THEN p[3] ->> '$' END AS tool_name,
    COALESCE(json_type(p[4]) = 'BOOLEAN' AND CAST(p[4] AS VARCHAR) = 'true', FALSE) AS is_proxy_tool
FROM paths
ORDER BY event_id
