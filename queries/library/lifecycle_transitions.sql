-- title: Session state machine analysis
-- rows: one per entity type (client session or REPL) and transition: from_state →
--   to_state with its event type and trigger, how often it happened, to how many
--   sessions, and the mean seconds spent in from_state before it.
WITH steps AS (
    SELECT
        entity_type,
        session_id,
        from_state,
        to_state,
        event_type,
        triggered_by,
        EPOCH("timestamp" - LAG("timestamp") OVER (
            PARTITION BY entity_type, session_id ORDER BY "timestamp", id
        )) AS seconds_in_from_state
    FROM session_lifecycle
)
SELECT
    entity_type,
    from_state,
    to_state,
    event_type,
    triggered_by,
    COUNT(*) AS transitions,
    COUNT(DISTINCT session_id) AS sessions,
    ROUND(AVG(seconds_in_from_state), 3) AS avg_seconds_in_from_state
FROM steps
GROUP BY ALL
ORDER BY
    entity_type,
    from_state NULLS FIRST,
    to_state,
    event_type,
    triggered_by NULLS FIRST;
