-- Votes snapshot lines (`lines` filtered to evote_votes) -> temp table `p_votes` with a verdict per line.
-- Inputs: `lines` (source_file, source_line, community_id, line, dup), `registry` (community_id). The subject
-- stays raw (title_raw) until parse.py redacts it.
CREATE OR REPLACE TEMP TABLE p_votes AS
WITH j AS (
    SELECT *, json_valid(line) AS ok FROM lines WHERE kind = 'votes'
), s AS (
    SELECT *, CASE WHEN ok THEN json_transform(line, '{"voteId": "VARCHAR", "subject": "VARCHAR",
        "matterType": "VARCHAR", "beginTime": "VARCHAR", "endTime": "VARCHAR", "ownerTotal": "VARCHAR",
        "areaTotal": "VARCHAR"}') END AS r FROM j
), t AS (
    SELECT source_file, source_line, community_id, dup, ok, nullif(trim(r.voteId), '') AS vote_id,
        r.subject AS title_raw, lower(trim(r.matterType)) AS matter_class,
        timezone('@tz@', TRY_STRPTIME(r.beginTime, '%Y-%m-%d %H:%M:%S')) AS start_ts,
        timezone('@tz@', TRY_STRPTIME(r.endTime, '%Y-%m-%d %H:%M:%S')) AS end_ts,
        TRY_CAST(r.ownerTotal AS INTEGER) AS eligible_owners,
        TRY_CAST(regexp_replace(r.areaTotal, '\s*(㎡|m2|平方米)$', '') AS DECIMAL(12,2)) AS eligible_area_m2
    FROM s
)
SELECT t.*, CASE
        WHEN dup THEN 'duplicate_in_file'
        WHEN NOT ok THEN 'malformed_json'
        WHEN community_id NOT IN (SELECT community_id FROM registry) THEN 'unknown_community'
        WHEN vote_id IS NULL OR title_raw IS NULL OR eligible_owners IS NULL OR eligible_area_m2 IS NULL THEN 'missing_field'
        WHEN matter_class NOT IN ('ordinary', 'major') THEN 'invalid_matter_class'
        WHEN start_ts IS NULL OR end_ts IS NULL OR end_ts <= start_ts THEN 'invalid_period'
        WHEN eligible_owners <= 0 OR eligible_area_m2 <= 0 THEN 'invalid_eligible'
    END AS reason
FROM t;
