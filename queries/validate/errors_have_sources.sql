-- title: every row of errors comes from a source row
-- rows: one per errors row whose key does not match its row ids, or whose response row
--   or event is missing from the source, past the watermark, or not an error.
-- param: interactions_max_id INTEGER = 0 (etl_metadata)
-- param: events_max_id INTEGER = 0 (etl_metadata)
SELECT row_id, detail
FROM (
    SELECT
        e.id AS row_id,
        'errors row ' || e.error_key || ': '
            || CASE
                WHEN e.interaction_id IS NULL AND e.event_id IS NULL THEN 'it names no source row'
                WHEN e.error_key IS DISTINCT FROM COALESCE('i:' || e.interaction_id,
                    'e:' || e.event_id) THEN 'its key does not match its source row'
                WHEN e.interaction_id IS NOT NULL AND r.id IS NULL
                    THEN 'interactions.id ' || e.interaction_id || ' is not in the source'
                WHEN e.interaction_id > $interactions_max_id
                    THEN 'interactions.id ' || e.interaction_id || ' is past the watermark'
                WHEN e.interaction_id IS NOT NULL AND NOT (r.direction = 'outbound'
                    AND r.is_object AND r.method IS NULL
                    AND (r.has_error OR (r.has_result AND r.is_error)))
                    THEN 'interactions.id ' || e.interaction_id || ' is not an error response'
                WHEN e.event_id IS NOT NULL AND ev.id IS NULL
                    THEN 'events.id ' || e.event_id || ' is not in the source'
                WHEN e.event_id > $events_max_id
                    THEN 'events.id ' || e.event_id || ' is past the watermark'
                WHEN e.event_id IS NOT NULL AND ev.event_type <> 'request.error'
                    THEN 'events.id ' || e.event_id || ' is a ' || ev.event_type || ' event'
            END AS detail
    FROM tgt.errors AS e
    LEFT JOIN raw_i AS r ON r.id = e.interaction_id
    LEFT JOIN raw_e AS ev ON ev.id = e.event_id
)
WHERE detail IS NOT NULL
ORDER BY row_id, detail;
