-- Rejected source rows by table and reason: the summary `etl` prints.
-- Grain: one row per (source_table, reason).
SELECT source_table, reason, COUNT(*) AS row_count
FROM etl_rejects
GROUP BY source_table, reason
ORDER BY row_count DESC, source_table, reason
