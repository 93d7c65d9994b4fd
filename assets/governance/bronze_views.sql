-- One relation per source with its verdict (`reason`) and keyed tokens joined in place of raw identifiers:
-- r_<source> feeds the bronze and quarantine writes. Inputs: p_* tables, token maps t_id, t_phone, t_room,
-- t_signin (the room is a home address beside the owner: only its keyed token is kept, the voting unit).
CREATE OR REPLACE TEMP VIEW r_votes AS SELECT * FROM p_votes;
CREATE OR REPLACE TEMP VIEW r_ballots AS
SELECT b.* EXCLUDE (id_no, phone, room_id), coalesce(i.token, p.token) AS owner_token, r.token AS room_token
FROM p_ballots b LEFT JOIN t_id i ON i.raw = b.id_no LEFT JOIN t_phone p ON p.raw = b.phone
LEFT JOIN t_room r ON r.raw = b.room_id;
CREATE OR REPLACE TEMP VIEW r_announcements AS SELECT * FROM p_notices;
CREATE OR REPLACE TEMP VIEW r_activities AS SELECT * FROM p_activities;
CREATE OR REPLACE TEMP VIEW r_participation AS
SELECT s.* EXCLUDE (phone), t.token AS person_token FROM p_signin s LEFT JOIN t_signin t ON t.raw = s.phone;
