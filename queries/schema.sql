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
    request_date TEXT                      -- DATE(request_time), the Parquet partition key
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_tool_executions_request_row ON tool_executions(interaction_request_id);
CREATE INDEX IF NOT EXISTS idx_tool_executions_session ON tool_executions(session_id, request_time DESC);
CREATE INDEX IF NOT EXISTS idx_tool_executions_tool ON tool_executions(tool_name, request_time DESC);
CREATE INDEX IF NOT EXISTS idx_tool_executions_status ON tool_executions(status, request_time DESC);
CREATE INDEX IF NOT EXISTS idx_tool_executions_duration ON tool_executions(duration_ms DESC);
CREATE INDEX IF NOT EXISTS idx_tool_executions_request ON tool_executions(request_id);
CREATE INDEX IF NOT EXISTS idx_tool_executions_response_row ON tool_executions(interaction_response_id);
CREATE INDEX IF NOT EXISTS idx_tool_executions_route ON tool_executions(route, tool_method, request_time);

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
    p99_ms REAL
);
CREATE INDEX IF NOT EXISTS idx_metrics_session ON performance_metrics(session_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_metrics_type ON performance_metrics(metric_type, metric_name, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_metrics_tool ON performance_metrics(tool_name, timestamp DESC);

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
    total_data_sent INTEGER DEFAULT 0,
    total_data_received INTEGER DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_client_sessions_session ON client_sessions(session_id);
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
    metadata TEXT
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

-- Client sessions seen in session.initialized events (the routing map for pairing).
CREATE TABLE IF NOT EXISTS etl_client_map (
    session_id TEXT PRIMARY KEY,
    client_name TEXT,
    target_repl TEXT,
    capabilities TEXT,
    initialized_at DATETIME,
    event_id INTEGER
);

-- A person's resolution of an error, keyed by the error's natural key so that it
-- survives every rebuild (errors.id is a surrogate and changes on --full).
CREATE TABLE IF NOT EXISTS error_resolutions (
    error_key TEXT PRIMARY KEY,
    resolution_notes TEXT,
    resolved_at DATETIME
);

-- Views ------------------------------------------------------------------------------

CREATE VIEW IF NOT EXISTS v_daily_tool_usage AS
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
-- session has both; each side is aggregated on its own before the join.
CREATE VIEW IF NOT EXISTS v_session_summary AS
SELECT
    s.session_id,
    s.start_time,
    s.last_activity,
    s.status,
    cs.client_name,
    cs.client_version,
    COALESCE(te.total_tool_calls, 0) AS total_tool_calls,
    COALESCE(e.total_errors, 0) AS total_errors,
    te.total_execution_time_ms,
    te.avg_execution_time_ms
FROM sessions AS s
LEFT JOIN (
    SELECT session_id, MIN(client_name) AS client_name, MIN(client_version) AS client_version
    FROM client_sessions
    GROUP BY session_id
) AS cs ON s.session_id = cs.session_id
LEFT JOIN (
    SELECT
        session_id,
        COUNT(*) AS total_tool_calls,
        SUM(duration_ms) AS total_execution_time_ms,
        AVG(duration_ms) AS avg_execution_time_ms
    FROM tool_executions
    GROUP BY session_id
) AS te ON s.session_id = te.session_id
LEFT JOIN (
    SELECT session_id, COUNT(*) AS total_errors
    FROM errors
    GROUP BY session_id
) AS e ON s.session_id = e.session_id;

CREATE VIEW IF NOT EXISTS v_error_hotspots AS
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
