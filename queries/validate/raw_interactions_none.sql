-- An older log without the interactions table: the audits see no interactions.
CREATE OR REPLACE TEMP TABLE raw_i (
    id BIGINT,
    ts VARCHAR,
    direction VARCHAR,
    is_object BOOLEAN,
    method VARCHAR,
    id_json VARCHAR,
    has_id BOOLEAN,
    has_result BOOLEAN,
    has_error BOOLEAN,
    is_error BOOLEAN,
    tool_name VARCHAR
);
