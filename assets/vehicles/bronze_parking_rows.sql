-- Accepted parking pushes of the batch: times to the second, fen strings to BIGINT, plates to tokens.
SELECT a.community_id, a.vendor, a.park_id, a.parking_serial, a.event, @plates@, a.car_type,
    a.enter_ts, CASE WHEN a.event = 'leave' THEN a.leave_ts END AS leave_ts,
    a.enter_gate, CASE WHEN a.event = 'leave' THEN a.leave_gate END AS leave_gate,
    TRY_CAST(a.total_raw AS BIGINT) AS total_fen, TRY_CAST(a.free_raw AS BIGINT) AS free_fen,
    TRY_CAST(a.online_raw AS BIGINT) AS online_fen, TRY_CAST(a.cash_raw AS BIGINT) AS cash_fen,
    CAST(round(a.duration_s) AS BIGINT) AS duration_s,
    a.total_spaces, a.remain_spaces, a.is_sync, coalesce(len(a.pays), 0) AS payments,
    a.source_file, a.source_line
FROM pk a LEFT JOIN plates p ON a.plate_raw IS NOT DISTINCT FROM p.plate_raw
    AND a.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw AND p.colour_scheme IS NOT DISTINCT FROM a.colour_scheme
WHERE a.reason IS NULL AND NOT a.dup_in_file AND NOT a.dup_cross_file
ORDER BY a.community_id, a.park_id, a.parking_serial, a.event
