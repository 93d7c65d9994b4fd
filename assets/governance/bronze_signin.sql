-- Sign-in sheet lines -> temp table `p_signin` (raw phone kept in memory only for tokenising). Run after the
-- activities' text is cleaned, so a sign-in for an activity quarantined there is an unknown activity.
-- Inputs: `lines`, `registry`, `p_activities`; @tz@.
CREATE OR REPLACE TEMP TABLE p_signin AS
WITH p AS (
    SELECT *, string_split(line, ',') AS f FROM lines WHERE kind = 'signin'
), u AS (
    -- 活动编号,姓名,手机号,报名时间,签到时间,志愿时长(小时) (the name f[2] is never read)
    SELECT source_file, source_line, community_id, dup, len(f) AS nfields,
        nullif(trim(f[1]), '') AS activity_id, nullif(trim(f[3]), '') AS phone,
        timezone('@tz@', TRY_STRPTIME(nullif(trim(f[4]), ''), '%Y-%m-%d %H:%M:%S')) AS signup_ts,
        timezone('@tz@', TRY_STRPTIME(nullif(trim(f[5]), ''), '%Y-%m-%d %H:%M:%S')) AS checkin_ts,
        nullif(trim(f[5]), '') IS NOT NULL AS has_checkin,
        TRY_CAST(nullif(trim(f[6]), '') AS DECIMAL(5,2)) AS volunteer_hours,
        nullif(trim(f[6]), '') IS NOT NULL AND TRY_CAST(nullif(trim(f[6]), '') AS DECIMAL(5,2)) IS NULL AS bad_hours
    FROM p
)
SELECT u.*, CASE
        WHEN dup THEN 'duplicate_in_file'
        WHEN nfields <> 6 THEN 'malformed_row'
        WHEN u.community_id NOT IN (SELECT community_id FROM registry) THEN 'unknown_community'
        WHEN u.activity_id IS NULL THEN 'missing_activity'
        WHEN a.a_id IS NULL THEN 'unknown_activity'
        WHEN phone IS NULL THEN 'missing_person'
        WHEN has_checkin AND checkin_ts IS NULL THEN 'invalid_timestamp'
        WHEN bad_hours OR volunteer_hours < 0 OR volunteer_hours > 24 THEN 'invalid_hours'
        WHEN volunteer_hours > 0 AND checkin_ts IS NULL THEN 'hours_without_checkin'
    END AS reason
FROM u LEFT JOIN (SELECT DISTINCT activity_id AS a_id, community_id AS a_community FROM p_activities
                  WHERE reason IS NULL) a
    ON a.a_id = u.activity_id AND a.a_community = u.community_id;
