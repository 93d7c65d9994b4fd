-- silver/device_alarms for one day: an episode starts when a state flag turns on (or the battery drops
-- below 20 %); offline = a registered device that reported nothing, went silent for 4 report intervals, or
-- whose platform said OFFLINE (CTWing deviceOnlineOfflineReport, IoTDA device.status: metric `online` = 0).
-- The OFFLINE message starts its episode: neither the silence it ends (the platform saw the device until its
-- own timeout) nor the silence that follows it is a second one. A vendor alarm code
-- (e.g. the LiAn smoke detector's Alarm_Status 1) reaches here already mapped to its flag by
-- vendors/vendor_codes.csv. The on/off rule is alarm_flags.sql, shared with the incident engine.
-- Inputs: views `silver`, `registry`; placeholders day_start, day_end, alarm_flags (the shared CTEs).
WITH @alarm_flags@,
state_alarms AS (
    SELECT community_id, building_id, device_id, device_type, alarm_type, event_ts,
        CASE WHEN alarm_type = 'offline' THEN NULL ELSE value END AS value, subject_token
    FROM episodes WHERE is_on AND was_on IS DISTINCT FROM true
),
-- the registered devices numbered: the silence gaps are found on (number, time), not on the vendor's id string
-- (a device the registry does not know has no report interval, so no silence either)
devices AS (
    SELECT device_id, row_number() OVER () AS dev, min(report_interval_s) AS min_interval_s
    FROM registry GROUP BY device_id
),
reports AS (
    -- what proves a device alive: any reading, or an ONLINE message (an OFFLINE message is not one)
    SELECT d.dev, s.event_ts, bool_or(s.metric = 'online' AND s.value = 0) AS said_offline
    FROM silver s JOIN devices d USING (device_id) GROUP BY ALL
),
gaps AS (
    SELECT r.dev, r.event_ts,
        coalesce(lag(r.event_ts) OVER w, TIMESTAMPTZ '@day_start@') AS prev_ts,
        coalesce(lag(r.said_offline) OVER w, false) AS prev_said_offline, r.said_offline
    FROM reports r
    WINDOW w AS (PARTITION BY r.dev ORDER BY r.event_ts)
),
silent AS (
    SELECT g.community_id, g.building_id, g.device_id, g.device_type, 'offline' AS alarm_type,
        x.prev_ts AS event_ts, epoch(x.event_ts - x.prev_ts) / 3600.0 AS value, NULL AS subject_token
    FROM (
        -- longer than four of the device's shortest interval: the few candidates, then each registry row's own rule
        -- (in whole microseconds, exactly the interval comparison, which costs ten times as much)
        SELECT d.device_id, x.event_ts, x.prev_ts, epoch_us(x.event_ts) - epoch_us(x.prev_ts) AS gap_us
        FROM gaps x JOIN devices d USING (dev)
        WHERE epoch_us(x.event_ts) - epoch_us(x.prev_ts) > 4000000::BIGINT * d.min_interval_s
            AND NOT x.prev_said_offline AND NOT x.said_offline
    ) x JOIN registry g USING (device_id)
    WHERE x.gap_us > 4000000::BIGINT * g.report_interval_s
),
never AS (
    SELECT g.community_id, g.building_id, g.device_id, g.device_type, 'offline' AS alarm_type,
        TIMESTAMPTZ '@day_start@' AS event_ts, 24.0 AS value, NULL AS subject_token
    FROM registry g
    WHERE g.device_id NOT IN (SELECT d.device_id FROM reports r JOIN devices d USING (dev) WHERE NOT r.said_offline)
        AND g.device_id NOT IN (SELECT device_id FROM flagged WHERE alarm_type = 'offline' AND is_on)
)
SELECT md5(device_id || '|' || alarm_type || '|' || epoch_ms(event_ts)) AS alarm_id, *
FROM (SELECT * FROM state_alarms UNION ALL SELECT * FROM silent UNION ALL SELECT * FROM never)
