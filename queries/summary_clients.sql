-- Client sessions per client name and version: the second table `etl` prints.
-- Grain: one row per (client_name, client_version, protocol_version, session_kind).
SELECT
    client_name,
    COALESCE(client_version, '?') AS client_version,
    COALESCE(protocol_version, '?') AS protocol_version,
    sessions,
    active_sessions,
    total_requests,
    total_errors
FROM v_client_activity
ORDER BY total_requests DESC, client_name, client_version
LIMIT 15
