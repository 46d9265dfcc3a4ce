-- title: every reject and other message is a source row up to the watermark
-- rows: one per etl_rejects or etl_other_messages row whose source row is missing from
--   the source or past the watermark.
-- param: interactions_max_id INTEGER = 0 (etl_metadata)
-- param: events_max_id INTEGER = 0 (etl_metadata)
WITH listed AS (
    SELECT source_table, source_id, 'etl_rejects (' || reason || ')' AS what
    FROM tgt.etl_rejects
    UNION ALL
    SELECT 'interactions', interaction_id, 'etl_other_messages' FROM tgt.etl_other_messages
)
SELECT row_id, detail
FROM (
    SELECT
        l.source_id AS row_id,
        l.what || ' row of ' || l.source_table || '.id ' || l.source_id || ': '
            || CASE
                WHEN l.source_table NOT IN ('interactions', 'events')
                    THEN 'unknown source table'
                WHEN l.source_table = 'interactions' AND r.id IS NULL THEN 'not in the source'
                WHEN l.source_table = 'events' AND ev.id IS NULL THEN 'not in the source'
                WHEN l.source_table = 'interactions' AND l.source_id > $interactions_max_id
                    THEN 'past the watermark'
                WHEN l.source_table = 'events' AND l.source_id > $events_max_id
                    THEN 'past the watermark'
            END AS detail
    FROM listed AS l
    LEFT JOIN raw_i AS r ON l.source_table = 'interactions' AND r.id = l.source_id
    LEFT JOIN raw_e AS ev ON l.source_table = 'events' AND ev.id = l.source_id
)
WHERE detail IS NOT NULL
ORDER BY row_id, detail;
