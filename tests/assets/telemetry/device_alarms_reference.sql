-- silver/device_alarms as it was until 2026-12-08 (the silence gaps on vendor id strings, every alarm group windowed),
-- kept as the definition test_device_alarms_rewrite.py holds device_alarms.sql to. Placeholder alarm_flags: the
-- reference flags, alarm_flags_reference.sql.
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
reports AS (
    -- what proves a device alive: any reading, or an ONLINE message (an OFFLINE message is not one)
    SELECT device_id, event_ts, bool_or(metric = 'online' AND value = 0) AS said_offline
    FROM silver GROUP BY ALL
),
gaps AS (
    SELECT r.device_id, r.event_ts,
        coalesce(lag(r.event_ts) OVER w, TIMESTAMPTZ '@day_start@') AS prev_ts,
        coalesce(lag(r.said_offline) OVER w, false) AS prev_said_offline, r.said_offline
    FROM reports r
    WINDOW w AS (PARTITION BY r.device_id ORDER BY r.event_ts)
),
silent AS (
    SELECT g.community_id, g.building_id, g.device_id, g.device_type, 'offline' AS alarm_type,
        x.prev_ts AS event_ts, epoch(x.event_ts - x.prev_ts) / 3600.0 AS value, NULL AS subject_token
    FROM gaps x JOIN registry g USING (device_id)
    WHERE x.event_ts - x.prev_ts > to_seconds(4 * g.report_interval_s) AND NOT x.prev_said_offline
        AND NOT x.said_offline
),
never AS (
    SELECT g.community_id, g.building_id, g.device_id, g.device_type, 'offline' AS alarm_type,
        TIMESTAMPTZ '@day_start@' AS event_ts, 24.0 AS value, NULL AS subject_token
    FROM registry g WHERE g.device_id NOT IN (SELECT device_id FROM reports WHERE NOT said_offline)
        AND g.device_id NOT IN (SELECT device_id FROM flagged WHERE alarm_type = 'offline' AND is_on)
)
SELECT md5(device_id || '|' || alarm_type || '|' || epoch_ms(event_ts)) AS alarm_id, *
FROM (SELECT * FROM state_alarms UNION ALL SELECT * FROM silent UNION ALL SELECT * FROM never)
