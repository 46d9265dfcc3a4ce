-- title: every inbound tools/call request is an execution or a reject
-- rows: one per source row up to the watermark that is, by its content, an inbound
--   tools/call request with an id, but is neither a row of tool_executions nor of
--   etl_rejects.
-- param: interactions_max_id INTEGER = 0 (etl_metadata)
SELECT
    r.id AS row_id,
    'interactions.id ' || r.id || ' (' || r.ts || '), tools/call request ' || r.id_json
        || ': neither an execution nor a reject' AS detail
FROM raw_i AS r
WHERE r.id <= $interactions_max_id
    AND r.direction = 'inbound'
    AND r.is_object
    AND r.method = 'tools/call'
    AND r.has_id
    AND NOT EXISTS (
        SELECT 1 FROM tgt.tool_executions AS te WHERE te.interaction_request_id = r.id
    )
    AND NOT EXISTS (
        SELECT 1 FROM tgt.etl_rejects AS j
        WHERE j.source_table = 'interactions' AND j.source_id = r.id
    )
ORDER BY r.id;
