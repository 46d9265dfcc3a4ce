-- title: Capacity planning: load per day
-- rows: one per day: calls, the busiest hour's and minute's calls, client sessions
--   active, bytes received and sent, summed execution time and the mean number of calls
--   running at once (busy time over the day); oldest day first.
WITH per_hour AS (
    SELECT CAST(request_time AS DATE) AS day, DATE_TRUNC('hour', request_time) AS h, COUNT(*) AS n
    FROM tool_executions
    GROUP BY ALL
),
per_minute AS (
    SELECT CAST(request_time AS DATE) AS day, DATE_TRUNC('minute', request_time) AS m, COUNT(*) AS n
    FROM tool_executions
    GROUP BY ALL
),
per_day AS (
    SELECT
        CAST(request_time AS DATE) AS day,
        COUNT(*) AS calls,
        COUNT(DISTINCT session_id) AS sessions,
        SUM(input_size) AS bytes_in,
        SUM(output_size) AS bytes_out,
        SUM(duration_ms) FILTER (WHERE status IN ('success', 'error')) AS busy_ms
    FROM tool_executions
    GROUP BY ALL
)
SELECT
    d.day,
    d.calls,
    (SELECT MAX(n) FROM per_hour WHERE per_hour.day = d.day) AS peak_hour_calls,
    (SELECT MAX(n) FROM per_minute WHERE per_minute.day = d.day) AS peak_minute_calls,
    d.sessions,
    CAST(d.bytes_in AS BIGINT) AS bytes_in,
    CAST(d.bytes_out AS BIGINT) AS bytes_out,
    d.busy_ms,
    ROUND(d.busy_ms / 86400000.0, 4) AS mean_concurrency
FROM per_day AS d
ORDER BY d.day;
