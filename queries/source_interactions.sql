-- Raw interactions in the id range ($lo, $hi], decoded once per document.
-- Grain: one row per source interaction row. The inner statement runs inside SQLite
-- (sqlite_query) so the id range uses the rowid index instead of a full scan.
-- JSON paths are extracted with one parse per document (the list form of json_extract);
-- invalid JSON becomes NULL here and is classified (and rejected) downstream.
WITH raw AS (
    SELECT
        CAST(id AS BIGINT) AS interaction_id,
        session_id AS source_session_id,
        "timestamp" AS ts,
        direction,
        message_type,
        method AS row_method,
        -- Invalid UTF-8 becomes NULL here (and a reject downstream): DuckDB's string
        -- functions must never see it (trim() does not return on such input).
        TRY(decode(encode(content))) AS content,
        content IS NOT NULL AND TRY(decode(encode(content))) IS NULL AS bad_utf8,
        CAST(content_size AS BIGINT) AS content_size
    FROM sqlite_query(
        'src',
        'SELECT id, session_id, timestamp, direction, message_type, method, content, content_size
         FROM interactions WHERE id > ? AND id <= ? ORDER BY id',
        params = ROW($lo::BIGINT, $hi::BIGINT)
    )
),
checked AS (
    SELECT
        *,
        CASE WHEN json_valid(content) THEN content END AS doc
    FROM raw
),
paths AS (
    SELECT
        *,
        json_type(doc) AS doc_kind,
        json_extract(doc, [
            '$.id', '$.method', '$.params', '$.result', '$.error',
            '$.params.name', '$.params.arguments', '$.params._meta.progressToken',
            '$.params.requestId', '$.params.reason',
            '$.result.isError', '$.result.structuredContent', '$.result.resultType',
            '$.result.task', '$.error.code', '$.error.message', '$.error.data',
            '$.params.protocolVersion', '$.params.clientInfo', '$.params.capabilities',
            '$.params._meta."io.modelcontextprotocol/clientInfo"',
            '$.params._meta."io.modelcontextprotocol/protocolVersion"',
            '$.result.content',
            '$.params._meta."io.modelcontextprotocol/clientCapabilities"'
        ]) AS p
    FROM checked
)
SELECT
    interaction_id,
    source_session_id,
    ts,
    direction,
    message_type,
    row_method,
    COALESCE(content_size, strlen(content), 0) AS content_bytes,
    left(content, 200) AS excerpt,
    -- DuckDB's parser accepts trailing commas and NaN/Infinity; rows that may use them
    -- are checked again by a strict parser (pipeline/transform/decode.py).
    CASE WHEN doc IS NOT NULL AND regexp_matches(doc, ',\s*[}\]]|NaN|Infinity') THEN doc END
        AS lenient_suspect,
    CASE
        WHEN bad_utf8 THEN 'invalid_utf8'
        WHEN content IS NULL OR trim(content) = '' THEN 'empty'
        WHEN doc IS NULL THEN 'invalid_json'
        ELSE lower(doc_kind)
    END AS doc_kind,
    -- JSON text of the id keeps its type: 1 and "1" stay different keys.
    CAST(p[1] AS VARCHAR) AS id_json,
    json_type(p[1]) AS id_type,
    p[1] ->> '$' AS id_text,
    CASE WHEN json_type(p[2]) = 'VARCHAR' THEN p[2] ->> '$' END AS method,
    json_type(p[3]) AS params_type,
    CAST(p[3] AS VARCHAR) AS params_json,
    p[4] IS NOT NULL AS has_result,
    json_type(p[4]) AS result_kind,
    p[5] IS NOT NULL AS has_error,
    json_type(p[5]) AS error_kind,
    CASE WHEN json_type(p[6]) = 'VARCHAR' THEN p[6] ->> '$' END AS tool_name,
    CAST(p[7] AS VARCHAR) AS arguments,
    CASE WHEN json_type(p[7]) = 'OBJECT' THEN CAST(json_array_length(json_keys(p[7])) AS BIGINT) END
        AS argument_count,
    CAST(p[8] AS VARCHAR) AS progress_token_json,
    CAST(p[9] AS VARCHAR) AS cancel_request_id_json,
    CASE WHEN json_type(p[10]) = 'VARCHAR' THEN p[10] ->> '$' ELSE CAST(p[10] AS VARCHAR) END
        AS cancel_reason,
    COALESCE(json_type(p[11]) = 'BOOLEAN' AND CAST(p[11] AS VARCHAR) = 'true', FALSE) AS is_error,
    p[12] IS NOT NULL AND json_type(p[12]) <> 'NULL' AS has_structured_content,
    CASE WHEN json_type(p[13]) = 'VARCHAR' THEN p[13] ->> '$' END AS result_type_field,
    p[14] IS NOT NULL AND json_type(p[14]) = 'OBJECT' AS has_task,
    CASE WHEN json_type(p[15]) IN ('BIGINT', 'UBIGINT', 'INTEGER') THEN TRY_CAST(CAST(p[15] AS VARCHAR) AS BIGINT)
         WHEN json_type(p[15]) = 'DOUBLE' THEN TRY_CAST(TRY_CAST(CAST(p[15] AS VARCHAR) AS DOUBLE) AS BIGINT)
    END AS error_code,
    CASE WHEN json_type(p[16]) = 'VARCHAR' THEN p[16] ->> '$' ELSE CAST(p[16] AS VARCHAR) END
        AS error_message,
    CASE WHEN json_type(p[17]) = 'VARCHAR' THEN p[17] ->> '$' ELSE CAST(p[17] AS VARCHAR) END
        AS error_data,
    CASE WHEN json_type(p[18]) = 'VARCHAR' THEN p[18] ->> '$' END AS protocol_version,
    CAST(p[19] AS VARCHAR) AS client_info,
    CAST(p[20] AS VARCHAR) AS capabilities,
    CAST(p[21] AS VARCHAR) AS meta_client_info,
    CASE WHEN json_type(p[21]) = 'OBJECT' THEN json_extract_string(p[21], '$.name') END
        AS meta_client_name,
    CASE WHEN json_type(p[21]) = 'OBJECT' THEN json_extract_string(p[21], '$.version') END
        AS meta_client_version,
    CASE WHEN json_type(p[24]) = 'OBJECT' THEN CAST(p[24] AS VARCHAR) END AS meta_capabilities,
    CASE WHEN json_type(p[22]) = 'VARCHAR' THEN p[22] ->> '$' END AS meta_protocol_version,
    json_type(p[23]) AS content_kind,
    CASE WHEN json_type(p[23]) = 'ARRAY'
        THEN list_transform(
            CAST(json_extract(p[23], '$[*]') AS VARCHAR[]),
            x -> COALESCE(json_extract_string(x, '$.type'), '?')
        )
    END AS content_types,
    CASE WHEN json_type(p[23]) = 'ARRAY'
        THEN left(
            json_extract_string(
                list_filter(
                    CAST(json_extract(p[23], '$[*]') AS VARCHAR[]),
                    x -> json_extract_string(x, '$.type') = 'text'
                )[1],
                '$.text'
            ),
            500
        )
    END AS first_text
FROM paths
ORDER BY interaction_id
