-- A full run's etl_session_activity rows, from its staging file (DuckDB, schema stg):
-- what queries/derive_session_activity.sql computes from the target, for every session
-- the run staged (a full run redoes them all). The staged requests join their responses
-- as load_insert.sql joins them. DuckDB aggregates by hashing; SQLite sorted the wide
-- staged rows by session (1.1 s at 1M interactions, 6.3 s at 5M, beside the load).
-- Keep the two alike: tests/test_derived.py compares a full run's tables derived both
-- ways. SQLite's two-argument max() is NULL when an argument is, and its SUM of
-- booleans counts the true ones; the CASE and the casts say the same here. The casts
-- also type the columns of a table no batch wrote (Staging.finish creates it untyped,
-- which DuckDB reads as BLOB).
-- The staged calls are read once, grouped by session and answering REPL: the totals and
-- the top REPL both come from that (0.38-0.40 s to 0.29 s at 1M interactions, where
-- the REPL counts took a second read).
-- Grain: one row per session, in session order (SQLite's GROUP BY order).
WITH per_repl AS (
    SELECT
        session_id,
        answered_by,
        COUNT(*) AS n,
        SUM(CAST(status = 'error' AS BIGINT)) AS errs,
        SUM(COALESCE(CAST(input_size AS BIGINT), 0)) AS b_in,
        SUM(COALESCE(CAST(output_size AS BIGINT), 0)) AS b_out,
        MIN(request_time) AS first_t,
        MAX(request_time) AS last_req,
        MAX(response_time) AS last_resp
    FROM stg.calls
    WHERE session_id IS NOT NULL
    GROUP BY session_id, answered_by
),
parts AS (
    SELECT
        session_id,
        SUM(n) AS n,
        SUM(errs) AS errs,
        SUM(b_in) AS b_in,
        SUM(b_out) AS b_out,
        MIN(first_t) AS first_t,
        CASE WHEN MAX(last_req) IS NOT NULL
            THEN greatest(MAX(last_req), COALESCE(MAX(last_resp), ''))
        END AS last_t
    FROM per_repl
    GROUP BY session_id
    UNION ALL
    SELECT
        r.session_id,
        COUNT(*),
        SUM(COALESCE(CAST(u.response_is_error AS BIGINT), 0)),
        SUM(COALESCE(CAST(r.input_size AS BIGINT), 0)),
        SUM(COALESCE(CAST(u.output_size AS BIGINT), 0)),
        MIN(r.request_time),
        CASE WHEN MAX(r.request_time) IS NOT NULL
            THEN greatest(MAX(r.request_time), COALESCE(MAX(u.response_time), ''))
        END
    FROM stg.requests AS r
    LEFT JOIN stg.request_responses AS u ON u.interaction_request_id = r.interaction_id
    WHERE r.session_id IS NOT NULL
    GROUP BY r.session_id
),
repls AS (
    SELECT
        session_id,
        answered_by,
        ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY n DESC, answered_by) AS rn
    FROM per_repl
    WHERE answered_by IS NOT NULL AND answered_by <> 'proxy'
)
SELECT
    p.session_id,
    SUM(p.n) AS requests,
    SUM(p.errs) AS errors,
    SUM(p.b_in) AS bytes_in,
    SUM(p.b_out) AS bytes_out,
    MIN(p.first_t) AS first_activity,
    MAX(p.last_t) AS last_activity,
    MAX(r.answered_by) AS top_repl
FROM parts AS p
LEFT JOIN repls AS r ON r.session_id = p.session_id AND r.rn = 1
GROUP BY p.session_id
ORDER BY p.session_id
