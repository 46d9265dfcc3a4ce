-- The excerpts of the interactions whose ids the JSON array $ids names: the first 200
-- characters of their content, NULL when it is not valid UTF-8 (as
-- source_interactions.sql reads content). Only rejected rows have one
-- (run._with_excerpts), so they are read for those rows alone, by rowid.
-- Grain: one row per named interaction that exists.
SELECT
    CAST(id AS BIGINT) AS interaction_id,
    left(TRY(decode(encode(content))), 200) AS excerpt
FROM sqlite_query(
    'src',
    'SELECT id, content FROM interactions WHERE id IN (SELECT value FROM json_each(?))',
    params = ROW($ids::VARCHAR)
)
