-- The declarative vendor mapping the parser joins (CSV files next to this one; docs/vendors/access.md says how an
-- operator extends them): vendors (envelope method -> vendor, its door abilities, its "no person" values, its
-- clock-skew tolerance), eventType codes (class, kind, result, implied verify mode; a row with an empty
-- event_type is the default class of its ability), explicit currentVerifyMode spellings and UserType codes.
-- Lists inside a cell are separated by '|'. Placeholder @dir@: this directory.
CREATE OR REPLACE TEMP TABLE vendors AS
SELECT vendor, method, string_split(door_abilities, '|') AS door_abilities,
    string_split(coalesce(no_person_values, ''), '|') AS no_person_values,
    CAST(max_clock_skew AS INTERVAL) AS max_clock_skew
FROM read_csv('@dir@/vendors.csv', header = true, all_varchar = true);

CREATE OR REPLACE TEMP TABLE event_types AS
SELECT * FROM read_csv('@dir@/event_types.csv', header = true,
    columns = {'vendor': 'VARCHAR', 'ability': 'VARCHAR', 'event_type': 'INTEGER', 'event_class': 'VARCHAR',
               'event_kind': 'VARCHAR', 'result': 'VARCHAR', 'verify_mode': 'VARCHAR', 'description': 'VARCHAR'});

CREATE OR REPLACE TEMP TABLE verify_modes AS
SELECT * FROM read_csv('@dir@/verify_modes.csv', header = true,
    columns = {'vendor': 'VARCHAR', 'raw': 'VARCHAR', 'verify_mode': 'VARCHAR'});

CREATE OR REPLACE TEMP TABLE user_types AS
SELECT * FROM read_csv('@dir@/user_types.csv', header = true,
    columns = {'vendor': 'VARCHAR', 'raw': 'VARCHAR', 'user_type': 'VARCHAR', 'description': 'VARCHAR'});
