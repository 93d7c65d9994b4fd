-- Month to date for the month of @day@ (first day @month@): a COMPLETE grid over the registry's communities
-- (zeros included). Closed and passed votes are also counted per matter class of vote_outcomes (ordinary:
-- Civil Code art. 278 items 1-5 and 9; three_quarter: items 6-8); they count votes, not people. Inputs (each
-- the union of the month's partitions from the 1st to @day@): `votes_mtd`, `outcomes_mtd`, `activities_mtd`,
-- `participation_mtd`, `notices_mtd`; `registry` for the grid.
WITH comm AS (
    SELECT DISTINCT community_id FROM registry
), held AS (
    SELECT community_id, count(DISTINCT vote_id) AS n FROM votes_mtd GROUP BY 1
), oc AS (
    SELECT community_id, count(*) AS closed, count(*) FILTER (WHERE quorum_met) AS quorum,
        count(*) FILTER (WHERE passed) AS passed,
        count(*) FILTER (WHERE matter_class = 'ordinary') AS closed_ord,
        count(*) FILTER (WHERE matter_class = 'ordinary' AND passed) AS passed_ord,
        count(*) FILTER (WHERE matter_class = 'three_quarter') AS closed_tq,
        count(*) FILTER (WHERE matter_class = 'three_quarter' AND passed) AS passed_tq,
        sum(participating_owners) AS po, sum(eligible_owners) AS eo,
        sum(participating_area_m2) AS pa, sum(eligible_area_m2) AS ea
    FROM outcomes_mtd GROUP BY 1
), act AS (
    SELECT community_id, count(DISTINCT activity_id) AS n FROM activities_mtd GROUP BY 1
), part AS (
    SELECT community_id, count(DISTINCT person_token) AS n, sum(volunteer_hours) AS h
    FROM participation_mtd WHERE checkin_ts IS NOT NULL GROUP BY 1
), ann AS (
    SELECT community_id, count(DISTINCT notice_id) AS n FROM notices_mtd GROUP BY 1
)
SELECT c.community_id, DATE '@month@' AS month,
    CAST(coalesce(held.n, 0) AS BIGINT) AS votes_held,
    CAST(coalesce(oc.closed, 0) AS BIGINT) AS votes_closed,
    CAST(coalesce(oc.quorum, 0) AS BIGINT) AS votes_quorum_met,
    CAST(coalesce(oc.passed, 0) AS BIGINT) AS votes_passed,
    CAST(coalesce(oc.closed_ord, 0) AS BIGINT) AS votes_closed_ordinary,
    CAST(coalesce(oc.passed_ord, 0) AS BIGINT) AS votes_passed_ordinary,
    CAST(coalesce(oc.closed_tq, 0) AS BIGINT) AS votes_closed_three_quarter,
    CAST(coalesce(oc.passed_tq, 0) AS BIGINT) AS votes_passed_three_quarter,
    round(100.0 * oc.po / nullif(oc.eo, 0), 2) AS turnout_headcount_pct,
    round(100.0 * CAST(oc.pa AS DOUBLE) / nullif(CAST(oc.ea AS DOUBLE), 0), 2) AS turnout_area_pct,
    CAST(coalesce(oc.po, 0) AS BIGINT) AS ballots_counted,
    CAST(coalesce(act.n, 0) AS BIGINT) AS activities,
    CAST(coalesce(part.n, 0) AS BIGINT) AS participants,
    CAST(coalesce(part.h, 0) AS DOUBLE) AS volunteer_hours,
    CAST(coalesce(ann.n, 0) AS BIGINT) AS announcements
FROM comm c
LEFT JOIN held USING (community_id) LEFT JOIN oc USING (community_id) LEFT JOIN act USING (community_id)
LEFT JOIN part USING (community_id) LEFT JOIN ann USING (community_id)
