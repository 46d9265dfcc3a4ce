-- title: Rejects by reason
-- rows: one per source table and reason of etl_rejects (docs/rules.md lists the
--   reasons): rows and the lowest and highest source id; most first.
SELECT
    source_table,
    reason,
    COUNT(*) AS rows,
    MIN(source_id) AS first_id,
    MAX(source_id) AS last_id
FROM tgt.etl_rejects
GROUP BY ALL
ORDER BY rows DESC, source_table, reason;
