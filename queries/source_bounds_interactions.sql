-- Bounds of the source snapshot a run reads: the highest row id of a raw table, and
-- the newest timestamp: that of the highest row whose timestamp is valid (row ids grow
-- with time; reading by id avoids a full scan). A malformed timestamp is a reject
-- (invalid_timestamp) and must not become the newest time: a last row stamped
-- 'yesterday' or '2026-02-30 ...' stopped every run until the producer wrote another.
-- Valid is the shape YYYY-MM-DD HH:MM:SS.sss of a real date and time, as
-- pipeline/transform/decode.ts_ms decides: SQLite's strftime, made to compute the date
-- ('+0 days'), gives such a text back unchanged (2026-02-30 comes back as 03-02).
-- Rows inserted later wait for the next run.
SELECT
    CAST(max_id AS BIGINT) AS max_id,
    ts AS newest_ts
FROM sqlite_query(
    'src',
    'SELECT
         (SELECT max(id) FROM interactions) AS max_id,
         (SELECT timestamp FROM interactions
          WHERE timestamp GLOB ''[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]''
            AND strftime(''%Y-%m-%d %H:%M:%f'', timestamp, ''+0 days'') = timestamp
          ORDER BY id DESC LIMIT 1) AS ts'
)
