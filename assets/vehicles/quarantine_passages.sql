-- Rejected passages: ids only when they have the id format, the reason, lineage; never a plate or an image.
SELECT community_id,
    CASE WHEN regexp_full_match(motor_vehicle_id, '[0-9]{48}') THEN motor_vehicle_id END AS motor_vehicle_id,
    CASE WHEN regexp_full_match(tollgate_id, '[0-9]{20}') THEN tollgate_id END AS tollgate_id, reason,
    CASE reason WHEN 'unreadable_file' THEN file_error
        WHEN 'bad_json' THEN source_file || ': document is not valid JSON (e.g. truncated); quarantined whole'
        WHEN 'bad_pass_time' THEN 'PassTime is not YYYYMMDDhhmmss'
        WHEN 'unknown_tollgate' THEN 'TollgateID not in the sites registry'
        WHEN 'unknown_envelope' THEN 'MotorVehicleObject is neither a list nor an object' END AS detail,
    source_file, source_line
FROM passages WHERE reason IS NOT NULL AND NOT dup_in_file AND NOT dup_cross_file
ORDER BY source_file, source_line
