-- Accepted passages of the batch with their plate token and attributes (the raw plate stays in temp tables).
SELECT a.community_id, a.passage_key,
    CASE WHEN regexp_full_match(a.motor_vehicle_id_raw, '[0-9]{6,48}') THEN a.motor_vehicle_id_raw END
        AS motor_vehicle_id,
    a.tollgate_id, a.gate_match, CASE WHEN regexp_full_match(a.device_sent, '[0-9]{20}') THEN a.device_sent END
        AS device_id,
    a.lane_no, TRY_CAST(a.info_kind_raw AS INTEGER) AS info_kind,
    lower(a.has_plate_raw) IN ('1', 'true') AS has_plate,
    CASE WHEN lower(a.is_decked_raw) IN ('1', 'true') THEN true WHEN lower(a.is_decked_raw) IN ('0', 'false') THEN false
    END AS is_decked,
    @plates@, TRY_CAST(a.plate_reliability_raw AS DOUBLE) AS plate_reliability,
    CASE WHEN regexp_full_match(a.vehicle_class_raw, '[A-Za-z0-9]{1,8}') THEN a.vehicle_class_raw END AS vehicle_class,
    CASE WHEN regexp_full_match(a.vehicle_color_raw, '[A-Za-z0-9]{1,8}') THEN a.vehicle_color_raw END AS vehicle_color,
    a.direction, a.direction_source,
    CASE WHEN a.travel_direction_raw IN (SELECT code FROM pv_directions) THEN a.travel_direction_raw END
        AS travel_direction,
    a.pass_ts, a.pass_time_form, a.images_dropped, a.source_file, a.source_line
FROM passages a LEFT JOIN plates p ON a.plate_raw IS NOT DISTINCT FROM p.plate_raw
    AND a.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw AND p.colour_scheme = 'gat1400'
WHERE a.reason IS NULL AND NOT a.dup_in_file AND NOT a.dup_cross_file
ORDER BY a.community_id, a.pass_ts, a.passage_key
