-- quarantine/<source>: the typed rows with a reason (view `typed`) plus the files quarantined whole (view
-- `whole_files`: source_file, reason, detail), one row each at source_line 0. Placeholder @id_col@.
SELECT @id_col@, community_id, reason, detail, source_file, source_line FROM typed
WHERE reason IS NOT NULL AND NOT in_file_dup AND NOT cross_dup
UNION ALL
SELECT NULL, svc_community(source_file), reason, detail, source_file, 0 FROM whole_files
