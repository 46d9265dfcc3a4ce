-- Bounds of the source snapshot a run reads: the highest row id of a raw table and
-- the timestamp of that row (row ids grow with time, so it is the newest timestamp;
-- reading it by id avoids a full scan). Rows inserted later wait for the next run.
SELECT
    CAST(id AS BIGINT) AS max_id,
    ts AS newest_ts
FROM sqlite_query(
    'src',
    'SELECT id, timestamp AS ts FROM interactions ORDER BY id DESC LIMIT 1'
)
