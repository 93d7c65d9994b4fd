-- Quarantine rows of source @source@: every rejected line of r_@source@ (exact in-file duplicates are counted,
-- not quarantined) plus the whole files refused before parsing (`unreadable`: undecodable_file, unknown_file),
-- one record each with source_line 0. Never a raw identifier: record_id is a platform key.
SELECT community_id, @record_id@ AS record_id, reason, CASE reason
        WHEN 'unmapped_matter' THEN 'matterCategory missing or not in '
            || 'assets/governance/matter_categories.csv: its Civil Code art. 278 item is unknown '
            || '(never guessed from the subject)'
        WHEN 'vote_quarantined' THEN 'the vote is quarantined in the same day''s votes snapshot'
        ELSE 'rejected at parse: ' || reason END AS detail,
    source_file, source_line
FROM r_@source@ WHERE reason IS NOT NULL AND reason <> 'duplicate_in_file'
UNION ALL
SELECT community_id, NULL, reason, detail, source_file, 0 FROM unreadable WHERE source = '@source@'
