-- What one parsed batch hands on (after bronze_records.sql): views `batch_bronze` (accepted rows, in-file
-- duplicates dropped), `batch_quarantine` (one row per rejected record, no raw value; a rejected line repeating
-- one of an earlier file, flagged dup_cross_file, is counted as a duplicate instead) and `batch_stats` (counts
-- for the ingest audit: records landed, in-file duplicates, face artefacts and names seen and dropped).
CREATE OR REPLACE TEMP VIEW batch_bronze AS
SELECT * EXCLUDE (dup_in_file, dup_cross_file, reason, detail)
FROM records
WHERE reason IS NULL AND NOT dup_in_file;

CREATE OR REPLACE TEMP VIEW batch_quarantine AS
SELECT community_id, event_id, door_id, event_type, reason, detail, event_index, source_file, source_line
FROM records
WHERE reason IS NOT NULL AND NOT dup_cross_file;

CREATE OR REPLACE TEMP VIEW batch_stats AS
SELECT r.landed, r.duplicates_in_file, f.face_keys, f.images, f.image_urls, f.embeddings, f.names
FROM (SELECT count(*) AS landed, count(*) FILTER (WHERE dup_in_file) AS duplicates_in_file FROM records) r,
    (SELECT coalesce(sum(face.face_keys), 0) AS face_keys, coalesce(sum(face.images), 0) AS images,
        coalesce(sum(face.image_urls), 0) AS image_urls, coalesce(sum(face.embeddings), 0) AS embeddings,
        coalesce(sum(names), 0) AS names
     FROM acs_lines) f;
