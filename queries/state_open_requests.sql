-- The pairing state: requests with no response as of the settled watermark
-- ($settled_iid), tools/call from tool_executions and the others from etl_requests.
-- Read from the target attached to the source's DuckDB connection as `tgt`
-- (run._open_requests): into Arrow columns in C++, where Python's sqlite3 made a Python
-- row of each (0.9 s for the 161k open requests of a 5M log, now about 0.5 s, on a
-- thread beside the first batch's read).
-- Grain: one row per open request, any order (an ORDER BY here makes SQLite walk the
-- whole request-id index); columns in the order of run.OPEN_COLUMNS, the time as text.
-- Rows are found through the response-id indexes (no response, or one after the
-- watermark), not by reading every settled call: the log only grows. (The unary + keeps
-- SQLite from walking the request-id index instead.)
SELECT
    CAST(request_iid AS BIGINT) AS request_iid,
    CAST(id_key AS VARCHAR) AS id_key,
    CAST(id_text AS VARCHAR) AS id_text,
    CAST(route AS VARCHAR) AS route,
    CAST(method AS VARCHAR) AS method,
    CAST(tool_name AS VARCHAR) AS tool_name,
    CAST(session_id AS VARCHAR) AS session_id,
    CAST(source_session_id AS VARCHAR) AS source_session_id,
    CAST(client_name AS VARCHAR) AS client_name,
    CAST(arguments AS VARCHAR) AS arguments,
    CAST(request_time AS VARCHAR) AS request_time,
    CAST(is_tool_call AS BIGINT) = 1 AS is_tool_call
FROM sqlite_query(
    'tgt',
    'WITH calls AS (
         SELECT * FROM tool_executions WHERE interaction_response_id IS NULL
         UNION ALL
         SELECT * FROM tool_executions WHERE interaction_response_id > ?1
     ),
     others AS (
         SELECT * FROM etl_requests WHERE response_interaction_id IS NULL
         UNION ALL
         SELECT * FROM etl_requests WHERE response_interaction_id > ?1
     )
     SELECT
         interaction_request_id AS request_iid,
         request_id_json AS id_key,
         request_id AS id_text,
         route,
         tool_method AS method,
         tool_name,
         session_id,
         source_session_id,
         client_name,
         arguments,
         request_time,
         1 AS is_tool_call
     FROM calls
     WHERE +interaction_request_id <= ?1
     UNION ALL
     SELECT
         interaction_id,
         id_json,
         CASE WHEN substr(id_json, 1, 1) = ''"'' THEN json_extract(id_json, ''$'') ELSE id_json END,
         route,
         method,
         NULL,
         session_id,
         source_session_id,
         client_name,
         params,
         request_time,
         0
     FROM others
     WHERE +interaction_id <= ?1',
    params = ROW($settled_iid::BIGINT)
)
