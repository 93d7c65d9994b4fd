-- Bronze passages joined to their gate; re-sent MotorVehicleIDs kept once (bronze already dedups per day).
SELECT b.motor_vehicle_id, t.community_id, t.gate_id, t.park_id, b.lane_no, b.direction, b.pass_ts,
    date_trunc('hour', timezone('@tz@', b.pass_ts)) AS hour_start,
    b.plate_token, b.plate_group, b.plate_type, b.plate_colour, b.plate_valid,
    b.plate_reliability, b.vehicle_class
FROM bronze b
JOIN tollgates t ON t.tollgate_id = b.tollgate_id
QUALIFY row_number() OVER (PARTITION BY b.motor_vehicle_id ORDER BY b.source_file, b.source_line) = 1
