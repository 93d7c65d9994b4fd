-- pushes = distinct pushes paired into the session; versions = bronze rows behind them (re-sends included), so
-- the accounting measures re-sends collapsed here and a push lost in pairing unbalances it.
-- Pair entry and exit pushes on (park, parking_serial). The exit push's enter_time wins (the cloud's final
-- word); an open session whose plate enters the same car park again is auto-closed at that re-entry.
WITH b AS (
    SELECT *, count(*) OVER (PARTITION BY park_id, parking_serial, event) AS versions FROM bronze
    QUALIFY row_number() OVER (PARTITION BY park_id, parking_serial, event ORDER BY source_file, source_line) = 1
), e AS (SELECT * FROM b WHERE event = 'enter'),
x AS (SELECT * FROM b WHERE event = 'leave'),
p AS (
    SELECT coalesce(x.community_id, e.community_id) AS community_id,
        coalesce(x.park_id, e.park_id) AS park_id,
        coalesce(x.parking_serial, e.parking_serial) AS parking_serial,
        coalesce(x.plate_token, e.plate_token) AS plate_token,
        coalesce(x.plate_group, e.plate_group) AS plate_group,
        coalesce(x.plate_type, e.plate_type) AS plate_type,
        coalesce(x.car_type, e.car_type) AS car_type,
        coalesce(x.enter_ts, e.enter_ts) AS enter_ts,
        x.leave_ts,
        coalesce(e.enter_ts <> x.enter_ts, false) AS enter_time_corrected,
        CASE WHEN e.park_id IS NULL THEN 'exit_only' WHEN x.park_id IS NULL THEN 'open' ELSE 'closed' END AS status0,
        coalesce(x.enter_gate, e.enter_gate) AS enter_gate,
        x.leave_gate,
        coalesce(x.total_fen, 0) AS total_fen, coalesce(x.free_fen, 0) AS free_fen,
        coalesce(x.online_fen, 0) AS online_fen, coalesce(x.cash_fen, 0) AS cash_fen,
        coalesce(e.is_sync, false) OR coalesce(x.is_sync, false) AS backfilled,
        (e.park_id IS NOT NULL)::INT + (x.park_id IS NOT NULL)::INT AS pushes,
        coalesce(e.versions, 0) + coalesce(x.versions, 0) AS versions
    FROM e FULL OUTER JOIN x ON e.park_id = x.park_id AND e.parking_serial = x.parking_serial
), n AS (
    SELECT *,
        CASE WHEN plate_token IS NOT NULL THEN
            lead(enter_ts) OVER (PARTITION BY park_id, plate_token ORDER BY enter_ts, parking_serial) END AS next_enter
    FROM p
)
SELECT community_id, park_id, parking_serial, plate_token, plate_group, plate_type, car_type,
    CASE WHEN status0 = 'open' AND next_enter IS NOT NULL THEN 'auto_closed' ELSE status0 END AS status,
    enter_ts,
    CASE WHEN status0 = 'open' AND next_enter IS NOT NULL THEN next_enter ELSE leave_ts END AS leave_ts,
    epoch(CASE WHEN status0 = 'open' AND next_enter IS NOT NULL THEN next_enter ELSE leave_ts END - enter_ts) / 60.0
        AS duration_min,
    enter_ts < TIMESTAMPTZ '@day_start@' AS entered_before_day,
    enter_time_corrected, enter_gate, leave_gate, total_fen, free_fen, online_fen, cash_fen, backfilled, pushes,
    versions
FROM n
