-- Raw interactions in the id range ($lo, $hi], decoded with one parse per document.
-- Grain: one row per source interaction row. The inner statement runs inside SQLite
-- (sqlite_query) so the id range uses the rowid index instead of a full scan.
-- Each valid document is parsed by one json_transform into a struct that holds only the
-- paths the ETL reads. DuckDB's JSON functions cost mostly per call, not per byte: one
-- call with a structure is several times cheaper than per-path calls (and than one call
-- per content block). Whole sub-documents (params, result) are never copied out,
-- because tool output and base64 images make them large.
-- What json_transform does not say is recovered from the short texts it returns, or by
-- a further call on only the rows that need it:
--   * JSON null and an absent key both become NULL. A JSON null is spelled `null` in
--     the text, so only documents that contain that word are asked for the types of
--     the keys where the two differ (`nulls`).
--   * "JSON" leaves keep a value as JSON text (strings quoted): the JSON type and the
--     unquoted string come from that short text, not from the document.
--   * a non-object where a struct is expected gives a struct of NULLs and a non-array
--     where a list is expected gives NULL: the "absent" the ETL wants there.
--   * DuckDB writes a number that a VARCHAR leaf holds in its own way (1e+16), not as
--     json_extract_string does (10000000000000000.0): every leaf is "JSON", and
--     unquoted() (a macro pipeline/source.py defines) gives the string, or the text.
-- No step is MATERIALIZED: the struct is computed once by the projection that makes it,
-- and copying every row (content included) into a CTE cost more than the parse.
-- The output equals, column for column, that of the per-path version this replaced
-- (tests/data/source_interactions_reference.sql; tests/test_scan_equivalence.py).
-- Invalid JSON becomes NULL here and is classified (and rejected) downstream. The
-- excerpt of a rejected row is read for it alone (source_excerpts.sql): cut from every
-- row here, it was copied through the scan, Arrow and every Polars step for the few
-- rows that are rejected (about 0.15 s of the 1M full run, 0.4 s of its CPU).
-- The producer's message_type is not read: rows are classified by their content
-- (docs/rules.md), and every column handed over costs the sqlite extension two calls
-- per row (0.1 s of CPU per million rows).
WITH raw AS (
    SELECT
        CAST(id AS BIGINT) AS interaction_id,
        session_id AS source_session_id,
        "timestamp" AS ts,
        direction,
        method AS row_method,
        content IS NOT NULL AS has_content,
        content AS raw_content,  -- as SQLite holds it: maybe not UTF-8 (see checked)
        CAST(content_size AS BIGINT) AS content_size
    FROM sqlite_query(
        'src',
        'SELECT id, session_id, timestamp, direction, method, content, content_size
         FROM interactions WHERE id > ? AND id <= ? ORDER BY id',
        params = ROW($lo::BIGINT, $hi::BIGINT)
    )
),
-- Invalid UTF-8 becomes NULL content (and a reject downstream): DuckDB's string
-- functions must never see it (trim() does not return on such input). json_valid is
-- false for it (its parser checks UTF-8), so only the texts that are not valid JSON
-- are checked and copied by decode(encode()): 0.15 s of the 1M scan's CPU.
-- json_transform fails on invalid JSON; json_valid is cheaper than TRY() around it.
checked AS (
    SELECT
        * EXCLUDE (has_content, raw_content),
        has_content AND content IS NULL AS bad_utf8
    FROM (
        SELECT
            *,
            CASE WHEN valid THEN raw_content ELSE TRY(decode(encode(raw_content))) END
                AS content
        FROM (SELECT *, json_valid(raw_content) AS valid FROM raw)
    )
),
-- The one parse. "JSON" leaves hold the value as JSON text; VARCHAR leaves hold it as
-- json_extract_string gives it (strings unquoted, anything else as JSON), for the
-- columns that are that text as is. structuredContent maps to a struct with a key no
-- producer uses: non-NULL exactly when the value is present and not null, and it copies
-- nothing.
parsed AS (
    SELECT
        *,
        CASE WHEN valid THEN json_transform(content, '{
            "id": "JSON",
            "method": "JSON",
            "params": {
                "name": "JSON",
                "arguments": "JSON",
                "reason": "JSON",
                "requestId": "JSON",
                "_meta": {
                    "io.modelcontextprotocol/clientInfo": {"name": "JSON", "version": "JSON"},
                    "io.modelcontextprotocol/protocolVersion": "JSON",
                    "io.modelcontextprotocol/clientCapabilities": "JSON"
                }
            },
            "result": {
                "isError": "JSON",
                "structuredContent": {"mcp-analytics/presence": "JSON"},
                "resultType": "JSON",
                "task": "JSON",
                "content": [{"type": "JSON", "text": "VARCHAR"}]
            },
            "error": {"code": "JSON", "message": "JSON", "data": "JSON"}
        }') END AS doc
    FROM checked
),
-- The values, by name, and what the transform cannot tell.
fields AS (
    SELECT
        * EXCLUDE (doc),
        -- A struct field is non-NULL only when the document is an object.
        doc.id IS NOT NULL OR doc.method IS NOT NULL OR doc.params IS NOT NULL
            OR doc.result IS NOT NULL OR doc.error IS NOT NULL AS known_object,
        -- The types of the keys whose JSON null differs from absent in the output;
        -- a second parse, but only of documents that contain the word null.
        CASE WHEN doc IS NOT NULL AND contains(content, 'null')
            THEN json_type(content, [
                '$.id', '$.method', '$.params', '$.result', '$.error',     -- 1-5
                '$.params.arguments', '$.params.requestId'                 -- 6-7
            ])
        END AS nulls,
        -- The JSON leaves as text (a CASE that mixes JSON and VARCHAR would cast to JSON).
        CAST(doc.id AS VARCHAR) AS id_json,
        CAST(doc.method AS VARCHAR) AS method_json,
        doc.params IS NOT NULL AS has_params,
        CAST(doc.params.name AS VARCHAR) AS name_json,
        CAST(doc.params.arguments AS VARCHAR) AS arguments_json,
        CAST(doc.params.requestId AS VARCHAR) AS request_id_json,
        CAST(doc.params.reason AS VARCHAR) AS reason_json,
        CAST(doc.params._meta."io.modelcontextprotocol/clientInfo".name AS VARCHAR)
            AS client_name_json,
        CAST(doc.params._meta."io.modelcontextprotocol/clientInfo".version AS VARCHAR)
            AS client_version_json,
        CAST(doc.params._meta."io.modelcontextprotocol/protocolVersion" AS VARCHAR)
            AS protocol_version_json,
        CAST(doc.params._meta."io.modelcontextprotocol/clientCapabilities" AS VARCHAR)
            AS capabilities_json,
        doc.result IS NOT NULL AS has_result_value,
        CAST(doc.result.isError AS VARCHAR) AS is_error_json,
        doc.result.structuredContent IS NOT NULL AS has_structured_content,
        CAST(doc.result.resultType AS VARCHAR) AS result_type_json,
        CAST(doc.result.task AS VARCHAR) AS task_json,
        list_transform(
            doc.result.content, b -> {'type': CAST(b.type AS VARCHAR), 'text': b.text}
        ) AS blocks,
        doc.error IS NOT NULL AS has_error_value,
        CAST(doc.error.code AS VARCHAR) AS code_json,
        CAST(doc.error.message AS VARCHAR) AS error_message_json,
        CAST(doc.error.data AS VARCHAR) AS error_data_json
    FROM parsed
)
SELECT
    interaction_id,
    source_session_id,
    ts,
    direction,
    row_method,
    COALESCE(content_size, strlen(content), 0) AS content_bytes,
    -- DuckDB's parser accepts trailing commas and NaN/Infinity; rows that may use them
    -- are checked again by a strict parser (pipeline/transform/decode.py). Three tests
    -- instead of one alternation: literals are found with a fast substring search, and
    -- a pattern that starts with one byte lets RE2 skip ahead to it.
    CASE WHEN valid AND (
            contains(content, 'NaN')
            OR contains(content, 'Infinity')
            OR regexp_matches(content, ',\s*[}\]]')
        ) THEN content
    END AS lenient_suspect,
    CASE
        WHEN bad_utf8 THEN 'invalid_utf8'
        -- Other JSON types, or an object with none of these keys, are asked again.
        WHEN valid THEN CASE WHEN known_object THEN 'object' ELSE lower(json_type(content)) END
        WHEN content IS NULL OR trim(content) = '' THEN 'empty'
        ELSE 'invalid_json'
    END AS doc_kind,
    COALESCE(id_json, CASE WHEN nulls[1] = 'NULL' THEN 'null' END) AS id_json,
    CASE
        WHEN id_json IS NULL THEN nulls[1]
        -- "-0" is a signed integer (BIGINT) but is written back as "0" (UBIGINT).
        WHEN id_json = '0' THEN json_type(content, '$.id')
        ELSE json_type(id_json)
    END AS id_type,
    CASE WHEN starts_with(id_json, '"') THEN json_extract_string(id_json, '$') ELSE id_json END
        AS id_text,
    CASE WHEN starts_with(method_json, '"') THEN json_extract_string(method_json, '$') END
        AS method,
    -- The params of requests other than tools/call (etl_requests.params); a tools/call
    -- keeps only its arguments, so its (often large) params are not copied. Messages
    -- without a method keep none.
    CASE WHEN (has_params OR nulls[3] IS NOT NULL)
            AND (method_json IS NOT NULL OR nulls[2] IS NOT NULL)
            AND method_json IS DISTINCT FROM '"tools/call"'
        THEN CAST(json_extract(content, '$.params') AS VARCHAR)
    END AS params_json,
    has_result_value OR nulls[4] IS NOT NULL AS has_result,
    has_error_value OR nulls[5] IS NOT NULL AS has_error,
    CASE WHEN starts_with(name_json, '"') THEN json_extract_string(name_json, '$') END
        AS tool_name,
    COALESCE(arguments_json, CASE WHEN nulls[6] = 'NULL' THEN 'null' END) AS arguments,
    CASE WHEN starts_with(arguments_json, '{')
        THEN CAST(len(json_keys(arguments_json)) AS BIGINT)
    END AS argument_count,
    COALESCE(request_id_json, CASE WHEN nulls[7] = 'NULL' THEN 'null' END)
        AS cancel_request_id_json,
    unquoted(reason_json) AS cancel_reason,
    COALESCE(is_error_json = 'true', FALSE) AS is_error,
    has_structured_content,
    CASE WHEN starts_with(result_type_json, '"') THEN json_extract_string(result_type_json, '$') END
        AS result_type_field,
    COALESCE(starts_with(task_json, '{'), FALSE) AS has_task,
    CASE
        WHEN json_type(code_json) IN ('BIGINT', 'UBIGINT', 'INTEGER') THEN TRY_CAST(code_json AS BIGINT)
        WHEN json_type(code_json) = 'DOUBLE' THEN TRY_CAST(TRY_CAST(code_json AS DOUBLE) AS BIGINT)
    END AS error_code,
    unquoted(error_message_json) AS error_message,
    unquoted(error_data_json) AS error_data,
    -- A clientInfo that is not an object gives a struct of NULLs: no name, no version.
    unquoted(client_name_json) AS meta_client_name,
    unquoted(client_version_json) AS meta_client_version,
    CASE WHEN starts_with(capabilities_json, '{') THEN capabilities_json END AS meta_capabilities,
    CASE WHEN starts_with(protocol_version_json, '"')
        THEN json_extract_string(protocol_version_json, '$')
    END AS meta_protocol_version,
    -- A block that is not an object, or has no type, is '?'.
    list_transform(blocks, b -> COALESCE(unquoted(b.type), '?')) AS content_types,
    -- The first text block's text. Its leaf is VARCHAR, not JSON: a JSON leaf copied
    -- every text out as JSON (tool output can be 300 KB) only for unquoted() to parse
    -- it again, 0.4 s of the 1M scan's CPU. A VARCHAR leaf writes numbers its own way (see
    -- above), so a text that is a number is read again from the document as the JSON
    -- version did.
    left(CASE
        WHEN length(first_text) <= 40
            AND regexp_full_match(first_text, '-?[0-9][0-9.]*([eE][-+]?[0-9]+)?')
            THEN json_extract_string(content, '$.result.content[' || (text_block - 1) || '].text')
        ELSE first_text
    END, 500) AS first_text
FROM (
    SELECT
        *,
        list_position(list_transform(blocks, b -> unquoted(b.type) = 'text'), true)
            AS text_block,
        blocks[text_block].text AS first_text
    FROM fields
)
