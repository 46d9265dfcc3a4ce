-- title: Session durations
-- rows: one per client session or REPL in session_lifecycle: its first lifecycle time,
--   when it ended (the first disconnected or terminated state, else its last change),
--   the duration in minutes, state changes and the final state; the $limit longest.
-- param: limit INTEGER = 50 (sessions to list)
WITH spans AS (
    SELECT
        entity_type,
        session_id,
        MIN("timestamp") AS started,
        COALESCE(
            MIN("timestamp") FILTER (WHERE to_state IN ('disconnected', 'terminated')),
            MAX("timestamp")
        ) AS ended,
        COUNT(*) AS state_changes,
        ARG_MAX(to_state, ("timestamp", id)) AS final_state
    FROM session_lifecycle
    GROUP BY entity_type, session_id
)
SELECT
    entity_type,
    session_id,
    started,
    ended,
    ROUND(EPOCH(ended - started) / 60.0, 2) AS duration_minutes,
    state_changes,
    final_state
FROM spans
ORDER BY duration_minutes DESC, entity_type, session_id
LIMIT $limit;
