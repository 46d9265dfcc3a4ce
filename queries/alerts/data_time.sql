-- title: The newest data timestamp
-- rows: one row: the newest request, response or error time in the load. Alert windows
--   count back from it (not from the wall clock), so a copy of an old log gives the same
--   alerts.
SELECT GREATEST(
    (SELECT MAX(request_time) FROM tool_executions),
    (SELECT MAX(response_time) FROM tool_executions),
    (SELECT MAX("timestamp") FROM errors)
) AS data_time;
