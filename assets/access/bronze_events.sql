-- One batch of landing lines (relation `lines_df`: source_file, source_line, community_id, line, file_error)
-- -> tables `acs_lines` (one row per line: face-artefact counts and the line-level verdict) and `acs_events`
-- (one row per event of a good envelope). A file that could not be read is one row (line NULL, source_line 0,
-- file_error the detail): one line-level record, `unreadable_file`. json_transform into a declared struct is the
-- whitelist: face pictures, URLs, base64 images, feature vectors, ID-card blocks and names are never copied out of
-- the raw line, only counted. The vendor is recognised by the envelope's method (vendors.csv); times go through the
-- one vendor-time parser (kernel/times.sql macros). Placeholders: @face_counts@
-- (assets.privacy.biometrics.face_counts_sql over `line`), @tz@ (local time zone of zone-less vendor times).
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
SELECT l.* EXCLUDE (s), v.vendor,
    CASE
        WHEN file_error IS NOT NULL THEN 'unreadable_file'
        WHEN NOT valid_json THEN 'malformed_json'
        WHEN v.vendor IS NULL OR s.params.events IS NULL THEN 'unknown_envelope'
        WHEN len(s.params.events) = 0 THEN 'no_events'
    END AS line_reason,
    neuron_time(s.params.sendTime, '@tz@') AS send_ts,
    nullif(trim(s.params.ability), '') AS ability,
    s.params.events AS events
FROM acs_lines l
LEFT JOIN vendors v ON v.method = l.s.method;

CREATE OR REPLACE TEMP TABLE acs_events AS
WITH ev AS (
    SELECT source_file, source_line, community_id, send_ts, vendor, ability,
        unnest(events) AS e, generate_subscripts(events, 1) - 1 AS event_index
    FROM acs_lines WHERE line_reason IS NULL
)
SELECT source_file, source_line, community_id, send_ts, ev.vendor, ability,
    -- an envelope without ability is read as a door envelope (the integration subscribed to door events only)
    ability IS NULL OR list_contains(v.door_abilities, ability) AS door_ability,
    CAST(event_index AS INTEGER) AS event_index,
    nullif(trim(e.eventId), '') AS event_id,
    TRY_CAST(e.eventType AS INTEGER) AS event_type,
    nullif(trim(e.srcIndex), '') AS door_id,
    nullif(trim(e.srcType), '') AS src_type,
    TRY_CAST(e.status AS INTEGER) AS status,
    e.happenTime AS happen_raw,
    -- ISC sends epoch microseconds as a string; other variants ISO: the one parser tells them apart
    neuron_time(e.data.ExtReceiveTime, '@tz@') AS received_ts,
    v.max_clock_skew,
    trim(e.data.ExtEventInOut) AS inout_raw,
    nullif(trim(e.data.UserType), '') AS user_raw,
    nullif(trim(e.data.currentVerifyMode), '') AS mode_raw,
    -- the vendor's "no person" value ("0" in ISC) is no person, never one shared pseudo-person
    CASE WHEN list_contains(v.no_person_values, trim(e.data.ExtEventPersonNo)) THEN NULL
         ELSE nullif(trim(e.data.ExtEventPersonNo), '') END AS person_raw,
    CASE WHEN list_contains(v.no_person_values, trim(e.data.ExtEventCardNo)) THEN NULL
         ELSE nullif(trim(e.data.ExtEventCardNo), '') END AS card_raw
FROM ev
LEFT JOIN vendors v ON v.vendor = ev.vendor;
