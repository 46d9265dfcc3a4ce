-- Sessions the producer marked as ended: G3 sets an MCP session's status to 'closed'
-- when the client deletes it. G2 never does; REPL statuses (stopped, replaced) concern
-- REPLs and are ignored because only client sessions are looked up.
-- Grain: one row per such session, with the time of the status change.
SELECT session_id, last_activity
FROM sqlite_query(
    'src',
    'SELECT session_id, last_activity FROM sessions WHERE status IN (''closed'', ''terminated'')'
)
