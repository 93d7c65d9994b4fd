-- Rejected pushes: park and serial only when they have the id format (a UUID, a digit string), the reason and
-- its detail (field names, never values), lineage. A free-text id could carry a plate, so it is dropped.
SELECT community_id,
    CASE WHEN regexp_full_match(park_raw, '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}')
         THEN park_raw END AS park_id,
    CASE WHEN regexp_full_match(coalesce(serial_raw, push_id), '[0-9]{6,32}') THEN coalesce(serial_raw, push_id) END
        AS parking_serial,
    CASE WHEN event IN ('enter', 'leave') THEN event END AS event, vendor, reason, detail, source_file, source_line
FROM pk WHERE reason IS NOT NULL AND NOT dup_in_file AND NOT dup_cross_file
ORDER BY source_file, source_line
