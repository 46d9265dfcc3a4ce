-- The cancellations and statuses of calls (schema stg, written by pipeline/load.py).
-- An incremental run applies them after load_apply.sql; a full rebuild right after
-- load_insert.sql, before it builds the secondary indexes of tool_executions (all but
-- the request and response rows', which these statements use): the rows they change
-- then update no index. Measured in full runs: 0.65 s to 0.53 s at 1M interactions,
-- 6.9 s to 5.6 s at 5M (163k unanswered calls).
-- The staged cancellations are those of calls from earlier runs: a call first seen in
-- this run is staged with its first cancellation (pipeline/run.py, _stage_cancels), so
-- a rebuild stages none (this update took 3.1 s of a 5M rebuild, 0.3 s at 1M).
-- An unanswered call it cancels gets the status and duration the status pass below
-- gives it, here, so that the pass finds them set and does not write the row a second
-- time (the pass still decides: it recomputes both for every row it reads).
UPDATE tool_executions
SET interaction_cancel_id = c.interaction_cancel_id,
    cancel_time = c.cancel_time,
    cancel_reason = c.cancel_reason,
    status = CASE WHEN interaction_response_id IS NULL THEN 'cancelled' ELSE status END,
    duration_ms = CASE
        WHEN interaction_response_id IS NULL
            THEN CAST(round((julianday(c.cancel_time) - julianday(request_time)) * 86400000.0) AS REAL)
        ELSE duration_ms
    END
FROM (
    -- A call cancelled again in a later batch is staged once per batch; the first
    -- cancellation counts, as in an incremental run, where the later one finds the
    -- call cancelled already. (UPDATE … FROM applies every match, the last one
    -- staged winning, so the result depended on the batch size.) SQLite takes the bare
    -- columns from the row that has the min().
    SELECT
        interaction_request_id,
        min(interaction_cancel_id) AS interaction_cancel_id,
        cancel_time,
        cancel_reason
    FROM stg.execution_cancels
    GROUP BY interaction_request_id
) AS c
WHERE tool_executions.interaction_request_id = c.interaction_request_id
    AND tool_executions.interaction_cancel_id IS NULL;
-- Statuses that depend on the whole source (SPEC §2): a call with no response is
-- cancelled if a cancellation came, else timeout once older than the pending timeout
-- relative to the newest source timestamp ($newest_ts), else pending.
-- Timestamps carry milliseconds, so the rounded julianday difference is exact.
-- Only calls whose status can change are looked at (unless $recheck_all is 1: a full
-- run, or the pending timeout changed): pending ones, and ones that got a cancellation
-- in this run (interaction_cancel_id > $settled_iid). A timeout without a cancellation
-- stays a timeout (the newest timestamp only grows), and a cancellation stays one: the
-- rollback (load_rollback.sql) makes a call whose cancellation it removes pending
-- again. Both kinds are found through indexes (status, cancel row), so a run reads the
-- few calls that can change, not all the unanswered ones of the log. Rows are written
-- only when their values change. The same filter picks the rows
-- derive_mark_before.sql snapshots; keep the two alike.
WITH open_calls AS (
    SELECT interaction_request_id AS iid
    FROM tool_executions
    WHERE $recheck_all = 1 AND interaction_response_id IS NULL
    UNION
    SELECT interaction_request_id
    FROM tool_executions
    WHERE $recheck_all = 0
        AND (status = 'pending' OR interaction_cancel_id > $settled_iid)
        AND +interaction_response_id IS NULL
)
UPDATE tool_executions
SET status = n.status, duration_ms = n.duration_ms
FROM (
    SELECT
        t.interaction_request_id AS iid,
        CASE
            WHEN t.interaction_cancel_id IS NOT NULL THEN 'cancelled'
            WHEN (julianday($newest_ts) - julianday(t.request_time)) * 86400000.0 > $pending_timeout_ms
                THEN 'timeout'
            ELSE 'pending'
        END AS status,
        CASE
            WHEN t.interaction_cancel_id IS NOT NULL
                THEN CAST(round((julianday(t.cancel_time) - julianday(t.request_time)) * 86400000.0) AS REAL)
        END AS duration_ms
    FROM open_calls AS o
    JOIN tool_executions AS t ON t.interaction_request_id = o.iid
) AS n
WHERE tool_executions.interaction_request_id = n.iid
    AND (tool_executions.status IS NOT n.status OR tool_executions.duration_ms IS NOT n.duration_ms);
