-- audit/completeness for one day: per source and community, what the registries say should arrive against
-- what was received. Views: registry (bronze/device_registry), doors, tollgates, car_parks (site registries),
-- files (source, community_id, files: landing files of the day), and per source <source>_received
-- (community_id, n: bronze + quarantine rows) and <source>_accepted (community_id, n, units, ts: silver rows with
-- the device id for telemetry and the record time). Placeholders: @tz@, @min_hours@ (telemetry partial below it).
WITH communities AS (
    SELECT community_id FROM registry UNION SELECT community_id FROM doors
    UNION SELECT community_id FROM tollgates UNION SELECT community_id FROM car_parks
),
expected AS (
    SELECT 'telemetry' AS source, community_id, count(*) AS units FROM registry GROUP BY ALL
    UNION ALL SELECT 'access_events', community_id, count(*) FROM doors GROUP BY ALL
    UNION ALL SELECT 'vehicle_passages', community_id, count(*) FROM tollgates GROUP BY ALL
    UNION ALL SELECT 'parking', community_id, count(*) FROM car_parks GROUP BY ALL
    UNION ALL SELECT 'property_services', community_id, 1 FROM communities WHERE community_id IS NOT NULL
),
received AS (
    SELECT source, community_id, sum(n) AS n FROM (
        SELECT 'telemetry' AS source, community_id, n FROM telemetry_received
        UNION ALL SELECT 'access_events', community_id, n FROM access_events_received
        UNION ALL SELECT 'vehicle_passages', community_id, n FROM vehicle_passages_received
        UNION ALL SELECT 'parking', community_id, n FROM parking_received
        UNION ALL SELECT 'property_services', community_id, n FROM property_services_received
    ) WHERE community_id IS NOT NULL GROUP BY ALL
),
accepted_rows AS (
    SELECT 'telemetry' AS source, community_id, units, ts FROM telemetry_accepted
    UNION ALL SELECT 'access_events', community_id, NULL, ts FROM access_events_accepted
    UNION ALL SELECT 'vehicle_passages', community_id, NULL, ts FROM vehicle_passages_accepted
    UNION ALL SELECT 'parking', community_id, NULL, ts FROM parking_accepted
    UNION ALL SELECT 'property_services', community_id, NULL, ts FROM property_services_accepted
),
accepted AS (
    SELECT source, community_id, count(*) AS n, count(DISTINCT units) AS units,
        count(DISTINCT date_part('hour', timezone('@tz@', ts))) FILTER (WHERE ts IS NOT NULL) AS hours
    FROM accepted_rows WHERE community_id IS NOT NULL GROUP BY ALL
),
keys AS (
    SELECT source, community_id FROM expected UNION SELECT source, community_id FROM received
    UNION SELECT source, community_id FROM accepted UNION SELECT source, community_id FROM files
),
joined AS (
    SELECT k.source, k.community_id, coalesce(e.units, 0) AS expected_units,
        coalesce(f.files, 0) AS received_files, coalesce(r.n, 0) AS received_records,
        coalesce(a.n, 0) AS accepted_records,
        CASE WHEN k.source = 'telemetry' THEN coalesce(a.units, 0) END AS reporting_units,
        coalesce(a.hours, 0)::INTEGER AS hours_covered
    FROM keys k
    LEFT JOIN expected e USING (source, community_id)
    LEFT JOIN files f USING (source, community_id)
    LEFT JOIN received r USING (source, community_id)
    LEFT JOIN accepted a USING (source, community_id)
)
SELECT source, community_id, expected_units, received_files, received_records, accepted_records,
    reporting_units, hours_covered,
    CASE
        WHEN accepted_records = 0 AND expected_units = 0 AND received_records = 0 THEN 'not_expected'
        WHEN accepted_records = 0 THEN 'missing'
        WHEN source = 'telemetry' AND hours_covered < @min_hours@ THEN 'partial'
        ELSE 'complete'
    END AS status,
    CASE
        WHEN accepted_records = 0 AND expected_units = 0 AND received_records = 0 THEN NULL
        WHEN accepted_records = 0 AND received_records > 0
            THEN printf('all %d records received were quarantined', received_records)
        WHEN accepted_records = 0 AND received_files > 0
            THEN printf('%d landing files held no records', received_files)
        WHEN accepted_records = 0 THEN printf('nothing delivered (%d expected: %s)', expected_units,
            CASE source WHEN 'telemetry' THEN 'devices' WHEN 'access_events' THEN 'doors'
                WHEN 'vehicle_passages' THEN 'tollgates' WHEN 'parking' THEN 'car parks' ELSE 'community export' END)
        WHEN source = 'telemetry' AND hours_covered < @min_hours@
            THEN printf('readings cover %d of 24 local hours', hours_covered)
    END AS reason,
    now() AS computed_at
FROM joined
