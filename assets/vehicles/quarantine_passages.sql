-- Rejected passages: ids only when they have the id format, the reason, lineage; never a plate or an image.
SELECT community_id,
    CASE WHEN regexp_full_match(motor_vehicle_id_raw, '[0-9]{6,48}') THEN motor_vehicle_id_raw END AS motor_vehicle_id,
    CASE WHEN regexp_full_match(tollgate_sent, '[0-9]{1,20}') THEN tollgate_sent END AS tollgate_id, reason,
    CASE reason WHEN 'unreadable_file' THEN file_error
        WHEN 'bad_json' THEN source_file || ': document is not valid JSON (e.g. truncated); quarantined whole'
        WHEN 'bad_pass_time' THEN 'PassTime is neither YYYYMMDDhhmmss local nor epoch (s or ms) nor ISO'
        WHEN 'pass_time_outside_day' THEN 'PassTime outside the partition day'
        WHEN 'unknown_tollgate' THEN 'neither TollgateID nor DeviceID names a registered gate'
        WHEN 'unknown_direction' THEN 'no InOut/ParkingInOutType and the lane or gate is not registered as entry or exit'
        WHEN 'unknown_envelope' THEN 'no MotorVehicle object list under a known wrapper (or not an object)' END AS detail,
    source_file, source_line
FROM passages WHERE reason IS NOT NULL AND NOT dup_in_file AND NOT dup_cross_file
ORDER BY source_file, source_line
