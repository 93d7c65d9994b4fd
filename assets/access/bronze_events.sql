-- One batch of landing lines (relation `lines_df`: source_file, source_line, community_id, line, file_error)
-- -> tables `acs_lines` (one row per line: face-artefact counts and the line-level verdict) and `acs_events`
-- (one row per event of a good envelope). A file that could not be read is one row (line NULL, source_line 0,
-- file_error the detail): one line-level record, `unreadable_file`. json_transform into a declared struct is the whitelist: face pictures,
-- URLs, base64 images, feature vectors and names are never copied out of the raw line, only counted.
-- Placeholders: @face_counts@ (assets.privacy.biometrics.face_counts_sql over `line`).
CREATE OR REPLACE TEMP TABLE acs_lines AS
SELECT source_file, source_line, community_id, file_error, valid_json,
    @face_counts@ AS face,
    len(regexp_extract_all(line, '"personName"[[:space:]]*:')) AS names,
    CASE WHEN valid_json THEN json_transform(line, '{
        "method": "VARCHAR",
        "params": {"sendTime": "VARCHAR", "ability": "VARCHAR",
                   "events": [{"eventId": "VARCHAR", "eventType": "VARCHAR", "happenTime": "VARCHAR",
                               "srcIndex": "VARCHAR", "srcType": "VARCHAR", "status": "VARCHAR",
                               "data": {"ExtEventPersonNo": "VARCHAR", "ExtEventCardNo": "VARCHAR",
                                        "ExtEventInOut": "VARCHAR", "ExtReceiveTime": "VARCHAR",
                                        "UserType": "VARCHAR", "currentVerifyMode": "VARCHAR"}}]}
    }') END AS s
-- (json_valid first, then json_transform: TRY(json_transform(...)) falls back to row-at-a-time)
FROM (SELECT *, json_valid(line) AS valid_json FROM lines_df);

CREATE OR REPLACE TEMP TABLE acs_lines AS
SELECT * EXCLUDE (s),
    CASE
        WHEN file_error IS NOT NULL THEN 'unreadable_file'
        WHEN NOT valid_json THEN 'malformed_json'
        WHEN s.method IS DISTINCT FROM 'OnEventNotify' OR s.params.events IS NULL THEN 'unknown_envelope'
        WHEN len(s.params.events) = 0 THEN 'no_events'
    END AS line_reason,
    TRY_CAST(replace(s.params.sendTime, ' ', '') AS TIMESTAMPTZ) AS send_ts,
    s.params.events AS events
FROM acs_lines;

CREATE OR REPLACE TEMP TABLE acs_events AS
WITH ev AS (
    SELECT source_file, source_line, community_id, send_ts,
        unnest(events) AS e, generate_subscripts(events, 1) - 1 AS event_index
    FROM acs_lines WHERE line_reason IS NULL
)
SELECT source_file, source_line, community_id, send_ts, CAST(event_index AS INTEGER) AS event_index,
    nullif(trim(e.eventId), '') AS event_id,
    TRY_CAST(e.eventType AS INTEGER) AS event_type,
    e.eventType AS event_type_raw,
    nullif(trim(e.srcIndex), '') AS door_id,
    TRY_CAST(e.status AS INTEGER) AS status,
    e.happenTime AS happen_raw,
    -- vendor docs and payloads put spaces inside the time ("07: 20: 51.531+08: 00", "T 15:53:47"): drop them
    TRY_CAST(replace(e.happenTime, ' ', '') AS TIMESTAMPTZ) AS happen_ts,
    TRY_CAST(replace(e.data.ExtReceiveTime, ' ', '') AS TIMESTAMPTZ) AS received_ts,
    trim(e.data.ExtEventInOut) AS inout_raw,
    trim(e.data.UserType) AS user_raw,
    trim(e.data.currentVerifyMode) AS mode_raw,
    nullif(trim(e.data.ExtEventPersonNo), '') AS person_raw,
    nullif(trim(e.data.ExtEventCardNo), '') AS card_raw
FROM ev;
