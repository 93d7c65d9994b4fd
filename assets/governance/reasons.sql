-- Records per rejection reason of source @source@ (line verdicts and whole refused files), for metadata.
SELECT reason, count(*) FROM r_@source@ WHERE reason IS NOT NULL AND reason <> 'duplicate_in_file' GROUP BY 1
UNION ALL
SELECT reason, count(*) FROM unreadable WHERE source = '@source@' GROUP BY 1
