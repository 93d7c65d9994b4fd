-- gold/gate_flow_hourly before suppression: the COMPLETE grid of the day's community gates x 24 local hours
-- x direction x verify mode, zeros included (quality.suppression needs every cell). Door-forced events carry
-- no person and no verify mode, so they are security events, not flow. Inputs: views `silver`, `doors`;
-- placeholders @day@ (YYYY-MM-DD), @tz@, @directions@, @modes@ (SQL lists). Each count comes with its cell key
-- (ck_<count>: the sum of the record keys of the events it counts, kernel.record_keys; the event's record
-- identity is its event_id, the same in every table that counts it).
WITH gates AS (
    SELECT DISTINCT community_id, door_id AS gate_id FROM doors WHERE kind = 'gate'
),
hours AS (
    SELECT TIMESTAMP '@day@' + to_hours(h) AS hour_start FROM range(24) AS t(h)
),
grid AS (
    SELECT g.community_id, g.gate_id, h.hour_start, d.direction, m.verify_mode
    FROM gates g, hours h, (SELECT unnest(@directions@) AS direction) d, (SELECT unnest(@modes@) AS verify_mode) m
),
counts AS (
    SELECT community_id, door_id AS gate_id, date_trunc('hour', timezone('@tz@', event_ts)) AS hour_start,
        direction, verify_mode,
        count(*) FILTER (WHERE event_kind = 'pass') AS passes,
        count(*) FILTER (WHERE event_kind = 'pass' AND user_type = 'visitor') AS visitors,
        count(*) FILTER (WHERE user_type = 'stranger') AS strangers,
        count(*) FILTER (WHERE event_kind = 'denied') AS denied,
        sum(rk) FILTER (WHERE event_kind = 'pass') AS ck_passes,
        sum(rk) FILTER (WHERE event_kind = 'pass' AND user_type = 'visitor') AS ck_visitors,
        sum(rk) FILTER (WHERE user_type = 'stranger') AS ck_strangers,
        sum(rk) FILTER (WHERE event_kind = 'denied') AS ck_denied
    FROM (SELECT *, neuron_record_key(event_id) AS rk FROM silver)
    WHERE door_kind = 'gate' AND event_kind IN ('pass', 'denied')
    GROUP BY ALL
)
SELECT g.community_id, g.gate_id, g.hour_start, g.direction, g.verify_mode,
    coalesce(c.passes, 0) AS passes, coalesce(c.visitors, 0) AS visitors,
    coalesce(c.strangers, 0) AS strangers, coalesce(c.denied, 0) AS denied,
    coalesce(c.ck_passes, 0)::BIGINT AS ck_passes, coalesce(c.ck_visitors, 0)::BIGINT AS ck_visitors,
    coalesce(c.ck_strangers, 0)::BIGINT AS ck_strangers, coalesce(c.ck_denied, 0)::BIGINT AS ck_denied
FROM grid g
LEFT JOIN counts c USING (community_id, gate_id, hour_start, direction, verify_mode)
