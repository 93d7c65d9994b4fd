-- Parking-cloud NDJSON pushes -> one row per push with its reason (NULL = accepted) and duplicate flags.
-- Inputs: temp table lines(source_file, source_line, community_id, file_rank, line, file_error); car_parks view.
-- A file that could not be read is one row (line NULL, source_line 0): one record, unreadable_file. A rejected
-- line repeating one of an earlier file is flagged dup_cross_file afterwards (kernel.ndjson.RepeatedRejections).
CREATE OR REPLACE TEMP TABLE pk AS
WITH j AS (
    SELECT source_file, source_line, community_id, file_rank, file_error, json_valid(line) AS ok,
        CASE WHEN json_valid(line) THEN line::JSON END AS o
    FROM lines
), f AS (
    SELECT source_file, source_line, community_id, file_rank, file_error, NOT ok AS bad_doc,
        o->>'park_uuid' AS park_id,
        o->>'parking_serial' AS parking_serial,
        coalesce(o->>'event_type', CASE WHEN o->>'leave_time' IS NOT NULL THEN 'leave' ELSE 'enter' END) AS event,
        o->>'plate' AS plate_raw,
        o->>'plate_color' AS plate_color_raw,
        TRY_CAST(o->>'car_type' AS INTEGER) AS car_type,
        TRY_CAST(o->>'enter_time' AS BIGINT) AS enter_ms,
        TRY_CAST(o->>'leave_time' AS BIGINT) AS leave_ms,
        o->>'enter_gate' AS enter_gate,
        o->>'leave_gate' AS leave_gate,
        o->>'total_value' AS total_raw, o->>'free_value' AS free_raw,
        o->>'online_value' AS online_raw, o->>'cash_value' AS cash_raw,
        TRY_CAST(o->>'total_parking_space' AS INTEGER) AS total_spaces,
        TRY_CAST(o->>'remain_parking_space' AS INTEGER) AS remain_spaces,
        coalesce(o->>'is_sync' IN ('1', 'true'), false) AS is_sync,
        CASE WHEN json_type(o->'payment_list') = 'ARRAY' THEN CAST(o->'payment_list' AS JSON[]) END AS pays
    FROM j
), m AS (
    SELECT *,
        -- fen must be a whole number that fits BIGINT (a string of digits, or a JSON integer); "" or "12.50" is not
        -- fen, and a 20-digit string would abort the later cast with the value in the error
        list_filter([total_raw, free_raw, online_raw, cash_raw], lambda v: v IS NOT NULL
                    AND NOT (regexp_full_match(v, '[0-9]+') AND TRY_CAST(v AS BIGINT) IS NOT NULL)) AS bad_money_fields,
        len(list_filter(coalesce(pays, []), lambda p:
            NOT coalesce(regexp_full_match(p->>'value', '[0-9]+') AND TRY_CAST(p->>'value' AS BIGINT) IS NOT NULL, false)
            OR NOT coalesce(regexp_full_match(coalesce(p->>'free_value', '0'), '[0-9]+')
                            AND TRY_CAST(coalesce(p->>'free_value', '0') AS BIGINT) IS NOT NULL, false)
            OR NOT coalesce(regexp_full_match(coalesce(p->>'change_value', '0'), '[0-9]+')
                            AND TRY_CAST(coalesce(p->>'change_value', '0') AS BIGINT) IS NOT NULL, false))) AS bad_pays
    FROM f
), r AS (
    SELECT *,
        CASE
            WHEN file_error IS NOT NULL THEN 'unreadable_file'
            WHEN bad_doc THEN 'bad_json'
            WHEN park_id IS NULL OR parking_serial IS NULL OR event NOT IN ('enter', 'leave') THEN 'missing_key'
            WHEN park_id NOT IN (SELECT park_id FROM car_parks) THEN 'unknown_park'
            WHEN enter_ms IS NULL OR (event = 'leave' AND (leave_ms IS NULL OR leave_ms < enter_ms)) THEN 'bad_time'
            WHEN len(bad_money_fields) > 0 OR bad_pays > 0 OR (event = 'leave' AND total_raw IS NULL) THEN 'bad_money'
        END AS reason,
        CASE WHEN file_error IS NOT NULL THEN file_error
             WHEN bad_doc THEN 'line is not valid JSON (e.g. truncated)'
             WHEN len(bad_money_fields) > 0 OR bad_pays > 0 THEN 'money not in whole fen'
             WHEN event = 'leave' AND total_raw IS NULL THEN 'exit without total_value' END AS detail
    FROM m
), d AS (
    -- re-sends are ranked among accepted copies only: a bad first copy (quarantined) never hides a good re-send
    SELECT *,
        row_number() OVER (PARTITION BY park_id, parking_serial, event, reason IS NULL, source_file
                           ORDER BY source_line) AS rn_file,
        first(source_file) OVER (PARTITION BY park_id, parking_serial, event, reason IS NULL
                                 ORDER BY file_rank, source_file, source_line) AS first_file
    FROM r
)
SELECT * EXCLUDE (rn_file, first_file),
    reason IS NULL AND rn_file > 1 AS dup_in_file,
    reason IS NULL AND rn_file = 1 AND source_file <> first_file AS dup_cross_file
FROM d;
