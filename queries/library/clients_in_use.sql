-- title: Clients using the system
-- rows: one per client name: sessions (and how many are active), the versions seen,
--   first connect, last activity, requests and errors; most sessions first.
SELECT
    client_name,
    COUNT(*) AS sessions,
    COUNT(*) FILTER (WHERE status = 'active') AS active_sessions,
    ARRAY_TO_STRING(LIST_SORT(LIST_DISTINCT(LIST(COALESCE(client_version, '?')))), ', ')
        AS versions,
    MIN(connect_time) AS first_connect,
    MAX(last_activity) AS last_activity,
    CAST(SUM(total_requests) AS BIGINT) AS total_requests,
    CAST(SUM(total_errors) AS BIGINT) AS total_errors
FROM client_sessions
GROUP BY client_name
ORDER BY sessions DESC, client_name;
