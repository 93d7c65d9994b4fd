-- audit/ingest_access_events: the one row of what the parser read for the day (input to row accounting).
-- Placeholders: the IngestStats counters (integers) and @source@.
SELECT '@source@' AS source, @files@ AS files, @lines@ AS lines, @landed@ AS landed,
    @bronze_rows@ AS bronze_rows, @quarantined@ AS quarantined, @duplicates_in_file@ AS duplicates_in_file,
    @face_keys@ AS face_keys, @images@ AS face_images, @image_urls@ AS face_urls,
    @embeddings@ AS face_embeddings, @names_dropped@ AS names_dropped, now() AS computed_at
