-- title: Common failure patterns
-- rows: one per entity type, failing state, trigger and reason (a lifecycle change to
--   error, disconnected or terminated, or one triggered by an error or a timeout): how
--   often, to how many sessions, and the errors the session logged in the $window_s
--   seconds before, per failure; most frequent first.
-- param: window_s INTEGER = 300 (seconds before a failure to count errors in)
WITH failures AS (
    SELECT id, entity_type, session_id, "timestamp", to_state, triggered_by, reason
    FROM session_lifecycle
    WHERE to_state IN ('error', 'disconnected', 'terminated')
        OR triggered_by IN ('error', 'timeout')
),
preceding AS (
    SELECT f.id, COUNT(e.error_key) AS errors_before
    FROM failures AS f
    LEFT JOIN errors AS e
        ON e.session_id = f.session_id
        AND e."timestamp" BETWEEN f."timestamp" - TO_SECONDS(CAST($window_s AS BIGINT))
        AND f."timestamp"
    GROUP BY f.id
)
SELECT
    f.entity_type,
    f.to_state,
    f.triggered_by,
    f.reason,
    COUNT(*) AS failures,
    COUNT(DISTINCT f.session_id) AS sessions,
    ROUND(AVG(p.errors_before), 2) AS errors_before_per_failure,
    MAX(f."timestamp") AS last_seen
FROM failures AS f
JOIN preceding AS p ON p.id = f.id
GROUP BY f.entity_type, f.to_state, f.triggered_by, f.reason
ORDER BY failures DESC, f.entity_type, f.to_state, f.triggered_by NULLS FIRST, f.reason NULLS FIRST;
