-- title: Session timeline: lifecycle changes and tool calls
-- rows: one per lifecycle change or tool call of the $sessions client sessions and
--   REPLs active most recently (by their newest lifecycle change or call), in the last
--   $days days of data; at most $max_calls calls per session (the newest). kind is
--   'state' (what = the new state) or 'call' (what = the tool, status its outcome).
-- param: sessions INTEGER = 20 (sessions and REPLs to show)
-- param: days INTEGER = 7 (days of data, back from the newest row)
-- param: max_calls INTEGER = 400 (tool calls shown per session)
WITH bounds AS (
    SELECT
        GREATEST(
            (SELECT MAX(request_time) FROM tool_executions),
            (SELECT MAX("timestamp") FROM session_lifecycle)
        ) - TO_DAYS(CAST($days AS INTEGER)) AS since
),
activity AS (
    SELECT entity_type, session_id, "timestamp" AS event_time
    FROM session_lifecycle, bounds
    WHERE "timestamp" > bounds.since
    UNION ALL
    SELECT 'client' AS entity_type, session_id, request_time AS event_time
    FROM tool_executions, bounds
    WHERE request_time > bounds.since
),
chosen AS (
    SELECT entity_type, session_id, MAX(event_time) AS last_at
    FROM activity
    GROUP BY entity_type, session_id
    ORDER BY last_at DESC, entity_type, session_id
    LIMIT $sessions
),
labelled AS (
    SELECT
        chosen.entity_type,
        chosen.session_id,
        chosen.last_at,
        CASE
            WHEN chosen.entity_type = 'repl' THEN 'REPL ' || chosen.session_id
            ELSE COALESCE(cs.client_name, '(unknown client)')
                || COALESCE(' ' || cs.client_version, '')
                || ' · ' || LEFT(chosen.session_id, 12)
        END AS label
    FROM chosen
    LEFT JOIN client_sessions AS cs
        ON chosen.entity_type = 'client' AND cs.session_id = chosen.session_id
),
states AS (
    SELECT
        l.entity_type,
        l.session_id,
        l.label,
        l.last_at,
        sl."timestamp" AS event_time,
        'state' AS kind,
        sl.to_state AS what,
        sl.triggered_by AS status,
        sl.reason AS detail,
        NULL::DOUBLE AS duration_ms
    FROM labelled AS l
    JOIN session_lifecycle AS sl
        ON sl.entity_type = l.entity_type AND sl.session_id = l.session_id, bounds
    WHERE sl."timestamp" > bounds.since
),
calls AS (
    SELECT
        l.entity_type,
        l.session_id,
        l.label,
        l.last_at,
        te.request_time AS event_time,
        'call' AS kind,
        te.tool_name AS what,
        te.status,
        te.result_type AS detail,
        te.duration_ms,
        ROW_NUMBER() OVER (
            PARTITION BY l.session_id ORDER BY te.request_time DESC, te.interaction_request_id DESC
        ) AS newest_rank
    FROM labelled AS l
    JOIN tool_executions AS te
        ON l.entity_type = 'client' AND te.session_id = l.session_id, bounds
    WHERE te.request_time > bounds.since
)
SELECT entity_type, session_id, label, last_at, event_time, kind, what, status, detail, duration_ms
FROM states
UNION ALL
SELECT entity_type, session_id, label, last_at, event_time, kind, what, status, detail, duration_ms
FROM calls
WHERE newest_rank <= $max_calls
ORDER BY last_at DESC, entity_type, session_id, event_time, kind DESC, what;
