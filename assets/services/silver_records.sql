-- silver/<source> (fee_bills, payments): one row per record key (@keys@), the copy from the last file and
-- line when a record lands in more than one file. Input: view `bronze`.
SELECT * EXCLUDE (source_file, source_line) FROM bronze
QUALIFY row_number() OVER (PARTITION BY @keys@ ORDER BY source_file DESC, source_line DESC) = 1
