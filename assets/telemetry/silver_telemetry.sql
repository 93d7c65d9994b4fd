-- silver/telemetry for one day: duplicates across files removed (the earliest file and line wins),
-- community and building taken from the registry (the authority for where a device is installed).
-- Inputs: views `bronze`, `registry`.
SELECT g.community_id, g.building_id, b.device_id, g.device_type, b.platform, b.event_ts,
    b.metric, b.value, b.unit, b.quality_flag, b.subject_token, b.message_id
FROM bronze b
JOIN registry g USING (device_id)
QUALIFY row_number() OVER (PARTITION BY b.dedup_key, b.vendor_key ORDER BY b.source_file, b.source_line) = 1
