-- Accepted passages of the batch with their plate token and attributes (the raw plate stays in temp tables).
SELECT a.community_id, a.motor_vehicle_id, a.tollgate_id, a.device_id, a.lane_no, a.info_kind,
    a.has_plate, @plates@, a.plate_reliability, a.vehicle_class, a.vehicle_color, a.direction,
    a.pass_ts, a.images_dropped, a.source_file, a.source_line
FROM passages a LEFT JOIN plates p ON a.plate_raw IS NOT DISTINCT FROM p.plate_raw
    AND a.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw
WHERE a.reason IS NULL AND NOT a.dup_in_file AND NOT a.dup_cross_file
ORDER BY a.community_id, a.pass_ts, a.motor_vehicle_id
