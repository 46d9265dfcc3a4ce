-- title: Reconnection patterns
-- rows: one per client session or REPL that went down (disconnected, reconnecting or
--   error) at least once: outages, how many ended in a reconnect (a later connected or
--   initialized state), the mean and longest seconds down, the last outage; most
--   outages first.
WITH ordered AS (
    SELECT
        entity_type,
        session_id,
        id,
        "timestamp",
        to_state,
        LAG(to_state) OVER w AS prev_state,
        MIN(CASE WHEN to_state IN ('connected', 'initialized') THEN "timestamp" END) OVER (
            w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
        ) AS back_at
    FROM session_lifecycle
    WINDOW w AS (PARTITION BY entity_type, session_id ORDER BY "timestamp", id)
),
outages AS (
    -- A run of down states is one outage: it starts where the previous state was up.
    SELECT *
    FROM ordered
    WHERE to_state IN ('disconnected', 'reconnecting', 'error')
        AND (prev_state IS NULL OR prev_state NOT IN ('disconnected', 'reconnecting', 'error'))
)
SELECT
    entity_type,
    session_id,
    COUNT(*) AS outages,
    COUNT(back_at) AS reconnects,
    ROUND(AVG(EPOCH(back_at - "timestamp")), 3) AS avg_seconds_down,
    MAX(EPOCH(back_at - "timestamp")) AS max_seconds_down,
    MAX("timestamp") AS last_outage
FROM outages
GROUP BY entity_type, session_id
ORDER BY outages DESC, reconnects DESC, entity_type, session_id;
