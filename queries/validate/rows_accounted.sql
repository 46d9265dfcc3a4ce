-- title: every interaction up to the watermark is accounted for
-- rows: one per source interaction up to the watermark that is in none of the places
--   docs/rules.md names ("Every row is accounted for"): an execution or other request,
--   the response of one, a row of errors, etl_other_messages or etl_rejects.
-- param: interactions_max_id INTEGER = 0 (etl_metadata)
WITH accounted AS (
    SELECT interaction_request_id AS id FROM tgt.tool_executions
    UNION SELECT interaction_response_id FROM tgt.tool_executions
    UNION SELECT interaction_id FROM tgt.etl_requests
    UNION SELECT response_interaction_id FROM tgt.etl_requests
    UNION SELECT interaction_id FROM tgt.errors
    UNION SELECT interaction_id FROM tgt.etl_other_messages
    UNION SELECT source_id FROM tgt.etl_rejects WHERE source_table = 'interactions'
)
SELECT
    r.id AS row_id,
    'interactions.id ' || r.id || ' (' || r.ts || ', ' || COALESCE(r.direction, 'NULL') || ' '
        || COALESCE(r.method, CASE WHEN r.has_result OR r.has_error THEN 'response' END, 'row')
        || '): in no analytics table and not rejected' AS detail
FROM raw_i AS r
WHERE r.id <= $interactions_max_id
    AND NOT EXISTS (SELECT 1 FROM accounted AS a WHERE a.id = r.id)
ORDER BY r.id;
