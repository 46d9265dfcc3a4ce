-- The source's events for the audits: id, type, timestamp text and whether data is JSON.
CREATE OR REPLACE TEMP TABLE raw_e AS
SELECT
    CAST(id AS BIGINT) AS id,
    CAST("timestamp" AS VARCHAR) AS ts,
    event_type,
    data IS NULL OR COALESCE(json_valid(TRY(decode(encode(data)))), FALSE) AS data_ok
FROM sqlite_query('src', 'SELECT id, event_type, timestamp, data FROM events');
