-- gold/device_health_daily: one row per community and device type.
-- A device is reporting when silver holds any reading of it or an ONLINE status message (heartbeat evidence
-- from CTWing deviceOnlineOfflineReport / IoTDA device.status); a device that only said OFFLINE is not.
-- Inputs: views `registry`, `silver`, `alarms`; placeholders @alarm_columns@, @alarm_select@
-- (one FILTERed count per alarm type, and its zero-filled projection).
WITH reporting AS (SELECT DISTINCT device_id FROM silver WHERE NOT (metric = 'online' AND value = 0)),
low AS (SELECT DISTINCT device_id FROM silver WHERE metric = 'battery_pct' AND value < 20),
fleet AS (
    SELECT g.community_id, g.device_type,
        count(*) AS devices,
        count(r.device_id) AS reporting,
        round(count(r.device_id) / count(*), 4) AS online_rate,
        count(l.device_id) AS low_battery
    FROM registry g
    LEFT JOIN reporting r USING (device_id)
    LEFT JOIN low l USING (device_id)
    GROUP BY ALL
),
alarm_counts AS (
    SELECT community_id, device_type, @alarm_columns@
    FROM alarms GROUP BY ALL
)
SELECT f.*, @alarm_select@
FROM fleet f LEFT JOIN alarm_counts a USING (community_id, device_type)
