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
-- One json_transform per document, as in source_interactions.sql: its "JSON" leaves
-- hold each value as JSON text (NULL when absent or null, or the data not an object),
-- so a string is the text that starts with a quote. Cheaper than json_extract with a
-- list of paths: 1.91 to 1.78 s of CPU for the million context events of the 1M log.
paths AS (
    SELECT
        *,
        CASE WHEN json_valid(data) THEN json_transform(data, '{
            "method": "JSON", "request_id": "JSON", "tool_name": "JSON", "is_proxy_tool": "JSON"
        }') END AS p
    FROM raw
)
SELECT
    event_id,
    event_session_id,
    event_type,
    ts,
    CASE WHEN starts_with(CAST(p.method AS VARCHAR), '"') THEN p.method ->> '$' END AS method,
    -- A JSON null request_id is 'null' (json_transform gives NULL for it, as for an
    -- absent key): asked again only of the documents that contain the word.
    COALESCE(
        CAST(p.request_id AS VARCHAR),
        CASE WHEN contains(data, 'null') THEN CAST(json_extract(data, '$.request_id') AS VARCHAR) END
    ) AS request_id_json,
    CASE WHEN starts_with(CAST(p.tool_name AS VARCHAR), '"') THEN p.tool_name ->> '$' END
        AS tool_name,
    COALESCE(CAST(p.is_proxy_tool AS VARCHAR) = 'true', FALSE) AS is_proxy_tool
FROM paths
ORDER BY event_id
