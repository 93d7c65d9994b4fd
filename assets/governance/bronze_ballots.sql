-- E-ballot NDJSON and paper-ballot CSV lines -> temp table `p_ballots` (raw id_no / phone kept only in memory
-- for tokenising; never written). Inputs: `lines`, `registry`, `p_votes`; @tz@. A ballot for a vote that is
-- in the day's snapshot but quarantined there (e.g. unmapped_matter) is quarantined as vote_quarantined, not
-- as an unknown vote: once the vote is fixed and the days re-run, those ballots count.
CREATE OR REPLACE TEMP TABLE p_ballots AS
WITH e AS (
    SELECT *, json_valid(line) AS ok FROM lines WHERE kind = 'ebal'
), es AS (
    SELECT *, CASE WHEN ok THEN json_transform(line, '{"ballotId": "VARCHAR", "voteId": "VARCHAR",
        "roomNo": "VARCHAR", "idNo": "VARCHAR", "mobile": "VARCHAR", "buildArea": "VARCHAR", "option": "VARCHAR",
        "authType": "VARCHAR", "channel": "VARCHAR", "castTime": "VARCHAR", "faceCheck": {"snapUrl": "VARCHAR"}}') END AS r
    FROM e
), et AS (
    SELECT source_file, source_line, community_id, dup, ok, 8 AS nfields,
        nullif(trim(r.ballotId), '') AS ballot_id, nullif(trim(r.voteId), '') AS vote_id,
        nullif(trim(r.roomNo), '') AS room_id, nullif(trim(r.idNo), '') AS id_no, nullif(trim(r.mobile), '') AS phone,
        r.buildArea AS area_raw, lower(trim(r.option)) AS choice_raw, lower(trim(r.authType)) AS auth_method,
        lower(trim(r.channel)) AS channel, r.castTime AS cast_raw, r.faceCheck.snapUrl IS NOT NULL AS had_face
    FROM es
), p AS (
    SELECT *, string_split(line, ',') AS f FROM lines WHERE kind = 'paper'
), pt AS (
    -- 投票编号,选票编号,房号,业主姓名,证件号码,建筑面积(㎡),表决意见,录入时间 (name f[4] is never read)
    SELECT source_file, source_line, community_id, dup, true AS ok, len(f) AS nfields,
        nullif(trim(f[2]), '') AS ballot_id, nullif(trim(f[1]), '') AS vote_id, nullif(trim(f[3]), '') AS room_id,
        nullif(trim(f[5]), '') AS id_no, NULL::VARCHAR AS phone, f[6] AS area_raw,
        CASE trim(f[7]) WHEN '同意' THEN 'agree' WHEN '反对' THEN 'oppose' WHEN '弃权' THEN 'abstain' ELSE trim(f[7]) END
            AS choice_raw, 'paper' AS auth_method, 'paper' AS channel, f[8] AS cast_raw, false AS had_face
    FROM p
), u AS (
    SELECT * EXCLUDE (area_raw, cast_raw, choice_raw),
        TRY_CAST(regexp_replace(area_raw, '\s*(㎡|m2|平方米)$', '') AS DECIMAL(10,2)) AS area_m2,
        choice_raw AS choice,
        timezone('@tz@', TRY_STRPTIME(cast_raw, '%Y-%m-%d %H:%M:%S')) AS cast_ts
    FROM (SELECT * FROM et UNION ALL BY NAME SELECT * FROM pt)
)
SELECT u.*, v.start_ts AS vote_start_ts, CASE
        WHEN dup THEN 'duplicate_in_file'
        WHEN NOT ok THEN 'malformed_json'
        WHEN nfields <> 8 THEN 'malformed_row'
        WHEN u.community_id NOT IN (SELECT community_id FROM registry) THEN 'unknown_community'
        WHEN ballot_id IS NULL THEN 'missing_ballot_id'
        WHEN v.v_id IS NULL AND EXISTS (
                SELECT 1 FROM p_votes q WHERE q.vote_id = u.vote_id AND q.community_id = u.community_id
                    AND q.reason <> 'duplicate_in_file') THEN 'vote_quarantined'
        WHEN v.v_id IS NULL THEN 'unknown_vote'
        WHEN room_id IS NULL THEN 'missing_room'
        WHEN id_no IS NULL AND phone IS NULL THEN 'missing_owner'
        WHEN area_m2 IS NULL OR area_m2 <= 0 THEN 'invalid_area'
        WHEN choice NOT IN ('agree', 'oppose', 'abstain') OR choice IS NULL THEN 'invalid_choice'
        WHEN auth_method NOT IN ('id_property_cert', 'face', 'paper') OR channel NOT IN ('app', 'wechat', 'paper')
            THEN 'invalid_channel'
        WHEN cast_ts IS NULL THEN 'invalid_timestamp'
        WHEN cast_ts < v.start_ts OR cast_ts > v.end_ts THEN 'outside_vote_period'
    END AS reason
FROM u LEFT JOIN (SELECT DISTINCT vote_id AS v_id, community_id AS v_community, start_ts, end_ts FROM p_votes
                  WHERE reason IS NULL) v
    ON v.v_id = u.vote_id AND v.v_community = u.community_id;
