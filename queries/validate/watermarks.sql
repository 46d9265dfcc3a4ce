-- title: the watermarks in etl_metadata match the source
-- rows: one per watermark that contradicts the source: beyond its newest row, naming a
--   row that is not there, a settled id past the read one, or a newest_timestamp that
--   is not the newest of the two rows read last (how a run computes it).
-- param: interactions_max_id INTEGER = NULL (etl_metadata)
-- param: events_max_id INTEGER = NULL (etl_metadata)
-- param: settled_id INTEGER = NULL (etl_metadata interactions_settled_id)
-- param: newest_timestamp VARCHAR = NULL (etl_metadata)
WITH src_max AS (
    SELECT
        (SELECT COALESCE(MAX(id), 0) FROM raw_i) AS i_max,
        (SELECT COALESCE(MAX(id), 0) FROM raw_e) AS e_max,
        (SELECT ts FROM raw_i WHERE id = $interactions_max_id) AS i_ts,
        (SELECT ts FROM raw_e WHERE id = $events_max_id) AS e_ts
)
SELECT CAST(NULL AS BIGINT) AS row_id, detail
FROM (
    SELECT 'interactions_max_id ' || $interactions_max_id
        || ' is beyond the newest interaction of the source (' || i_max || ')' AS detail
    FROM src_max WHERE $interactions_max_id > i_max
    UNION ALL
    SELECT 'interactions_max_id ' || $interactions_max_id || ' names no interaction of the source'
    FROM src_max WHERE $interactions_max_id > 0 AND $interactions_max_id <= i_max AND i_ts IS NULL
    UNION ALL
    SELECT 'events_max_id ' || $events_max_id || ' is beyond the newest event of the source ('
        || e_max || ')'
    FROM src_max WHERE $events_max_id > e_max
    UNION ALL
    SELECT 'events_max_id ' || $events_max_id || ' names no event of the source'
    FROM src_max WHERE $events_max_id > 0 AND $events_max_id <= e_max AND e_ts IS NULL
    UNION ALL
    SELECT 'interactions_settled_id ' || $settled_id || ' is past interactions_max_id '
        || $interactions_max_id
    WHERE $settled_id > $interactions_max_id
    UNION ALL
    SELECT 'newest_timestamp ' || COALESCE($newest_timestamp, 'NULL')
        || ' is not the newest timestamp of the rows read ('
        || COALESCE(GREATEST(i_ts, e_ts), 'NULL') || ')'
    FROM src_max
    WHERE GREATEST(i_ts, e_ts) IS DISTINCT FROM $newest_timestamp
        AND $interactions_max_id <= i_max AND $events_max_id <= e_max
)
ORDER BY detail;
