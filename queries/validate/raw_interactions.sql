-- The source's interactions, decoded once for the audits: one row per source row with
-- what classifying it by content needs (docs/rules.md: by content, never by
-- message_type; ids as JSON text, so 1 and "1" differ). Read through sqlite_query so
-- timestamps stay the producer's text; invalid UTF-8 becomes NULL content.
CREATE OR REPLACE TEMP TABLE raw_i AS
WITH raw AS (
    SELECT
        CAST(id AS BIGINT) AS id,
        CAST("timestamp" AS VARCHAR) AS ts,
        direction,
        TRY(decode(encode(content))) AS content
    FROM sqlite_query('src', 'SELECT id, timestamp, direction, content FROM interactions')
),
checked AS (
    SELECT id, ts, direction, CASE WHEN json_valid(content) THEN content END AS doc
    FROM raw
),
paths AS (
    SELECT
        id,
        ts,
        direction,
        json_type(doc) AS doc_kind,
        json_extract(doc, ['$.id', '$.method', '$.result', '$.error', '$.result.isError',
            '$.params.name']) AS p
    FROM checked
)
SELECT
    id,
    ts,
    direction,
    COALESCE(doc_kind = 'OBJECT', FALSE) AS is_object,
    CASE WHEN json_type(p[2]) = 'VARCHAR' THEN p[2] ->> '$' END AS method,
    CAST(p[1] AS VARCHAR) AS id_json,
    COALESCE(CAST(p[1] AS VARCHAR) <> 'null', FALSE) AS has_id,
    p[3] IS NOT NULL AS has_result,
    p[4] IS NOT NULL AS has_error,
    COALESCE(json_type(p[5]) = 'BOOLEAN' AND CAST(p[5] AS VARCHAR) = 'true', FALSE) AS is_error,
    CASE WHEN json_type(p[6]) = 'VARCHAR' THEN p[6] ->> '$' END AS tool_name
FROM paths;
