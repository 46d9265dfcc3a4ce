-- title: every request.error event is a row of errors
-- rows: one per request.error event up to the watermark with no errors row (key
--   e:<id>) and no reject.
-- param: events_max_id INTEGER = 0 (etl_metadata)
SELECT
    ev.id AS row_id,
    'events.id ' || ev.id || ' (' || ev.ts || '), request.error: no errors row and no reject'
        AS detail
FROM raw_e AS ev
WHERE ev.id <= $events_max_id
    AND ev.event_type = 'request.error'
    AND NOT EXISTS (SELECT 1 FROM tgt.errors AS e WHERE e.error_key = 'e:' || ev.id)
    AND NOT EXISTS (
        SELECT 1 FROM tgt.etl_rejects AS j WHERE j.source_table = 'events' AND j.source_id = ev.id
    )
ORDER BY ev.id;
