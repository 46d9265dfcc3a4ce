-- Raw interactions in the id range ($lo, $hi], decoded with few passes per document.
-- Grain: one row per source interaction row. The inner statement runs inside SQLite
-- (sqlite_query) so the id range uses the rowid index instead of a full scan.
-- Each document is parsed by three list-form calls (types, strings, JSON texts of the
-- paths the ETL reads); whole sub-documents (params, result) are never copied out,
-- because tool output and base64 images make them large. Only `parsed` is MATERIALIZED:
-- DuckDB then evaluates the parses once instead of once per column that uses them, and
-- holds one copy of the content, not one per step.
-- Invalid JSON becomes NULL here and is classified (and rejected) downstream.
WITH raw AS (
    SELECT
        CAST(id AS BIGINT) AS interaction_id,
        session_id AS source_session_id,
        "timestamp" AS ts,
        direction,
        method AS row_method,
        content IS NOT NULL AS has_content,
        -- Invalid UTF-8 becomes NULL here (and a reject downstream): DuckDB's string
        -- functions must never see it (trim() does not return on such input).
        TRY(decode(encode(content))) AS content,
        CAST(content_size AS BIGINT) AS content_size
    FROM sqlite_query(
        'src',
        'SELECT id, session_id, timestamp, direction, method, content, content_size
         FROM interactions WHERE id > ? AND id <= ? ORDER BY id',
        params = ROW($lo::BIGINT, $hi::BIGINT)
    )
),
checked AS (
    SELECT
        * EXCLUDE (has_content),
        has_content AND content IS NULL AS bad_utf8,
        json_valid(content) AS valid
    FROM raw
),
-- The one materialised step: the content is held once, with everything parsed from it.
parsed AS MATERIALIZED (
    SELECT
        *,
        json_type(CASE WHEN valid THEN content END) AS doc_type,
        -- t: the JSON type at each path (NULL when absent)
        json_type(CASE WHEN valid THEN content END, [
            '$.id', '$.method', '$.params', '$.result', '$.error',                 -- 1-5
            '$.params.name', '$.params.arguments', '$.result.isError',             -- 6-8
            '$.result.structuredContent', '$.result.resultType', '$.result.task',  -- 9-11
            '$.error.code', '$.params._meta."io.modelcontextprotocol/clientInfo"', -- 12-13
            '$.params._meta."io.modelcontextprotocol/protocolVersion"',            -- 14
            '$.params._meta."io.modelcontextprotocol/clientCapabilities"',         -- 15
            '$.result.content'                                                     -- 16
        ]) AS t,
        -- s: the value as text (strings unquoted, anything else as JSON)
        json_extract_string(CASE WHEN valid THEN content END, [
            '$.id', '$.method', '$.params.name', '$.result.isError',               -- 1-4
            '$.result.resultType', '$.error.code', '$.error.message',              -- 5-7
            '$.error.data', '$.params.reason',                                     -- 8-9
            '$.params._meta."io.modelcontextprotocol/clientInfo".name',            -- 10
            '$.params._meta."io.modelcontextprotocol/clientInfo".version',         -- 11
            '$.params._meta."io.modelcontextprotocol/protocolVersion"'             -- 12
        ]) AS s,
        -- j: the value as JSON text (ids keep their type: 1 and "1" differ)
        json_extract(CASE WHEN valid THEN content END, ['$.id', '$.params.arguments', '$.params.requestId']) AS j,
        CAST(json_array_length(CASE WHEN valid THEN content END, '$.result.content') AS BIGINT)
            AS n_blocks
    FROM checked
)
SELECT
    interaction_id,
    source_session_id,
    ts,
    direction,
    row_method,
    COALESCE(content_size, strlen(content), 0) AS content_bytes,
    -- DuckDB's parser accepts trailing commas and NaN/Infinity; rows that may use them
    -- are checked again by a strict parser (pipeline/transform/decode.py).
    CASE WHEN valid AND regexp_matches(content, ',\s*[}\]]|NaN|Infinity') THEN content END
        AS lenient_suspect,
    CASE
        WHEN bad_utf8 THEN 'invalid_utf8'
        WHEN valid THEN lower(doc_type)
        WHEN content IS NULL OR trim(content) = '' THEN 'empty'
        ELSE 'invalid_json'
    END AS doc_kind,
    CAST(j[1] AS VARCHAR) AS id_json,
    t[1] AS id_type,
    s[1] AS id_text,
    CASE WHEN t[2] = 'VARCHAR' THEN s[2] END AS method,
    -- The params of requests other than tools/call (etl_requests.params); a tools/call
    -- keeps only its arguments, so its (often large) params are not copied.
    CASE WHEN t[3] IS NOT NULL AND NOT (t[2] = 'VARCHAR' AND s[2] = 'tools/call')
        THEN CAST(json_extract(content, '$.params') AS VARCHAR) END AS params_json,
    t[4] IS NOT NULL AS has_result,
    t[5] IS NOT NULL AS has_error,
    CASE WHEN t[6] = 'VARCHAR' THEN s[3] END AS tool_name,
    CAST(j[2] AS VARCHAR) AS arguments,
    CASE WHEN t[7] = 'OBJECT' THEN CAST(json_array_length(json_keys(j[2])) AS BIGINT) END
        AS argument_count,
    CAST(j[3] AS VARCHAR) AS cancel_request_id_json,
    s[9] AS cancel_reason,
    COALESCE(t[8] = 'BOOLEAN' AND s[4] = 'true', FALSE) AS is_error,
    t[9] IS NOT NULL AND t[9] <> 'NULL' AS has_structured_content,
    CASE WHEN t[10] = 'VARCHAR' THEN s[5] END AS result_type_field,
    COALESCE(t[11] = 'OBJECT', FALSE) AS has_task,
    CASE WHEN t[12] IN ('BIGINT', 'UBIGINT', 'INTEGER') THEN TRY_CAST(s[6] AS BIGINT)
         WHEN t[12] = 'DOUBLE' THEN TRY_CAST(TRY_CAST(s[6] AS DOUBLE) AS BIGINT)
    END AS error_code,
    s[7] AS error_message,
    s[8] AS error_data,
    CASE WHEN t[13] = 'OBJECT' THEN s[10] END AS meta_client_name,
    CASE WHEN t[13] = 'OBJECT' THEN s[11] END AS meta_client_version,
    CASE WHEN t[15] = 'OBJECT'
        THEN CAST(json_extract(content, '$.params._meta."io.modelcontextprotocol/clientCapabilities"') AS VARCHAR)
    END AS meta_capabilities,
    CASE WHEN t[14] = 'VARCHAR' THEN s[12] END AS meta_protocol_version,
    -- Content blocks by position (a wildcard path would skip blocks without the key).
    CASE WHEN t[16] = 'ARRAY'
        THEN list_transform(
            range(n_blocks),
            i -> COALESCE(json_extract_string(content, '$.result.content[' || i || '].type'), '?')
        )
    END AS content_types,
    CASE WHEN t[16] = 'ARRAY'
        THEN left(
            json_extract_string(
                content,
                '$.result.content[' || list_position(
                    list_transform(
                        range(n_blocks),
                        i -> json_extract_string(content, '$.result.content[' || i || '].type')
                    ),
                    'text'
                ) - 1 || '].text'
            ),
            500
        )
    END AS first_text
FROM parsed
