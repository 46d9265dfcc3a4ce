-- Target schema: the design document's five tables and three views (a public contract:
-- columns are added, never renamed or dropped), plus the ETL's own bookkeeping tables.
-- Created with our own DDL so types never drift (STYLE.md, pitfalls).

CREATE TABLE IF NOT EXISTS tool_executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,              -- the resolved MCP client session (SPEC §2)
    request_id TEXT NOT NULL,              -- the JSON-RPC id as text
    tool_name TEXT NOT NULL,
    tool_method TEXT,
    request_time DATETIME NOT NULL,
    response_time DATETIME,
    duration_ms REAL,
    input_size INTEGER,
    output_size INTEGER,
    argument_count INTEGER,
    arguments TEXT,
    status TEXT NOT NULL,                  -- success | error | cancelled | timeout | pending
    result_type TEXT,                      -- text | image | audio | resource_link | resource | mixed | empty | error | input_required | task
    result_summary TEXT,
    interaction_request_id INTEGER,
    interaction_response_id INTEGER,
    -- additions to the design document
    source_session_id TEXT,                -- the raw request row's session_id (progress token, tool name or 'proxy')
    client_name TEXT,
    error_code INTEGER,
    has_structured_content INTEGER,
    request_id_type TEXT,                  -- number | string: 1 and "1" are different ids
    request_id_json TEXT,                  -- the id as JSON text, the pairing key
    route TEXT,                            -- where the call was sent: a REPL id, 'proxy', or '*' when unknown
    is_proxy_tool INTEGER,
    interaction_cancel_id INTEGER,
    cancel_time DATETIME,
    cancel_reason TEXT,
    request_date TEXT,                     -- DATE(request_time), the Parquet partition key
    answered_by TEXT                       -- the response row's session id: the REPL that answered, or 'proxy'
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_tool_executions_request_row ON tool_executions(interaction_request_id);
CREATE INDEX IF NOT EXISTS idx_tool_executions_session ON tool_executions(session_id, request_time DESC);
CREATE INDEX IF NOT EXISTS idx_tool_executions_tool ON tool_executions(tool_name, request_time DESC);
CREATE INDEX IF NOT EXISTS idx_tool_executions_status ON tool_executions(status, request_time DESC);
CREATE INDEX IF NOT EXISTS idx_tool_executions_duration ON tool_executions(duration_ms DESC);
CREATE INDEX IF NOT EXISTS idx_tool_executions_request ON tool_executions(request_id);
CREATE INDEX IF NOT EXISTS idx_tool_executions_response_row ON tool_executions(interaction_response_id);
CREATE INDEX IF NOT EXISTS idx_tool_executions_route ON tool_executions(route, tool_method, request_time);
CREATE INDEX IF NOT EXISTS idx_tool_executions_date ON tool_executions(request_date, status);
CREATE INDEX IF NOT EXISTS idx_tool_executions_answered ON tool_executions(answered_by, request_time);
CREATE INDEX IF NOT EXISTS idx_tool_executions_cancel_row ON tool_executions(interaction_cancel_id)
    WHERE interaction_cancel_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    error_type TEXT NOT NULL,              -- tool_error | protocol_error | system_error
    error_code INTEGER,
    error_category TEXT,
    tool_name TEXT,
    method TEXT,
    request_id TEXT,
    message TEXT NOT NULL,
    stack_trace TEXT,
    client_info TEXT,
    input_that_caused_error TEXT,
    resolved BOOLEAN DEFAULT 0,
    resolution_notes TEXT,
    interaction_id INTEGER,
    event_id INTEGER,
    -- additions to the design document
    error_key TEXT NOT NULL,               -- stable natural key: 'i:<interaction id>' or 'e:<event id>'
    error_source TEXT NOT NULL,            -- jsonrpc_error | is_error_result | request_error_event
    interaction_request_id INTEGER,        -- the paired request row, when there is one
    source_session_id TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_errors_key ON errors(error_key);
