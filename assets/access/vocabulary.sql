-- The vendor vocabularies the parser joins: ISC eventType codes and currentVerifyMode spellings (CSV files
-- next to this one). Placeholder @dir@: this directory.
CREATE OR REPLACE TEMP TABLE event_types AS
SELECT * FROM read_csv('@dir@/event_types.csv', header = true,
    columns = {'event_type': 'INTEGER', 'event_kind': 'VARCHAR', 'result': 'VARCHAR', 'description': 'VARCHAR'});

CREATE OR REPLACE TEMP TABLE verify_modes AS
SELECT * FROM read_csv('@dir@/verify_modes.csv', header = true, columns = {'raw': 'VARCHAR', 'verify_mode': 'VARCHAR'});
