-- title: Active vs disconnected clients
-- rows: one per session status (active, disconnected, terminated) and session kind
--   (initialize, stateless): sessions, distinct clients, requests, mean session length
--   in minutes (connect to disconnect, or to the last activity) and the newest activity.
SELECT
    status,
    session_kind,
    COUNT(*) AS sessions,
    COUNT(DISTINCT client_name) AS clients,
    CAST(SUM(total_requests) AS BIGINT) AS total_requests,
    ROUND(
        AVG(EPOCH(COALESCE(disconnect_time, last_activity, connect_time) - connect_time)) / 60.0,
        2
    ) AS avg_minutes,
    MAX(last_activity) AS last_activity
FROM client_sessions
GROUP BY status, session_kind
ORDER BY status, session_kind;
