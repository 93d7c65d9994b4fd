-- Counted ballots of the day: one per room per vote over the whole vote. A room already counted on an
-- earlier day (`prior`) is a duplicate; within the day the earliest e-ballot wins and a paper ballot only
-- counts where the room has no e-ballot (paper is entered at the count on the end day, after every e-ballot).
-- Inputs: `bronze` (the day's bronze ballots), `prior` (silver ballots of earlier days of the same votes).
SELECT * EXCLUDE (rn) FROM (
    SELECT b.* EXCLUDE (source_file, source_line),
        row_number() OVER (PARTITION BY b.vote_id, b.room_token
                           ORDER BY b.channel = 'paper', b.cast_ts, b.ballot_id) AS rn
    FROM bronze b
    WHERE NOT EXISTS (SELECT 1 FROM prior p WHERE p.vote_id = b.vote_id AND p.room_token = b.room_token)
)
WHERE rn = 1
