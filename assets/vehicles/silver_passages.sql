-- Bronze passages joined to their gate; a passage re-sent to two community folders is kept once (passage_key:
-- the 48-digit MotorVehicleID, else gate + lane + second + plate token).
-- versions = bronze rows behind the silver row (joined ones only): the accounting compares their sum with the
-- bronze row count, so a row lost in the join (its tollgate left the registry) unbalances the check.
SELECT b.passage_key, b.motor_vehicle_id, t.community_id, t.gate_id, t.park_id, b.lane_no, b.direction,
    b.direction_source, b.travel_direction, b.pass_ts,
    date_trunc('hour', timezone('@tz@', b.pass_ts)) AS hour_start,
    b.plate_token, b.plate_group, b.plate_type, b.plate_colour, b.plate_valid,
    b.plate_reliability, b.vehicle_class,
    count(*) OVER (PARTITION BY b.passage_key) AS versions
FROM bronze b
JOIN tollgates t ON t.tollgate_id = b.tollgate_id
QUALIFY row_number() OVER (PARTITION BY b.passage_key ORDER BY b.source_file, b.source_line) = 1
