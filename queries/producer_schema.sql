-- Raw log schema exactly as the Kaimon / MCPRepl.jl proxy (schema generation G2) creates it.
-- See docs/producer.md section 1. Used by pipeline/demo.py and by tests as the source shape.
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    start_time DATETIME NOT NULL,
    last_activity DATETIME NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT
);

CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    duration_ms REAL,
    data TEXT,
    FOREIGN KEY (session_id) REFERENCES sessions(session_id)
);

CREATE INDEX IF NOT EXISTS idx_events_session ON events(session_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_events_type ON events(event_type, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_events_timestamp ON events(timestamp DESC);

CREATE TABLE IF NOT EXISTS interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    timestamp DATETIME NOT NULL,
    direction TEXT NOT NULL,
    message_type TEXT NOT NULL,
    request_id TEXT,
    method TEXT,
    content TEXT NOT NULL,
    content_size INTEGER,
    FOREIGN KEY (session_id) REFERENCES sessions(session_id)
);

CREATE INDEX IF NOT EXISTS idx_interactions_session ON interactions(session_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_interactions_request ON interactions(request_id, timestamp);
