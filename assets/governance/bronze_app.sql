-- Community-app notices and activities -> temp tables `p_notices`, `p_activities` with a verdict per line.
-- Free text stays raw here (title_raw, body_raw, location_raw) and is redacted next in Python (parse.py), which
-- quarantines a record whose text cannot be cleaned. Inputs: `lines`, `registry`; @tz@.
CREATE OR REPLACE TEMP TABLE p_notices AS
WITH s AS (
    SELECT *, json_valid(line) AS ok FROM lines WHERE kind = 'notices'
), t AS (
    SELECT source_file, source_line, community_id, dup, ok,
        CASE WHEN ok THEN json_transform(line, '{"noticeId": "VARCHAR", "title": "VARCHAR", "publisherType": "VARCHAR",
            "category": "VARCHAR", "publishTime": "VARCHAR", "expireTime": "VARCHAR", "readCount": "VARCHAR",
            "content": "VARCHAR"}') END AS r
    FROM s
), u AS (
    SELECT source_file, source_line, community_id, dup, ok, nullif(trim(r.noticeId), '') AS notice_id,
        nullif(trim(r.title), '') AS title_raw, lower(trim(r.publisherType)) AS publisher_type,
        coalesce(nullif(trim(r.category), ''), 'other') AS category,
        timezone('@tz@', TRY_STRPTIME(r.publishTime, '%Y-%m-%d %H:%M:%S')) AS publish_ts,
        timezone('@tz@', TRY_STRPTIME(r.expireTime, '%Y-%m-%d %H:%M:%S')) AS expire_ts,
        TRY_CAST(r.readCount AS INTEGER) AS reads, r.content AS body_raw
    FROM t
)
SELECT *, CASE
        WHEN dup THEN 'duplicate_in_file'
        WHEN NOT ok THEN 'malformed_json'
        WHEN community_id NOT IN (SELECT community_id FROM registry) THEN 'unknown_community'
        WHEN notice_id IS NULL THEN 'missing_notice_id'
        WHEN title_raw IS NULL THEN 'missing_title'
        WHEN publisher_type NOT IN ('property', 'owners_committee', 'residents_committee', 'street', 'party_branch')
            OR publisher_type IS NULL THEN 'invalid_publisher_type'
        WHEN publish_ts IS NULL THEN 'invalid_timestamp'
        WHEN reads IS NULL OR reads < 0 THEN 'invalid_reads'
    END AS reason
FROM u;

CREATE OR REPLACE TEMP TABLE p_activities AS
WITH s AS (
    SELECT *, json_valid(line) AS ok FROM lines WHERE kind = 'activities'
), t AS (
    SELECT source_file, source_line, community_id, dup, ok,
        CASE WHEN ok THEN json_transform(line, '{"activityId": "VARCHAR", "name": "VARCHAR", "kind": "VARCHAR",
            "organiser": "VARCHAR", "startTime": "VARCHAR", "endTime": "VARCHAR", "location": "VARCHAR",
            "volunteerHours": "VARCHAR"}') END AS r
    FROM s
), u AS (
    SELECT source_file, source_line, community_id, dup, ok, nullif(trim(r.activityId), '') AS activity_id,
        lower(trim(r.kind)) AS kind, nullif(trim(r.name), '') AS title_raw, lower(trim(r.organiser)) AS organiser,
        timezone('@tz@', TRY_STRPTIME(r.startTime, '%Y-%m-%d %H:%M:%S')) AS start_ts,
        timezone('@tz@', TRY_STRPTIME(r.endTime, '%Y-%m-%d %H:%M:%S')) AS end_ts,
        r.location AS location_raw, TRY_CAST(r.volunteerHours AS DECIMAL(5,2)) AS volunteer_hours,
        r.volunteerHours IS NOT NULL AND TRY_CAST(r.volunteerHours AS DECIMAL(5,2)) IS NULL AS bad_hours
    FROM t
)
SELECT *, CASE
        WHEN dup THEN 'duplicate_in_file'
        WHEN NOT ok THEN 'malformed_json'
        WHEN community_id NOT IN (SELECT community_id FROM registry) THEN 'unknown_community'
        WHEN activity_id IS NULL OR title_raw IS NULL THEN 'missing_field'
        WHEN kind NOT IN ('volunteer', 'party_building', 'culture', 'sport', 'service') OR kind IS NULL THEN 'invalid_kind'
        WHEN organiser NOT IN ('property', 'owners_committee', 'residents_committee', 'street', 'party_branch')
            OR organiser IS NULL THEN 'invalid_organiser'
        WHEN start_ts IS NULL OR end_ts IS NULL OR end_ts < start_ts THEN 'invalid_period'
        WHEN bad_hours OR volunteer_hours < 0 OR volunteer_hours > 24 THEN 'invalid_hours'
    END AS reason
FROM u;
