-- initialize requests with their client identity, for matching to session.initialized.
-- Grain: one row per initialize request (etl_requests keeps every request with an id).
SELECT
    interaction_id,
    request_time,
    input_size,
    params,
    CASE WHEN json_valid(params) THEN json_extract(params, '$.protocolVersion') END
        AS protocol_version,
    CASE WHEN json_valid(params) THEN json_extract(params, '$.clientInfo.name') END
        AS client_name,
    CASE WHEN json_valid(params) THEN json_extract(params, '$.clientInfo.version') END
        AS client_version,
    CASE WHEN json_valid(params) AND json_type(params, '$.capabilities') = 'object'
        THEN json_extract(params, '$.capabilities') END AS capabilities
FROM etl_requests
WHERE method = 'initialize'
ORDER BY request_time, interaction_id
