-- gold/access_daily before suppression: one row per community of the door registry (zeros included).
-- Inputs: views `silver`, `doors`; @day@. Each count comes with its cell key ck_<count> (kernel.record_keys):
-- events are identified by event_id, distinct people by person-day (person_token and the day), the same
-- identities every other table uses, so one record set always gets one perturbation.
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
        count(DISTINCT person_token) FILTER (WHERE event_kind = 'pass') AS persons,
        sum(rk) FILTER (WHERE event_kind = 'pass') AS ck_passes,
        sum(rk) FILTER (WHERE event_kind = 'pass' AND user_type = 'resident') AS ck_residents,
        sum(rk) FILTER (WHERE event_kind = 'pass' AND user_type = 'visitor') AS ck_visitors,
        sum(rk) FILTER (WHERE user_type = 'stranger') AS ck_strangers,
        sum(rk) FILTER (WHERE event_kind = 'denied') AS ck_denied,
        sum(DISTINCT neuron_record_key(person_token || '@@day@')) FILTER (WHERE event_kind = 'pass') AS ck_persons
    FROM (SELECT *, neuron_record_key(event_id) AS rk FROM silver)
    GROUP BY community_id
)
SELECT comms.community_id, coalesce(passes, 0) AS passes, coalesce(residents, 0) AS residents,
    coalesce(visitors, 0) AS visitors, coalesce(strangers, 0) AS strangers, coalesce(denied, 0) AS denied,
    coalesce(persons, 0) AS persons,
    coalesce(ck_passes, 0)::BIGINT AS ck_passes, coalesce(ck_residents, 0)::BIGINT AS ck_residents,
    coalesce(ck_visitors, 0)::BIGINT AS ck_visitors, coalesce(ck_strangers, 0)::BIGINT AS ck_strangers,
    coalesce(ck_denied, 0)::BIGINT AS ck_denied, coalesce(ck_persons, 0)::BIGINT AS ck_persons
FROM comms LEFT JOIN c USING (community_id)
