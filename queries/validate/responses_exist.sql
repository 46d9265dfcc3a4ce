-- title: every paired response is a response row of the source, paired once
-- rows: one per execution or other request whose response row is missing from the
--   source, past the watermark, not an outbound response, logged before its request,
--   or paired with more than one request.
-- param: interactions_max_id INTEGER = 0 (etl_metadata)
WITH paired AS (
    SELECT interaction_request_id AS request_iid, interaction_response_id AS response_iid,
        request_time, 'tool_executions' AS tbl
    FROM tgt.tool_executions
    WHERE interaction_response_id IS NOT NULL
    UNION ALL
    SELECT interaction_id, response_interaction_id, request_time, 'etl_requests'
    FROM tgt.etl_requests
    WHERE response_interaction_id IS NOT NULL
),
claims AS (
    SELECT response_iid, COUNT(*) AS n FROM paired GROUP BY response_iid
)
SELECT row_id, detail
FROM (
    SELECT
        p.response_iid AS row_id,
        p.tbl || ' row of interactions.id ' || p.request_iid || ': its response interactions.id '
            || p.response_iid || ' '
            || CASE
                WHEN r.id IS NULL THEN 'is not in the source'
                WHEN r.id > $interactions_max_id THEN 'is past the watermark'
                WHEN NOT (r.direction = 'outbound' AND r.is_object AND r.method IS NULL
                    AND (r.has_result OR r.has_error)) THEN 'is not an outbound response'
                WHEN r.id <= p.request_iid THEN 'was logged before its request'
                WHEN c.n > 1 THEN 'answers ' || c.n || ' requests'
            END AS detail
    FROM paired AS p
    JOIN claims AS c ON c.response_iid = p.response_iid
    LEFT JOIN raw_i AS r ON r.id = p.response_iid
)
WHERE detail IS NOT NULL
ORDER BY row_id, detail;
