-- title: every error response of the source is a row of errors
-- rows: one per source row up to the watermark that is, by its content, an outbound
--   JSON-RPC error response or a result with isError true, but has no errors row (key
--   i:<id>) and is not rejected.
-- param: interactions_max_id INTEGER = 0 (etl_metadata)
SELECT
    r.id AS row_id,
    'interactions.id ' || r.id || ' (' || r.ts || '), '
        || CASE WHEN r.has_error THEN 'JSON-RPC error' ELSE 'isError result' END
        || ' answering id ' || COALESCE(r.id_json, 'NULL') || ': no errors row and no reject'
        AS detail
FROM raw_i AS r
WHERE r.id <= $interactions_max_id
    AND r.direction = 'outbound'
    AND r.is_object
    AND r.method IS NULL
    AND (r.has_error OR (r.has_result AND r.is_error))
    AND NOT EXISTS (SELECT 1 FROM tgt.errors AS e WHERE e.error_key = 'i:' || r.id)
    AND NOT EXISTS (
        SELECT 1 FROM tgt.etl_rejects AS j
        WHERE j.source_table = 'interactions' AND j.source_id = r.id
    )
ORDER BY r.id;
