-- title: Client version distribution
-- rows: one per client name, version and protocol version: sessions, their share of
--   the client's sessions, first and last connect; by client, most used version first.
SELECT
    client_name,
    client_version,
    protocol_version,
    COUNT(*) AS sessions,
    ROUND(100.0 * COUNT(*) / SUM(COUNT(*)) OVER (PARTITION BY client_name), 2)::DOUBLE
        AS share_pct,
    MIN(connect_time) AS first_connect,
    MAX(connect_time) AS last_connect
FROM client_sessions
GROUP BY client_name, client_version, protocol_version
ORDER BY client_name, sessions DESC, client_version NULLS LAST, protocol_version NULLS LAST;
