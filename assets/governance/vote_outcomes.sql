-- Final result of every vote that closes on @day@ (local). Inputs: `votes` (silver votes of the day),
-- `ballots` (silver ballots from the earliest start of those votes to the day); macros from rules.sql (the
-- matter class and the majority it needs are functions of the art. 278 item, there only).
WITH closing AS (
    SELECT * FROM votes WHERE CAST(timezone('@tz@', end_ts) AS DATE) = DATE '@day@'
), agg AS (
    SELECT vote_id, count(*) AS po, sum(CAST(round(area_m2 * 100) AS BIGINT)) AS pc,
        count(*) FILTER (WHERE choice = 'agree') AS ao,
        coalesce(sum(CAST(round(area_m2 * 100) AS BIGINT)) FILTER (WHERE choice = 'agree'), 0) AS ac
    FROM ballots WHERE vote_id IN (SELECT vote_id FROM closing) GROUP BY 1
), j AS (
    SELECT c.*, coalesce(a.po, 0) AS po, coalesce(a.pc, 0) AS pc, coalesce(a.ao, 0) AS ao, coalesce(a.ac, 0) AS ac,
        CAST(round(c.eligible_area_m2 * 100) AS BIGINT) AS ec
    FROM closing c LEFT JOIN agg a USING (vote_id)
)
SELECT community_id, vote_id, art278_item, gov_matter_class(art278_item) AS matter_class, start_ts, end_ts,
    eligible_owners, eligible_area_m2,
    po AS participating_owners, CAST(pc AS DECIMAL(14,0)) / 100 AS participating_area_m2,
    ao AS agree_owners, CAST(ac AS DECIMAL(14,0)) / 100 AS agree_area_m2,
    gov_quorum_met(eligible_owners, ec, po, pc) AS quorum_met,
    gov_passed(art278_item, eligible_owners, ec, po, pc, ao, ac) AS passed
FROM j
