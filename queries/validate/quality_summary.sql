-- title: Data quality of the load
-- rows: one per measure (in this order): source rows read, waiting past the watermark
--   and provisional (read but not settled: the next run redoes them); executions by
--   status; unpaired responses (results in etl_rejects, failed ones in errors); request
--   ids used more than once in one client session; malformed JSON; rejects in all.
-- param: interactions_max_id INTEGER = 0 (etl_metadata)
-- param: events_max_id INTEGER = 0 (etl_metadata)
-- param: settled_id INTEGER = 0 (etl_metadata interactions_settled_id)
WITH requests AS (
    SELECT session_id, request_id_json AS id_json FROM tgt.tool_executions
    UNION ALL
    SELECT session_id, id_json FROM tgt.etl_requests
),
dupes AS (
    SELECT session_id, id_json, COUNT(*) AS n
    FROM requests
    GROUP BY ALL
    HAVING COUNT(*) > 1
),
measures(pos, measure, value) AS (
    SELECT 1, 'interactions read', (SELECT COUNT(*) FROM raw_i WHERE id <= $interactions_max_id)
    UNION ALL
    SELECT 2, 'events read', (SELECT COUNT(*) FROM raw_e WHERE id <= $events_max_id)
    UNION ALL
    SELECT 3, 'interactions waiting past the watermark (next run)',
        (SELECT COUNT(*) FROM raw_i WHERE id > $interactions_max_id)
    UNION ALL
    SELECT 4, 'events waiting past the watermark (next run)',
        (SELECT COUNT(*) FROM raw_e WHERE id > $events_max_id)
    UNION ALL
    SELECT 5, 'interactions provisional (read, not settled)',
        (SELECT COUNT(*) FROM raw_i WHERE id > $settled_id AND id <= $interactions_max_id)
    UNION ALL
    SELECT 10 + ROW_NUMBER() OVER (ORDER BY status), 'executions ' || status, COUNT(*)
    FROM tgt.tool_executions
    GROUP BY status
    UNION ALL
    SELECT 30, 'unpaired responses: results (etl_rejects unpaired_response)',
        (SELECT COUNT(*) FROM tgt.etl_rejects WHERE reason = 'unpaired_response')
    UNION ALL
    SELECT 31, 'unpaired responses: errors (errors with no request)',
        (SELECT COUNT(*) FROM tgt.errors
         WHERE interaction_id IS NOT NULL AND interaction_request_id IS NULL)
    UNION ALL
    SELECT 40, 'duplicate request ids: session and id pairs used more than once',
        (SELECT COUNT(*) FROM dupes)
    UNION ALL
    SELECT 41, 'duplicate request ids: sessions affected',
        (SELECT COUNT(DISTINCT session_id) FROM dupes)
    UNION ALL
    SELECT 42, 'duplicate request ids: requests beyond the first',
        (SELECT COALESCE(SUM(n - 1), 0) FROM dupes)
    UNION ALL
    SELECT 50, 'malformed JSON (etl_rejects invalid_json)',
        (SELECT COUNT(*) FROM tgt.etl_rejects WHERE reason = 'invalid_json')
    UNION ALL
    SELECT 51, 'rejects in all', (SELECT COUNT(*) FROM tgt.etl_rejects)
)
SELECT measure, CAST(value AS BIGINT) AS value
FROM measures
ORDER BY pos;
