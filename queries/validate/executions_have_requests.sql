-- title: no execution without its request row
-- rows: one per tool_executions row whose request row is missing from the source, past
--   the watermark, not an inbound tools/call request, or disagrees with it (JSON id,
--   tool name, request time).
-- param: interactions_max_id INTEGER = 0 (etl_metadata)
SELECT row_id, detail
FROM (
    SELECT
        te.interaction_request_id AS row_id,
        'tool_executions row of interactions.id '
            || COALESCE(CAST(te.interaction_request_id AS VARCHAR), 'NULL') || ': '
            || CASE
                WHEN te.interaction_request_id IS NULL THEN 'it names no request row'
                WHEN r.id IS NULL THEN 'its request row is not in the source'
                WHEN r.id > $interactions_max_id THEN 'its request row is past the watermark'
                WHEN NOT (r.direction = 'inbound' AND r.is_object AND r.method = 'tools/call'
                    AND r.has_id) THEN 'its row is not an inbound tools/call request'
                WHEN te.request_id_json IS DISTINCT FROM r.id_json
                    THEN 'its id ' || COALESCE(te.request_id_json, 'NULL')
                        || ' is not the row''s ' || r.id_json
                WHEN te.tool_name IS DISTINCT FROM COALESCE(r.tool_name, 'unknown')
                    THEN 'its tool ' || te.tool_name || ' is not the row''s '
                        || COALESCE(r.tool_name, 'unknown')
                WHEN te.request_time IS DISTINCT FROM TRY_CAST(r.ts AS TIMESTAMP)
                    THEN 'its request_time is not the row''s ' || r.ts
            END AS detail
    FROM tgt.tool_executions AS te
    LEFT JOIN raw_i AS r ON r.id = te.interaction_request_id
)
WHERE detail IS NOT NULL
ORDER BY row_id NULLS FIRST, detail;
