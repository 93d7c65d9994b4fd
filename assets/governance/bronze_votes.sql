-- Votes snapshot lines (`lines` filtered to evote_votes) -> temp table `p_votes` with a verdict per line.
-- Inputs: `lines` (source_file, source_line, community_id, line, dup), `registry` (community_id),
-- `matter_categories` (vocabulary.sql). The subject stays raw (title_raw) until parse.py redacts it. The
-- Civil Code art. 278 item comes from the platform's matter category (`matterCategory`) only: a vote whose
-- category is missing or not in the vocabulary is quarantined (unmapped_matter), never guessed from its
-- subject. The platform's own two-way label (`matterType`: ordinary | major) is not read: it follows the 2007
-- Property Law, under which using the maintenance fund was a major matter.
CREATE OR REPLACE TEMP TABLE p_votes AS
WITH j AS (
    SELECT *, json_valid(line) AS ok FROM lines WHERE kind = 'votes'
), s AS (
    SELECT *, CASE WHEN ok THEN json_transform(line, '{"voteId": "VARCHAR", "subject": "VARCHAR",
        "matterCategory": "VARCHAR", "beginTime": "VARCHAR", "endTime": "VARCHAR", "ownerTotal": "VARCHAR",
        "areaTotal": "VARCHAR"}') END AS r FROM j
), t AS (
    SELECT source_file, source_line, community_id, dup, ok, nullif(trim(r.voteId), '') AS vote_id,
        r.subject AS title_raw, nullif(trim(r.matterCategory), '') AS matter_category,
        timezone('@tz@', TRY_STRPTIME(r.beginTime, '%Y-%m-%d %H:%M:%S')) AS start_ts,
        timezone('@tz@', TRY_STRPTIME(r.endTime, '%Y-%m-%d %H:%M:%S')) AS end_ts,
        TRY_CAST(r.ownerTotal AS INTEGER) AS eligible_owners,
        TRY_CAST(regexp_replace(r.areaTotal, '\s*(㎡|m2|平方米)$', '') AS DECIMAL(12,2)) AS eligible_area_m2
    FROM s
)
SELECT t.*, m.art278_item, CASE
        WHEN dup THEN 'duplicate_in_file'
        WHEN NOT ok THEN 'malformed_json'
        WHEN community_id NOT IN (SELECT community_id FROM registry) THEN 'unknown_community'
        WHEN vote_id IS NULL OR title_raw IS NULL OR eligible_owners IS NULL OR eligible_area_m2 IS NULL THEN 'missing_field'
        WHEN m.art278_item IS NULL THEN 'unmapped_matter'
        WHEN start_ts IS NULL OR end_ts IS NULL OR end_ts <= start_ts THEN 'invalid_period'
        WHEN eligible_owners <= 0 OR eligible_area_m2 <= 0 THEN 'invalid_eligible'
    END AS reason
FROM t LEFT JOIN matter_categories m USING (matter_category);
