-- What one parsed batch hands on (after bronze_records.sql): views `batch_bronze` (accepted door rows, in-file
-- duplicates dropped), `batch_quarantine` (one row per rejected record: reason, detail and location only, never a
-- raw identifier; a rejected line repeating one of an earlier file, flagged dup_cross_file, is counted as a
-- duplicate instead), `batch_other` (events of other abilities and classes, counted per community, ability,
-- class, eventType, source type, local hour and time quality: no identifier at all), `batch_gaps` (door-ability
-- events whose eventType is not in event_types.csv, per community, ability and eventType) and `batch_stats`
-- (counts for the ingest audit). An other-ability event has no silver step to deduplicate it: a copy of one already
-- counted today (same community, eventId and status, in an earlier file or batch: table `seen_routed`, filled
-- by parse.ingest_day after each batch) is a cross-file duplicate, as a re-delivered file's door events are.
-- Placeholder @tz@.
CREATE TEMP TABLE IF NOT EXISTS seen_routed (community_id VARCHAR, event_id VARCHAR, status INTEGER);

CREATE OR REPLACE TEMP TABLE batch_routed AS
SELECT r.*, r.event_id IS NOT NULL AND (s.event_id IS NOT NULL OR row_number() OVER (
        PARTITION BY r.community_id, r.event_id, r.status ORDER BY r.source_file, r.source_line, r.event_index) > 1)
    AS dup_cross
FROM records r
LEFT JOIN seen_routed s ON s.community_id = r.community_id AND s.event_id = r.event_id
    AND s.status IS NOT DISTINCT FROM r.status
WHERE r.routed AND r.reason IS NULL AND NOT r.dup_in_file;
CREATE OR REPLACE TEMP VIEW batch_bronze AS
SELECT * EXCLUDE (dup_in_file, dup_cross_file, reason, detail, routed, vendor, ability, event_class, src_type)
FROM records
WHERE reason IS NULL AND NOT routed AND NOT dup_in_file;

CREATE OR REPLACE TEMP VIEW batch_quarantine AS
SELECT community_id, event_id, door_id, event_type, reason, detail, event_index, source_file, source_line
FROM records
WHERE reason IS NOT NULL AND NOT dup_cross_file;

CREATE OR REPLACE TEMP VIEW batch_other AS
SELECT community_id, vendor, coalesce(ability, '') AS ability, event_class, event_type,
    coalesce(src_type, '') AS src_type, date_trunc('hour', timezone('@tz@', event_ts)) AS hour_start,
    time_quality, count(*) AS events
FROM batch_routed
WHERE NOT dup_cross
GROUP BY ALL;

CREATE OR REPLACE TEMP VIEW batch_gaps AS
SELECT community_id, vendor, coalesce(ability, '') AS ability, event_type, count(*) AS events
FROM records
WHERE reason = 'unknown_event_type' AND NOT dup_cross_file
GROUP BY ALL;

CREATE OR REPLACE TEMP VIEW batch_stats AS
SELECT r.landed, r.duplicates_in_file, o.routed, o.routed_dup_cross, f.face_keys, f.images, f.image_urls, f.embeddings, f.names
FROM (SELECT count(*) AS landed, count(*) FILTER (WHERE dup_in_file) AS duplicates_in_file,
        FROM records) r,
    (SELECT count(*) FILTER (WHERE NOT dup_cross) AS routed, count(*) FILTER (WHERE dup_cross) AS routed_dup_cross
     FROM batch_routed) o,
    (SELECT coalesce(sum(face.face_keys), 0) AS face_keys, coalesce(sum(face.images), 0) AS images,
        coalesce(sum(face.image_urls), 0) AS image_urls, coalesce(sum(face.embeddings), 0) AS embeddings,
        coalesce(sum(names), 0) AS names
     FROM acs_lines) f;
