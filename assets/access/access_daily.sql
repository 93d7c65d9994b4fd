-- gold/access_daily before suppression: one row per community of the door registry (zeros included).
-- Inputs: views `silver`, `doors`.
WITH comms AS (
    SELECT DISTINCT community_id FROM doors
),
c AS (
    SELECT community_id,
        count(*) FILTER (WHERE event_kind = 'pass') AS passes,
        count(*) FILTER (WHERE event_kind = 'pass' AND user_type = 'resident') AS residents,
        count(*) FILTER (WHERE event_kind = 'pass' AND user_type = 'visitor') AS visitors,
        count(*) FILTER (WHERE user_type = 'stranger') AS strangers,
        count(*) FILTER (WHERE event_kind = 'denied') AS denied,
        count(DISTINCT person_token) FILTER (WHERE event_kind = 'pass') AS persons
    FROM silver
    GROUP BY community_id
)
SELECT comms.community_id, coalesce(passes, 0) AS passes, coalesce(residents, 0) AS residents,
    coalesce(visitors, 0) AS visitors, coalesce(strangers, 0) AS strangers, coalesce(denied, 0) AS denied,
    coalesce(persons, 0) AS persons
FROM comms LEFT JOIN c USING (community_id)