CREATE INDEX IF NOT EXISTS idx_errors_session ON errors(session_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_errors_type ON errors(error_type, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_errors_code ON errors(error_code, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_errors_tool ON errors(tool_name, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_errors_unresolved ON errors(resolved, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_errors_interaction ON errors(interaction_id);
CREATE INDEX IF NOT EXISTS idx_errors_event ON errors(event_id);

CREATE TABLE IF NOT EXISTS performance_metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    metric_type TEXT NOT NULL,
    metric_name TEXT NOT NULL,
    duration_ms REAL,
    throughput REAL,
    memory_mb REAL,
    cpu_percent REAL,
    tool_name TEXT,
    agent_id TEXT,
    p50_ms REAL,
    p95_ms REAL,
    p99_ms REAL,
    -- additions to the design document
    execution_count INTEGER,               -- tool_execution: executions that got a response
    error_count INTEGER,                   -- tool_execution: of those, status 'error'
    min_ms REAL,
    max_ms REAL,
    bucket_seconds INTEGER,                -- 3600 (latency_1h) or 86400 (latency_1d); etl: NULL
    -- Latency histogram on the OpenTelemetry MCP duration boundaries: each column counts
    -- the durations in (previous boundary, this boundary], hist_inf those above 300 s.
    hist_10ms INTEGER,
    hist_20ms INTEGER,
    hist_50ms INTEGER,
    hist_100ms INTEGER,
    hist_200ms INTEGER,
    hist_500ms INTEGER,
    hist_1s INTEGER,
    hist_2s INTEGER,
    hist_5s INTEGER,
    hist_10s INTEGER,
    hist_30s INTEGER,
    hist_60s INTEGER,
    hist_120s INTEGER,
    hist_300s INTEGER,
    hist_inf INTEGER,
    rows_read INTEGER,                     -- etl: source rows the run read
    metric_date TEXT                       -- DATE(timestamp), the Parquet partition key
);
CREATE INDEX IF NOT EXISTS idx_metrics_session ON performance_metrics(session_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_metrics_type ON performance_metrics(metric_type, metric_name, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_metrics_tool ON performance_metrics(tool_name, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_metrics_date ON performance_metrics(metric_type, metric_date);

CREATE TABLE IF NOT EXISTS client_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    client_name TEXT NOT NULL,
    client_version TEXT,
    connect_time DATETIME NOT NULL,
    disconnect_time DATETIME,
    last_activity DATETIME,
    supports_streaming BOOLEAN,
    supports_notifications BOOLEAN,
    supported_content_types TEXT,
    protocol_version TEXT,
    initialization_params TEXT,
    target_repl TEXT,
    total_requests INTEGER DEFAULT 0,
    total_errors INTEGER DEFAULT 0,
    total_data_sent INTEGER DEFAULT 0,     -- bytes the client sent (its requests)
    total_data_received INTEGER DEFAULT 0, -- bytes the client received (responses to them)
    -- additions to the design document
    capabilities TEXT,                     -- the client's capabilities object, raw JSON
    supports_roots BOOLEAN,
    supports_sampling BOOLEAN,
    supports_elicitation BOOLEAN,
    session_kind TEXT NOT NULL,            -- initialize | stateless
    status TEXT NOT NULL,                  -- active | disconnected | terminated
    initialize_interaction_id INTEGER,     -- the matched initialize request row
    initialized_event_id INTEGER,          -- its session.initialized event
    connect_date TEXT                      -- DATE(connect_time)
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_client_sessions_session ON client_sessions(session_id);
CREATE INDEX IF NOT EXISTS idx_client_sessions_client ON client_sessions(client_name, connect_time DESC);
CREATE INDEX IF NOT EXISTS idx_client_sessions_active ON client_sessions(disconnect_time) WHERE disconnect_time IS NULL;

CREATE TABLE IF NOT EXISTS session_lifecycle (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    event_type TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    reason TEXT,
    triggered_by TEXT,
    metadata TEXT,
    -- additions to the design document
    entity_type TEXT NOT NULL,             -- client | repl
    lifecycle_date TEXT                    -- DATE(timestamp), the Parquet partition key
);
CREATE INDEX IF NOT EXISTS idx_lifecycle_session ON session_lifecycle(session_id, timestamp);
CREATE INDEX IF NOT EXISTS idx_lifecycle_event ON session_lifecycle(event_type, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_lifecycle_state ON session_lifecycle(to_state, timestamp DESC);

-- Bookkeeping ----------------------------------------------------------------------

-- Watermarks and run facts: one row per key.
CREATE TABLE IF NOT EXISTS etl_metadata (
    key TEXT PRIMARY KEY,
    value TEXT,
    updated_at DATETIME
);

-- Source rows the ETL could not use, with the reason; never silently dropped.
CREATE TABLE IF NOT EXISTS etl_rejects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_table TEXT NOT NULL,
    source_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    excerpt TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_etl_rejects_row ON etl_rejects(source_table, source_id);

-- Requests other than tools/call, kept for pairing and for error context.
CREATE TABLE IF NOT EXISTS etl_requests (
    interaction_id INTEGER PRIMARY KEY,
    id_json TEXT NOT NULL,
    method TEXT,
    session_id TEXT NOT NULL,
    source_session_id TEXT,
    client_name TEXT,
    route TEXT NOT NULL,
    request_time DATETIME NOT NULL,
    input_size INTEGER,
    params TEXT,
    response_interaction_id INTEGER,
    response_time DATETIME,
    output_size INTEGER,
    response_is_error INTEGER
);
CREATE INDEX IF NOT EXISTS idx_etl_requests_open ON etl_requests(response_interaction_id);
CREATE INDEX IF NOT EXISTS idx_etl_requests_session ON etl_requests(session_id, request_time);
CREATE INDEX IF NOT EXISTS idx_etl_requests_method ON etl_requests(method, request_time);

-- Client sessions seen in session.initialized events (the routing map for pairing).
CREATE TABLE IF NOT EXISTS etl_client_map (
    session_id TEXT PRIMARY KEY,
    client_name TEXT,
    target_repl TEXT,
    capabilities TEXT,
    initialized_at DATETIME,
    event_id INTEGER
);

-- Valid messages that make no analytics row by rule (notifications, a client's answers
-- to server requests, outbound requests): listed so that every source row is
-- accounted for somewhere (an analytics table, etl_rejects, or here).
CREATE TABLE IF NOT EXISTS etl_other_messages (
    interaction_id INTEGER PRIMARY KEY,
    direction TEXT,
    kind TEXT NOT NULL,                    -- notification | request | response
    method TEXT
);

-- REPL lifecycle events (repl.registered / repl.unregistered), kept for session_lifecycle.
CREATE TABLE IF NOT EXISTS etl_repl_events (
    event_id INTEGER PRIMARY KEY,
    repl_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    data TEXT
);

-- Stateless (2026-07-28) client identities seen in request _meta: one row per session,
-- from the first request that carried a clientInfo.
CREATE TABLE IF NOT EXISTS etl_stateless_clients (
    session_id TEXT PRIMARY KEY,
    client_name TEXT NOT NULL,
    client_version TEXT,
    protocol_version TEXT,
    capabilities TEXT,
    first_seen DATETIME NOT NULL,
    interaction_id INTEGER NOT NULL
);

-- Per session (any session id executions or requests were attributed to): totals over
-- its requests, recomputed only for the sessions a run touches.
CREATE TABLE IF NOT EXISTS etl_session_activity (
    session_id TEXT PRIMARY KEY,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    first_activity DATETIME,
    last_activity DATETIME,
    top_repl TEXT                          -- the REPL that answered most of its calls
);

-- A person's resolution of an error, keyed by the error's natural key so that it
-- survives every rebuild (errors.id is a surrogate and changes on --full).
CREATE TABLE IF NOT EXISTS error_resolutions (
    error_key TEXT PRIMARY KEY,
    resolution_notes TEXT,
    resolved_at DATETIME
);

-- Views ------------------------------------------------------------------------------
-- Dropped and created on every open, so a target always has the current definitions.
DROP VIEW IF EXISTS v_daily_tool_usage;
DROP VIEW IF EXISTS v_session_summary;
DROP VIEW IF EXISTS v_error_hotspots;
DROP VIEW IF EXISTS v_latency_histogram;
DROP VIEW IF EXISTS v_tool_latency_hourly;
DROP VIEW IF EXISTS v_client_activity;

CREATE VIEW v_daily_tool_usage AS
SELECT
    DATE(request_time) AS date,
    tool_name,
    COUNT(*) AS execution_count,
    AVG(duration_ms) AS avg_duration_ms,
    MIN(duration_ms) AS min_duration_ms,
    MAX(duration_ms) AS max_duration_ms,
    SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS error_count,
    ROUND(100.0 * SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) / COUNT(*), 2) AS error_rate_pct
FROM tool_executions
GROUP BY DATE(request_time), tool_name
ORDER BY date DESC, execution_count DESC;

-- The seed joined executions and errors side by side, which multiplies the sums when a
-- session has both; each side is aggregated on its own before the join. The seed read
-- the producer's raw `sessions` table, which also lists REPLs, progress tokens and tool
-- names; here a session is a client session, plus any session id executions were
-- attributed to without one (status 'unattributed'), so the view works on any target.
CREATE VIEW v_session_summary AS
WITH ids AS (
    SELECT session_id FROM client_sessions
    UNION
    SELECT session_id FROM tool_executions
),
te AS (
    SELECT
        session_id,
        COUNT(*) AS total_tool_calls,
        SUM(duration_ms) AS total_execution_time_ms,
        AVG(duration_ms) AS avg_execution_time_ms,
        MIN(request_time) AS first_call,
        MAX(COALESCE(response_time, request_time)) AS last_call
    FROM tool_executions
    GROUP BY session_id
),
e AS (
    SELECT session_id, COUNT(*) AS total_errors
    FROM errors
    GROUP BY session_id
)
SELECT
    ids.session_id,
    COALESCE(cs.connect_time, te.first_call) AS start_time,
    COALESCE(cs.last_activity, te.last_call) AS last_activity,
    COALESCE(cs.status, 'unattributed') AS status,
    cs.client_name,
    cs.client_version,
    COALESCE(te.total_tool_calls, 0) AS total_tool_calls,
    COALESCE(e.total_errors, 0) AS total_errors,
    te.total_execution_time_ms,
    te.avg_execution_time_ms
FROM ids
LEFT JOIN client_sessions AS cs ON cs.session_id = ids.session_id
LEFT JOIN te ON te.session_id = ids.session_id
LEFT JOIN e ON e.session_id = ids.session_id;

CREATE VIEW v_error_hotspots AS
SELECT
    tool_name,
    error_type,
    error_category,
    COUNT(*) AS error_count,
    COUNT(DISTINCT session_id) AS affected_sessions,
    MAX(timestamp) AS last_occurrence
FROM errors
WHERE resolved = 0
GROUP BY tool_name, error_type, error_category
ORDER BY error_count DESC;

-- Helper views for the dashboards ----------------------------------------------------

-- The hourly latency histogram in long form (one row per bucket, tool and bin), the shape
-- Grafana's heatmap and Metabase's bar charts take. le_seconds is the bin's upper bound
-- (NULL for the bin above 300 s); tool_name NULL is the all-tools row.
CREATE VIEW v_latency_histogram AS
WITH bins(bin, le_seconds) AS (
    VALUES (1, 0.01), (2, 0.02), (3, 0.05), (4, 0.1), (5, 0.2), (6, 0.5), (7, 1.0), (8, 2.0),
        (9, 5.0), (10, 10.0), (11, 30.0), (12, 60.0), (13, 120.0), (14, 300.0), (15, NULL)
)
SELECT
    m.timestamp,
    m.tool_name,
    bins.bin,
    bins.le_seconds,
    CASE bins.bin
        WHEN 1 THEN m.hist_10ms WHEN 2 THEN m.hist_20ms WHEN 3 THEN m.hist_50ms
        WHEN 4 THEN m.hist_100ms WHEN 5 THEN m.hist_200ms WHEN 6 THEN m.hist_500ms
        WHEN 7 THEN m.hist_1s WHEN 8 THEN m.hist_2s WHEN 9 THEN m.hist_5s
        WHEN 10 THEN m.hist_10s WHEN 11 THEN m.hist_30s WHEN 12 THEN m.hist_60s
        WHEN 13 THEN m.hist_120s WHEN 14 THEN m.hist_300s ELSE m.hist_inf
    END AS execution_count
FROM performance_metrics AS m
CROSS JOIN bins
WHERE m.metric_type = 'tool_execution' AND m.metric_name = 'latency_1h';

-- Per tool and hour: counts, error rate and exact percentiles, ready to plot.
CREATE VIEW v_tool_latency_hourly AS
SELECT
    timestamp,
    COALESCE(tool_name, '(all tools)') AS tool_name,
    execution_count,
    error_count,
    ROUND(100.0 * error_count / execution_count, 2) AS error_rate_pct,
    duration_ms AS mean_ms,
    p50_ms,
    p95_ms,
    p99_ms,
    min_ms,
    max_ms,
    throughput
FROM performance_metrics
WHERE metric_type = 'tool_execution' AND metric_name = 'latency_1h';

-- Client sessions by name and version, active or not, with their totals.
CREATE VIEW v_client_activity AS
SELECT
    client_name,
    client_version,
    protocol_version,
    session_kind,
    COUNT(*) AS sessions,
    SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END) AS active_sessions,
    SUM(total_requests) AS total_requests,
    SUM(total_errors) AS total_errors,
    MIN(connect_time) AS first_connect,
    MAX(last_activity) AS last_activity
FROM client_sessions
GROUP BY client_name, client_version, protocol_version, session_kind;
