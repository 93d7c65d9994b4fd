-- Parking-cloud NDJSON pushes of every vendor -> temp table pk_raw: one row per push, canonical fields, verdict.
-- Inputs: temp tables lines(source_file, source_line, community_id, file_rank, line, file_error), pk_vendors,
-- pk_events and pk_parks (parse.py builds them from parking_vendors.csv, parking_events.csv and the car-park
-- registry). @vendor@ and @fields@ are generated from parking_vendors.csv and parking_fields.csv: each canonical
-- field is read from its vendor's path and converted to its canonical unit (money to fen text, duration to
-- seconds). A file that could not be read is one row (line NULL, source_line 0): one record, unreadable_file.
CREATE OR REPLACE TEMP TABLE pk_raw AS
WITH j AS (
    SELECT source_file, source_line, community_id, file_rank, file_error, json_valid(line) AS ok,
        CASE WHEN json_valid(line) THEN line::JSON END AS o
    FROM lines
), v AS (SELECT *, @vendor@ AS vendor FROM j), f AS (
    SELECT source_file, source_line, community_id, file_rank, file_error, NOT ok AS bad_doc, v.vendor, @fields@
    FROM v
), t AS (
    SELECT f.*, vd.colour_scheme, vd.push_key, vd.leave_needs_total,
        coalesce(f.mapped_event, CASE WHEN f.event_raw IS NULL AND f.vendor IS NOT NULL THEN
            CASE WHEN f.leave_time_raw IS NOT NULL THEN 'leave' ELSE 'enter' END END) AS event,
        coalesce(p1.park_id, p2.park_id) AS park_id,
        TRY_CAST(f.car_type_raw AS INTEGER) AS car_type,
        date_trunc('second', neuron_time(f.enter_time_raw, '@tz@')) AS enter_ts0,
        date_trunc('second', neuron_time(f.leave_time_raw, '@tz@')) AS leave_ts,
        CASE WHEN neuron_time_form(f.leave_time_raw) = 'epoch_s' THEN TRY_CAST(f.leave_time_raw AS DOUBLE)
             ELSE epoch(neuron_time(f.leave_time_raw, '@tz@')) END AS leave_s,
        -- a push's own time as digits (epoch microseconds; float seconds are read from the text itself, not a
        -- double): the identity of a push of a vendor without a serial, and the serial it gives its session
        CASE WHEN regexp_full_match(own_time, '[0-9]{9,10}(\.[0-9]{1,6})?')
             THEN split_part(own_time, '.', 1) || rpad(split_part(own_time, '.', 2), 6, '0')
             ELSE CAST(epoch_us(neuron_time(own_time, '@tz@')) AS VARCHAR) END AS time_digits,
        TRY_CAST(f.total_spaces_raw AS INTEGER) AS total_spaces,
        TRY_CAST(f.remain_spaces_raw AS INTEGER) AS remain_spaces,
        coalesce(f.is_sync_raw IN ('1', 'true'), false) AS is_sync,
        CASE WHEN json_type(f.payment_list) = 'ARRAY' THEN CAST(f.payment_list AS JSON[]) END AS pays
    FROM (SELECT f.*, ev.event AS mapped_event,
              CASE WHEN ev.event = 'leave' THEN f.leave_time_raw ELSE f.enter_time_raw END AS own_time
          FROM f LEFT JOIN pk_events ev ON ev.vendor = f.vendor AND ev.value = f.event_raw) f
    LEFT JOIN pk_vendors vd ON vd.vendor = f.vendor
    LEFT JOIN (SELECT park_id FROM pk_parks GROUP BY 1) p1 ON p1.park_id = f.park_raw
    LEFT JOIN (SELECT community_id, vendor, vendor_park_id, min(park_id) AS park_id FROM pk_parks
               WHERE vendor_park_id IS NOT NULL GROUP BY 1, 2, 3 HAVING count(*) = 1) p2
        ON p2.community_id = f.community_id AND p2.vendor = f.vendor AND p2.vendor_park_id = f.park_raw
), m AS (
    SELECT *,
        -- fen must be a whole number that fits BIGINT (a string of digits, or a JSON integer); "" or "12.50" is not
        -- fen, and a 20-digit string would abort the later cast with the value in the error
        list_filter([total_raw, free_raw, online_raw, cash_raw], lambda x: x IS NOT NULL
                    AND NOT (regexp_full_match(x, '[0-9]+') AND TRY_CAST(x AS BIGINT) IS NOT NULL)) AS bad_money_fields,
        len(list_filter(coalesce(pays, []), lambda p:
            NOT coalesce(regexp_full_match(p->>'value', '[0-9]+') AND TRY_CAST(p->>'value' AS BIGINT) IS NOT NULL, false)
            OR NOT coalesce(regexp_full_match(coalesce(p->>'free_value', '0'), '[0-9]+')
                            AND TRY_CAST(coalesce(p->>'free_value', '0') AS BIGINT) IS NOT NULL, false)
            OR NOT coalesce(regexp_full_match(coalesce(p->>'change_value', '0'), '[0-9]+')
                            AND TRY_CAST(coalesce(p->>'change_value', '0') AS BIGINT) IS NOT NULL, false))) AS bad_pays
    FROM t
)
SELECT *,
    CASE
        WHEN file_error IS NOT NULL THEN 'unreadable_file'
        WHEN bad_doc THEN 'bad_json'
        WHEN vendor IS NULL THEN 'unknown_vendor'
        WHEN park_raw IS NULL OR event NOT IN ('enter', 'leave') OR (push_key = 'serial' AND serial_raw IS NULL)
            THEN 'missing_key'
        WHEN park_id IS NULL THEN 'unknown_park'
        WHEN push_key = 'serial' AND (enter_ts0 IS NULL OR (event = 'leave' AND (leave_ts IS NULL OR leave_ts < enter_ts0)))
            THEN 'bad_time'
        WHEN push_key = 'event_time' AND (time_digits IS NULL OR (event = 'enter' AND enter_ts0 IS NULL)
                                          OR (event = 'leave' AND (leave_ts IS NULL OR duration_s IS NULL
                                                                   OR duration_s < 0)))
            THEN 'bad_time'
        WHEN len(bad_money_fields) > 0 OR bad_pays > 0 OR (event = 'leave' AND leave_needs_total AND total_raw IS NULL)
            THEN 'bad_money'
    END AS reason,
    CASE WHEN file_error IS NOT NULL THEN file_error
         WHEN bad_doc THEN 'line is not valid JSON (e.g. truncated)'
         WHEN vendor IS NULL THEN 'no known parking vendor shape (parking_vendors.csv)'
         WHEN len(bad_money_fields) > 0 OR bad_pays > 0 THEN 'money not in whole fen'
         WHEN event = 'leave' AND leave_needs_total AND total_raw IS NULL THEN 'exit without total_value' END AS detail
FROM m;
