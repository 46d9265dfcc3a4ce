-- title: Debugging context for one failure
-- rows: the failing call's session in the $window_s seconds up to the error, one row per
--   tool execution or error in time order (the error itself flagged is_target), with
--   the arguments and messages needed to reproduce it.
-- param: error_key VARCHAR = NULL (the error, e.g. i:123; default: the newest tool error)
-- param: window_s INTEGER = 300 (seconds of history before the error)
WITH target AS (
    SELECT error_key, session_id, "timestamp"
    FROM errors
    WHERE error_key = COALESCE(
        CAST($error_key AS VARCHAR),
        (
            SELECT error_key FROM errors
            WHERE tool_name IS NOT NULL
            ORDER BY "timestamp" DESC, error_key DESC
            LIMIT 1
        )
    )
),
span AS (
    SELECT
        session_id,
        "timestamp" - TO_SECONDS(CAST($window_s AS BIGINT)) AS since,
        "timestamp" AS until,
        error_key
    FROM target
),
timeline AS (
    SELECT
        te.request_time AS event_time,
        'execution' AS kind,
        'r:' || CAST(te.interaction_request_id AS VARCHAR) AS ref,
        te.tool_name,
        te.status,
        te.duration_ms,
        te.error_code,
        te.result_summary AS detail,
        te.arguments AS input,
        FALSE AS is_target
    FROM tool_executions AS te, span
    WHERE te.session_id = span.session_id
        AND te.request_time BETWEEN span.since AND span.until
    UNION ALL
    SELECT
        e."timestamp" AS event_time,
        'error' AS kind,
        e.error_key AS ref,
        e.tool_name,
        e.error_category AS status,
        NULL AS duration_ms,
        e.error_code,
        COALESCE(e.message, '') || COALESCE(' | ' || e.stack_trace, '') AS detail,
        e.input_that_caused_error AS input,
        e.error_key = span.error_key AS is_target
    FROM errors AS e, span
    WHERE e.session_id = span.session_id
        AND e."timestamp" BETWEEN span.since AND span.until
)
SELECT event_time, kind, ref, tool_name, status, duration_ms, error_code, detail, input, is_target
FROM timeline
ORDER BY event_time, kind DESC, ref;
