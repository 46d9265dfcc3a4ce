-- The alerts table: one row per alert that fired, written by `mcp-analytics alerts` into
-- the database the ETL writes, for Grafana and Metabase. The ETL never touches it (a
-- --full rebuild or a schema upgrade keeps it); rows are only ever added.
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_run_id TEXT NOT NULL,            -- one id per `alerts` run: its rows share it
    run_time DATETIME NOT NULL,            -- when `alerts` ran (local clock, like ETL run rows)
    data_time DATETIME NOT NULL,           -- the newest data timestamp; windows count back from it
    rule TEXT NOT NULL,                    -- error_rate | latency_p95 | timeouts_rising | new_error_category | unresolved_growing
    subject TEXT NOT NULL,                 -- the tool, the error category, or '(all)'
    value REAL,                            -- what was measured (unit in docs/report.md)
    threshold REAL,                        -- the limit it crossed
    window_start DATETIME,                 -- the window measured: (window_start, window_end]
    window_end DATETIME,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_alerts_run ON alerts(run_time DESC, rule);
CREATE INDEX IF NOT EXISTS idx_alerts_rule ON alerts(rule, subject, run_time DESC);
