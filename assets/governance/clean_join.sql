-- Put the cleaned text of `_cleaned` (joined on lineage) into @table@ in place of the raw columns (@raw@); an
-- accepted record whose text still holds an identifier or an unredacted name label is quarantined as
-- pii_unredactable. @count@ names the column that receives the number of redactions.
CREATE OR REPLACE TEMP TABLE @table@ AS
SELECT t.* EXCLUDE (@raw@, reason), @clean@, CAST(coalesce(c.redactions, 0) AS INTEGER) AS @count@,
    CASE WHEN t.reason IS NULL AND c.pii_left THEN 'pii_unredactable' ELSE t.reason END AS reason
FROM @table@ t LEFT JOIN _cleaned c USING (source_file, source_line)
