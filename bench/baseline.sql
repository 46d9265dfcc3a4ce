-- The pure-SQLite baseline of issue 5: what a user would write instead of mcp-analytics.
--
-- One script, SQLite's JSON1 functions only, run on a new target database with the
-- producer's log attached read-only as `src` (bench/baseline.py does the ATTACH). It
-- builds tool_executions, errors and a daily summary with one INSERT … SELECT per table,
-- following docs/rules.md as far as plain SQL allows:
--
-- * Every row is classified by its content (method + non-null id: request; method:
--   notification; result/error: response), like the ETL. Rows that are not a JSON
--   object (empty, invalid JSON, batches) are skipped, not recorded.
-- * Pairing: the key is the JSON id as JSON text (`content -> '$.id'`, so 1 and "1"
--   differ). Within a key, a response takes the nearest still-open preceding request
--   (of any method): a stack, computed with window functions (running depth per key,
--   then LAG within (key, level)). What SQL cannot see here is the route: the ETL knows
--   where a call went (the client session from request.received events, its REPL from
--   session.initialized, proxy tools from tool.call.start) and pairs a REPL's response
--   only with calls sent to that REPL. The baseline pairs across routes.
-- * session_id is the raw row's (progress token, tool name or 'proxy'): no attribution.
-- * cancelled: an unanswered call with a notifications/cancelled carrying its id (as
--   text) logged after it and before the next request with the same key.
-- * timeout / pending: unanswered and older / younger than 300 s before the newest
--   timestamp of the source (interactions and events).
-- * errors: JSON-RPC error responses (null ids too), isError results of tools/call,
--   request.error events (not linked to a call: session_id is the event's REPL).
-- * daily summary: per day and tool, over answered calls: counts, mean, min, max and
--   p50/p95/p99 with linear interpolation.
--
-- The baseline does less than the ETL (no attribution, no client sessions, lifecycles,
-- hourly metrics or histograms, no rejects table, no incremental state), so comparing
-- the ETL's wall time with it is conservative.

PRAGMA temp_store = FILE;

BEGIN;

-- Every usable message, parsed once: all JSON paths of a row are read in one statement,
-- where SQLite reuses the parse of the same document across JSON functions.
CREATE TEMP TABLE msg (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    direction TEXT,
    session_id TEXT,
    content_size INTEGER,
    kind TEXT,
    id_key TEXT,
    id_text TEXT,
    method TEXT,
    tool_name TEXT,
    arguments TEXT,
    cancels_id_text TEXT,
    cancel_reason TEXT,
    is_rpc_error INTEGER,
    error_code INTEGER,
    error_message TEXT,
    error_data TEXT,
    is_error_result INTEGER,
    has_structured INTEGER,
    result_kind TEXT,
    has_task INTEGER,
    content_type TEXT,
    first_text TEXT
);

INSERT INTO msg
SELECT
    i.id,
    i.timestamp AS ts,
    i.direction,
    i.session_id,
    i.content_size,
    CASE
        WHEN json_type(i.content, '$.method') = 'text'
            AND coalesce(json_type(i.content, '$.id'), 'null') <> 'null' THEN 'request'
        WHEN json_type(i.content, '$.method') = 'text' THEN 'notification'
        WHEN json_type(i.content, '$.result') IS NOT NULL
            OR json_type(i.content, '$.error') IS NOT NULL THEN 'response'
    END AS kind,
    CASE
        WHEN json_type(i.content, '$.id') IN ('integer', 'real', 'text')
            THEN i.content -> '$.id'
    END AS id_key,
    CAST(json_extract(i.content, '$.id') AS TEXT) AS id_text,
    json_extract(i.content, '$.method') AS method,
    CASE
        WHEN json_extract(i.content, '$.method') = 'tools/call'
            THEN json_extract(i.content, '$.params.name')
    END AS tool_name,
    CASE
        WHEN i.direction IS 'outbound' THEN NULL
        WHEN json_extract(i.content, '$.method') = 'tools/call'
            THEN i.content -> '$.params.arguments'
        ELSE i.content -> '$.params'
    END AS arguments,
    CASE
        WHEN json_extract(i.content, '$.method') = 'notifications/cancelled'
            THEN CAST(json_extract(i.content, '$.params.requestId') AS TEXT)
    END AS cancels_id_text,
    -- The fields of one kind of message are read only from rows that can be that kind
    -- (responses are outbound, requests and notifications inbound; rows of the other
    -- direction are deleted below): each JSON function call costs a lookup of the
    -- document in SQLite's parse cache, which compares the whole text.
    CASE WHEN i.direction IS NOT 'outbound'
        THEN json_extract(i.content, '$.params.reason') END AS cancel_reason,
    CASE WHEN i.direction IS NOT 'inbound'
        THEN json_type(i.content, '$.error') IS NOT NULL END AS is_rpc_error,
    CASE WHEN i.direction IS NOT 'inbound'
        THEN json_extract(i.content, '$.error.code') END AS error_code,
    CASE WHEN i.direction IS NOT 'inbound'
        THEN json_extract(i.content, '$.error.message') END AS error_message,
    CASE WHEN i.direction IS NOT 'inbound'
        THEN json_extract(i.content, '$.error.data') END AS error_data,
    CASE WHEN i.direction IS NOT 'inbound'
        THEN coalesce(json_extract(i.content, '$.result.isError'), 0) = 1 END
        AS is_error_result,
    CASE WHEN i.direction IS NOT 'inbound'
        THEN json_type(i.content, '$.result.structuredContent') IS NOT NULL END
        AS has_structured,
    CASE WHEN i.direction IS NOT 'inbound'
        THEN json_extract(i.content, '$.result.resultType') END AS result_kind,
    CASE WHEN i.direction IS NOT 'inbound'
        THEN json_type(i.content, '$.result.task') IS NOT NULL END AS has_task,
    CASE
        WHEN i.direction IS 'inbound' THEN NULL
        WHEN json_type(i.content, '$.result') IS NULL THEN NULL
        WHEN coalesce(json_array_length(i.content, '$.result.content'), 0) = 0 THEN 'empty'
        WHEN json_array_length(i.content, '$.result.content') = 1
            THEN json_extract(i.content, '$.result.content[0].type')
        ELSE (
            SELECT CASE WHEN count(DISTINCT b.value ->> 'type') > 1 THEN 'mixed'
                        ELSE min(b.value ->> 'type') END
            FROM json_each(i.content, '$.result.content') AS b
        )
    END AS content_type,
    CASE
        WHEN i.direction IS 'inbound' THEN NULL
        WHEN json_type(i.content, '$.result') IS NULL THEN NULL
        WHEN json_extract(i.content, '$.result.content[0].type') = 'text'
            THEN substr(json_extract(i.content, '$.result.content[0].text'), 1, 500)
        WHEN json_array_length(i.content, '$.result.content') > 1 THEN (
            SELECT substr(b.value ->> 'text', 1, 500)
            FROM json_each(i.content, '$.result.content') AS b
            WHERE b.value ->> 'type' = 'text'
            ORDER BY b.key
            LIMIT 1
        )
    END AS first_text
FROM src.interactions AS i
WHERE json_valid(i.content)
    AND json_type(i.content) = 'object';

DELETE FROM msg
WHERE kind IS NULL
    OR (direction = 'inbound' AND kind = 'response')
    OR (direction = 'outbound' AND kind <> 'response');

CREATE INDEX msg_kind ON msg(kind, id);

-- Pairs (request row, response row): a stack per JSON id, as window functions.
CREATE TEMP TABLE pair (
    request_row INTEGER NOT NULL,
    response_row INTEGER NOT NULL
);

INSERT INTO pair
WITH seq AS (
    SELECT
        id,
        kind,
        id_key,
        sum(CASE kind WHEN 'request' THEN 1 ELSE -1 END)
            OVER (PARTITION BY id_key ORDER BY id ROWS UNBOUNDED PRECEDING) AS depth
    FROM msg
    WHERE id_key IS NOT NULL
        AND kind IN ('request', 'response')
),
levelled AS (
    -- A request sits at the depth after its push; a response pops the depth before it.
    SELECT id, kind, id_key, CASE kind WHEN 'request' THEN depth ELSE depth + 1 END AS level
    FROM seq
),
adjacent AS (
    SELECT
        id,
        kind,
        lag(id) OVER w AS prev_id,
        lag(kind) OVER w AS prev_kind
    FROM levelled
    WINDOW w AS (PARTITION BY id_key, level ORDER BY id)
)
SELECT prev_id AS request_row, id AS response_row
FROM adjacent
WHERE kind = 'response'
    AND prev_kind = 'request';

CREATE UNIQUE INDEX pair_request ON pair(request_row);
CREATE UNIQUE INDEX pair_response ON pair(response_row);

-- Cancellations, looked up by the id text they name.
CREATE TEMP TABLE cancel (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    cancels_id_text TEXT NOT NULL,
    cancel_reason TEXT
);

INSERT INTO cancel
SELECT id, ts, cancels_id_text, cancel_reason
FROM msg
WHERE kind = 'notification'
    AND cancels_id_text IS NOT NULL;

CREATE INDEX cancel_id ON cancel(cancels_id_text, id);

CREATE TABLE tool_executions (
    session_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    request_id_json TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    request_time DATETIME NOT NULL,
    response_time DATETIME,
    duration_ms REAL,
    input_size INTEGER,
    output_size INTEGER,
    arguments TEXT,
    status TEXT NOT NULL,
    result_type TEXT,
    result_summary TEXT,
    has_structured_content INTEGER,
    error_code INTEGER,
    interaction_request_id INTEGER PRIMARY KEY,
    interaction_response_id INTEGER,
    interaction_cancel_id INTEGER,
    cancel_time DATETIME,
    cancel_reason TEXT,
    answered_by TEXT,
    request_date TEXT
);

-- tool_executions: one row per inbound tools/call request with an id.
INSERT INTO tool_executions
WITH newest AS (
    SELECT max(
        (SELECT max(timestamp) FROM src.interactions),
        (SELECT max(timestamp) FROM src.events)
    ) AS ts
),
-- The next request with the same key bounds a call's cancellations. The window sorts
-- only (id, key) pairs; the wide rows are looked up by id afterwards (5.0 to 3.7 s at 1M).
nexts AS (
    SELECT id, lead(id) OVER (PARTITION BY id_key ORDER BY id) AS next_same_key
    FROM msg
    WHERE kind = 'request'
),
calls AS (
    SELECT q.*, n.next_same_key
    FROM nexts AS n
    JOIN msg AS q ON q.id = n.id
),
joined AS (
    SELECT
        q.*,
        r.id AS resp_id,
        r.ts AS resp_ts,
        r.session_id AS resp_session,
        r.content_size AS resp_size,
        r.is_rpc_error AS resp_is_rpc_error,
        r.error_code AS resp_error_code,
        r.error_message AS resp_error_message,
        r.is_error_result AS resp_is_error_result,
        r.has_structured AS resp_has_structured,
        r.result_kind AS resp_result_kind,
        r.has_task AS resp_has_task,
        r.content_type AS resp_content_type,
        r.first_text AS resp_first_text,
        CASE WHEN r.id IS NULL THEN (
            SELECT min(c.id)
            FROM cancel AS c
            WHERE c.cancels_id_text = q.id_text
                AND c.id > q.id
                AND c.id < coalesce(q.next_same_key, 9223372036854775807)
        ) END AS cancel_id
    FROM calls AS q
    LEFT JOIN pair AS p ON p.request_row = q.id
    LEFT JOIN msg AS r ON r.id = p.response_row
    WHERE q.method = 'tools/call'
)
SELECT
    j.session_id,
    j.id_text,
    j.id_key,
    coalesce(j.tool_name, ''),
    j.ts,
    j.resp_ts,
    CASE
        WHEN j.resp_id IS NOT NULL AND NOT (j.resp_result_kind IS 'input_required'
            OR (j.resp_has_task AND j.resp_content_type = 'empty'))
            THEN round((julianday(j.resp_ts) - julianday(j.ts)) * 86400000.0)
        WHEN j.resp_id IS NULL AND c.id IS NOT NULL
            THEN round((julianday(c.ts) - julianday(j.ts)) * 86400000.0)
    END,
    j.content_size,
    j.resp_size,
    j.arguments,
    CASE
        WHEN j.resp_id IS NOT NULL AND (j.resp_is_rpc_error OR j.resp_is_error_result) THEN 'error'
        WHEN j.resp_id IS NOT NULL AND (j.resp_result_kind IS 'input_required'
            OR (j.resp_has_task AND j.resp_content_type = 'empty')) THEN 'pending'
        WHEN j.resp_id IS NOT NULL THEN 'success'
        WHEN c.id IS NOT NULL THEN 'cancelled'
        WHEN (julianday(n.ts) - julianday(j.ts)) * 86400.0 > 300 THEN 'timeout'
        ELSE 'pending'
    END,
    CASE
        WHEN j.resp_id IS NULL THEN NULL
        WHEN j.resp_is_rpc_error THEN 'error'
        WHEN j.resp_result_kind IS 'input_required' THEN 'input_required'
        WHEN j.resp_has_task AND j.resp_content_type = 'empty' THEN 'task'
        ELSE j.resp_content_type
    END,
    CASE WHEN j.resp_is_rpc_error THEN j.resp_error_message ELSE j.resp_first_text END,
    CASE WHEN j.resp_id IS NOT NULL THEN j.resp_has_structured END,
    CAST(j.resp_error_code AS INTEGER),
    j.id,
    j.resp_id,
    c.id,
    c.ts,
    c.cancel_reason,
    j.resp_session,
    date(j.ts)
FROM joined AS j
CROSS JOIN newest AS n
LEFT JOIN cancel AS c ON c.id = j.cancel_id;

CREATE TABLE errors (
    error_key TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    error_type TEXT NOT NULL,
    error_code INTEGER,
    error_category TEXT,
    tool_name TEXT,
    method TEXT,
    request_id TEXT,
    message TEXT NOT NULL,
    stack_trace TEXT,
    input_that_caused_error TEXT,
    interaction_id INTEGER,
    event_id INTEGER,
    interaction_request_id INTEGER
);

-- errors: JSON-RPC error responses and isError results (with their paired request, if
-- any), then request.error events.
INSERT INTO errors
SELECT
    'i:' || r.id,
    coalesce(q.session_id, r.session_id),
    r.ts,
    CASE WHEN q.method = 'tools/call' THEN 'tool_error' ELSE 'protocol_error' END,
    CAST(r.error_code AS INTEGER),
    CASE
        WHEN r.is_error_result AND NOT r.is_rpc_error THEN 'tool_execution_error'
        WHEN r.error_code = -32700 THEN 'parse_error'
        WHEN r.error_code = -32600 THEN 'invalid_request'
        WHEN r.error_code = -32601 THEN 'method_not_found'
        WHEN r.error_code = -32602 THEN 'invalid_params'
        WHEN r.error_code = -32603 THEN 'internal_error'
        WHEN r.error_code = -32002 THEN 'resource_not_found'
        WHEN r.error_code = -32042 THEN 'url_elicitation_required'
        WHEN r.error_code = -32020 THEN 'header_mismatch'
        WHEN r.error_code = -32021 THEN 'missing_required_client_capability'
        WHEN r.error_code = -32022 THEN 'unsupported_protocol_version'
        WHEN r.error_code = 0 AND lower(r.error_message) LIKE '%cancel%'
            THEN 'request_cancelled'
        WHEN r.error_code BETWEEN -32099 AND -32000 THEN 'server_error'
        ELSE 'unknown_error'
    END,
    q.tool_name,
    q.method,
    q.id_text,
    coalesce(CASE WHEN r.is_rpc_error THEN r.error_message ELSE r.first_text END, ''),
    r.error_data,
    q.arguments,
    r.id,
    NULL,
    q.id
FROM msg AS r
LEFT JOIN pair AS p ON p.response_row = r.id
LEFT JOIN msg AS q ON q.id = p.request_row
WHERE r.kind = 'response'
    AND (r.is_rpc_error OR (r.is_error_result AND q.method = 'tools/call'))
UNION ALL
SELECT
    'e:' || e.id,
    e.session_id,
    e.timestamp,
    'system_error',
    NULL,
    'unknown_error',
    NULL,
    json_extract(e.data, '$.method'),
    NULL,
    CASE
        WHEN instr(json_extract(e.data, '$.error_message'), char(10)) > 0
            THEN substr(
                json_extract(e.data, '$.error_message'),
                1,
                instr(json_extract(e.data, '$.error_message'), char(10)) - 1
            )
        ELSE coalesce(json_extract(e.data, '$.error_message'), '')
    END,
    json_extract(e.data, '$.error_message'),
    NULL,
    NULL,
    e.id,
    NULL
FROM src.events AS e
WHERE e.event_type = 'request.error'
    AND json_valid(e.data);

CREATE TABLE daily_tool_summary (
    request_date TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    execution_count INTEGER NOT NULL,
    error_count INTEGER NOT NULL,
    mean_ms REAL,
    min_ms REAL,
    max_ms REAL,
    p50_ms REAL,
    p95_ms REAL,
    p99_ms REAL,
    PRIMARY KEY (request_date, tool_name)
);

-- daily summary: per day and tool, answered calls only; percentiles interpolate
-- linearly between the ranks around (n - 1) * p (numpy's default).
INSERT INTO daily_tool_summary
WITH ranked AS (
    SELECT
        request_date,
        tool_name,
        status,
        duration_ms,
        row_number() OVER w - 1 AS rn,
        -- The same window with a frame of the whole partition: one sort for both.
        count(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n
    FROM tool_executions
    WHERE status IN ('success', 'error')
        AND duration_ms IS NOT NULL
    WINDOW w AS (PARTITION BY request_date, tool_name ORDER BY duration_ms)
),
grouped AS (
    SELECT
        request_date,
        tool_name,
        count(*) AS n,
        sum(status = 'error') AS errors,
        avg(duration_ms) AS mean_ms,
        min(duration_ms) AS min_ms,
        max(duration_ms) AS max_ms,
        max(CASE WHEN rn = CAST((n - 1) * 0.50 AS INTEGER) THEN duration_ms END) AS p50_lo,
        max(CASE WHEN rn = CAST((n - 1) * 0.50 AS INTEGER) + 1 THEN duration_ms END) AS p50_hi,
        max(CASE WHEN rn = CAST((n - 1) * 0.95 AS INTEGER) THEN duration_ms END) AS p95_lo,
        max(CASE WHEN rn = CAST((n - 1) * 0.95 AS INTEGER) + 1 THEN duration_ms END) AS p95_hi,
        max(CASE WHEN rn = CAST((n - 1) * 0.99 AS INTEGER) THEN duration_ms END) AS p99_lo,
        max(CASE WHEN rn = CAST((n - 1) * 0.99 AS INTEGER) + 1 THEN duration_ms END) AS p99_hi
    FROM ranked
    GROUP BY request_date, tool_name
)
SELECT
    request_date,
    tool_name,
    n,
    errors,
    mean_ms,
    min_ms,
    max_ms,
    p50_lo + (coalesce(p50_hi, p50_lo) - p50_lo) * ((n - 1) * 0.50 - CAST((n - 1) * 0.50 AS INTEGER)),
    p95_lo + (coalesce(p95_hi, p95_lo) - p95_lo) * ((n - 1) * 0.95 - CAST((n - 1) * 0.95 AS INTEGER)),
    p99_lo + (coalesce(p99_hi, p99_lo) - p99_lo) * ((n - 1) * 0.99 - CAST((n - 1) * 0.99 AS INTEGER))
FROM grouped;

COMMIT;
