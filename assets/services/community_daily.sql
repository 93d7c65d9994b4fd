-- gold/community_daily: one row per community-day. Inputs: views `registry`, `orders`, `bills`, `payments`,
-- `health` (gold/device_health_daily), `alarms` (silver/device_alarms), `env` (gold/environment_hourly);
-- `stats` = work_order_stats.sql by community. Elderly care = SOS and fall episodes, plus wearables with an
-- offline episode of at least 4 hours (no reading for >= 4 h, as silver/device_alarms records it).
WITH comm AS (
    SELECT community_id FROM registry UNION SELECT community_id FROM orders UNION SELECT community_id FROM bills
),
wo AS (@stats@),
fleet AS (SELECT community_id, sum(devices) AS devices, sum(reporting) AS reporting FROM health GROUP BY 1),
al AS (
    SELECT community_id, @alarm_columns@,
        count(*) FILTER (WHERE alarm_type IN ('sos', 'fall')) AS sos_fall,
        count(DISTINCT device_id) FILTER (WHERE alarm_type = 'offline' AND device_type = 'wearable' AND value >= 4)
            AS inactive,
        -- cell key of elderly_care_events: alarm episodes by alarm_id, inactive wearers by wearer-day
        coalesce(sum(neuron_record_key(alarm_id)) FILTER (WHERE alarm_type IN ('sos', 'fall')), 0)
        + coalesce(sum(DISTINCT neuron_record_key(device_id || '@@day@')) FILTER (WHERE alarm_type = 'offline'
            AND device_type = 'wearable' AND value >= 4), 0) AS ck_care
    FROM alarms GROUP BY 1
),
due AS (SELECT community_id, sum(due_fen) AS due FROM bills GROUP BY 1),
paid AS (
    SELECT b.community_id, sum(p.amount_fen) AS paid
    FROM payments p JOIN bills b USING (bill_id) GROUP BY 1
),
air AS (SELECT community_id, round(avg(pm25_avg), 2) AS pm25_avg, max(noise_max) AS noise_max FROM env GROUP BY 1)
SELECT c.community_id,
    coalesce(f.devices, 0) AS devices, coalesce(f.reporting, 0) AS devices_reporting,
    round(f.reporting / nullif(f.devices, 0), 4) AS device_online_rate,
    @alarm_select@,
    coalesce(w.opened, 0) AS work_orders_opened, coalesce(w.closed, 0) AS work_orders_closed,
    w.on_time_rate, w.median_hours_to_close, w.p90_hours_to_close, w.satisfaction_avg,
    coalesce(d.due, 0) AS fee_due_fen, coalesce(p.paid, 0) AS fee_paid_fen,
    round(coalesce(p.paid, 0) / nullif(d.due, 0), 4) AS fee_collection_rate,
    coalesce(a.sos_fall, 0) + coalesce(a.inactive, 0) AS elderly_care_events,
    e.pm25_avg, e.noise_max,
    coalesce(w.ck_opened, 0)::BIGINT AS ck_work_orders_opened, coalesce(w.ck_closed, 0)::BIGINT AS ck_work_orders_closed,
    coalesce(a.ck_care, 0)::BIGINT AS ck_elderly_care_events,
    coalesce(w.on_time, 0) AS on_time, coalesce(w.ck_on_time, 0)::BIGINT AS ck_on_time,
    coalesce(w.rated, 0) AS rated, coalesce(w.ck_rated, 0)::BIGINT AS ck_rated,
    coalesce(w.rating_sum, 0) AS rating_sum, coalesce(w.ck_rating_sum, 0)::BIGINT AS ck_rating_sum
FROM comm c
LEFT JOIN fleet f USING (community_id) LEFT JOIN al a USING (community_id) LEFT JOIN wo w USING (community_id)
LEFT JOIN due d USING (community_id) LEFT JOIN paid p USING (community_id) LEFT JOIN air e USING (community_id)
