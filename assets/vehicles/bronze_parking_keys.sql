-- pk_raw + plates -> temp table pk: the identity of each push, duplicate flags and the session serial.
-- A vendor with a serial (4pyun parking_serial) identifies a push by (park, serial, event). A vendor without one
-- (method/data) identifies it by (park, event, its own time to the microsecond); an entry's session serial is its
-- time digits, and an exit is paired with the same plate token's entry when that is the token's previous accepted
-- push at the car park (else it is exit-only: serial = its own time digits, entry = exit - duration, to the second).
CREATE OR REPLACE TEMP TABLE pk AS
WITH k AS (
    SELECT r.*, p.plate_token,
        CASE WHEN r.push_key = 'event_time' THEN r.time_digits ELSE r.serial_raw END AS push_id
    FROM pk_raw r LEFT JOIN plates p ON r.plate_raw IS NOT DISTINCT FROM p.plate_raw
        AND r.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw AND p.colour_scheme IS NOT DISTINCT FROM r.colour_scheme
), d AS (
    -- re-sends are ranked among accepted copies only: a bad first copy (quarantined) never hides a good re-send
    SELECT *,
        row_number() OVER (PARTITION BY park_id, push_id, event, reason IS NULL, source_file
                           ORDER BY source_line) AS rn_file,
        first(source_file) OVER (PARTITION BY park_id, push_id, event, reason IS NULL
                                 ORDER BY file_rank, source_file, source_line) AS first_file
    FROM k
), f AS (
    SELECT * EXCLUDE (rn_file, first_file),
        reason IS NULL AND rn_file > 1 AS dup_in_file,
        reason IS NULL AND rn_file = 1 AND source_file <> first_file AS dup_cross_file
    FROM d
), seq AS (
    -- accepted first copies of time-identified pushes, in time order per car park and plate token
    SELECT source_file, source_line,
        lag(event) OVER w AS prev_event, lag(push_id) OVER w AS prev_id, lag(enter_ts0) OVER w AS prev_enter
    FROM f
    WHERE push_key = 'event_time' AND reason IS NULL AND NOT dup_in_file AND NOT dup_cross_file
        AND plate_token IS NOT NULL
    WINDOW w AS (PARTITION BY park_id, plate_token
                 ORDER BY coalesce(leave_ts, enter_ts0), event = 'leave', push_id)
)
SELECT f.*,
    CASE WHEN f.push_key = 'serial' THEN f.serial_raw
         WHEN f.event = 'leave' AND s.prev_event = 'enter' THEN s.prev_id
         ELSE f.push_id END AS parking_serial,
    CASE WHEN f.push_key = 'serial' OR f.event = 'enter' THEN f.enter_ts0
         WHEN s.prev_event = 'enter' THEN s.prev_enter
         ELSE to_timestamp(floor(f.leave_s - f.duration_s)) END AS enter_ts
FROM f LEFT JOIN seq s USING (source_file, source_line);
