-- title: every execution's status agrees with its response, cancel and timing
-- rows: one per tool_executions row whose status contradicts what it links to
--   (docs/rules.md, Statuses and timings): success and error need a response and their
--   duration is response minus request time; timeout and cancelled have no response; a
--   cancelled call names its cancel row; pending has no response unless it is not final.
SELECT row_id, detail
FROM (
    SELECT
        interaction_request_id AS row_id,
        'tool_executions row of interactions.id ' || interaction_request_id || ' (' || status
            || '): '
            || CASE
                WHEN status NOT IN ('success', 'error', 'pending', 'cancelled', 'timeout')
                    THEN 'unknown status'
                WHEN status IN ('success', 'error') AND interaction_response_id IS NULL
                    THEN 'no response'
                WHEN status IN ('success', 'error') AND (duration_ms IS NULL
                    OR ABS(EPOCH_MS(response_time) - EPOCH_MS(request_time) - duration_ms) >= 1)
                    THEN 'duration_ms is not response_time - request_time'
                WHEN status IN ('timeout', 'cancelled') AND interaction_response_id IS NOT NULL
                    THEN 'it has a response'
                WHEN status = 'cancelled' AND interaction_cancel_id IS NULL
                    THEN 'no cancel row'
                WHEN status = 'pending' AND interaction_response_id IS NOT NULL
                    AND COALESCE(result_type, '') NOT IN ('input_required', 'task')
                    THEN 'a final response'
            END AS detail
    FROM tgt.tool_executions
)
WHERE detail IS NOT NULL
ORDER BY row_id, detail;
