-- The per-request events (request.received, tool.call.start, tool.call.complete) in the
-- id range ($lo, $hi] whose data is not JSON by SQLite's json_valid (RFC 8259), for
-- etl_rejects: the context reads (source_context_events.sql) take the others by time
-- and reject nothing. It checks the JSON of every per-request event (0.5 s per million),
-- so it runs on a thread beside the first batches (run.py), not before them.
-- The unary + keeps SQLite from reading them through idx_events_type (a lookup of the
-- table row for each, where the id range is one walk in row order).
-- Grain: one row per broken per-request event.
SELECT
    CAST(id AS BIGINT) AS event_id,
    "timestamp" AS ts,
    data
FROM sqlite_query(
    'src',
    'SELECT id, timestamp, data
     FROM events WHERE id > ? AND id <= ?
       AND +event_type IN (''request.received'', ''tool.call.start'', ''tool.call.complete'')
       AND NOT json_valid(data)
     ORDER BY id',
    params = ROW($lo::BIGINT, $hi::BIGINT)
)
