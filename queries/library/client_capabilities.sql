-- title: Client capability analysis
-- rows: one per client name and capability (streaming, notifications, roots, sampling,
--   elicitation): sessions, those that declare it, those that do not say, and the
--   share that support it; by client, then capability.
WITH caps AS (
    SELECT client_name, 'streaming' AS capability, supports_streaming AS supported
    FROM client_sessions
    UNION ALL
    SELECT client_name, 'notifications', supports_notifications FROM client_sessions
    UNION ALL
    SELECT client_name, 'roots', supports_roots FROM client_sessions
    UNION ALL
    SELECT client_name, 'sampling', supports_sampling FROM client_sessions
    UNION ALL
    SELECT client_name, 'elicitation', supports_elicitation FROM client_sessions
)
SELECT
    client_name,
    capability,
    COUNT(*) AS sessions,
    COUNT(*) FILTER (WHERE supported) AS supporting,
    COUNT(*) FILTER (WHERE supported IS NULL) AS unknown,
    ROUND(100.0 * COUNT(*) FILTER (WHERE supported) / COUNT(*), 2)::DOUBLE AS supporting_pct
FROM caps
GROUP BY client_name, capability
ORDER BY client_name, capability;
