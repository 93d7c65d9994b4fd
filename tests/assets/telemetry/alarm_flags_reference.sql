-- alarm_flags.sql as it was until 2026-12-08 (every group windowed); the reference for test_device_alarms_rewrite.py.
-- The alarm-flag rule shared by silver/device_alarms (the daily path) and the incident engine (assets/incidents):
-- one definition of what turns an alarm on, so the published incidents and the day's security_events count the
-- same episodes. Two CTEs over a view `silver` (device_id, metric, value, event_ts, ...):
--   flagged   the readings of the alarm metrics with their alarm_type and whether the alarm is on;
--   episodes  the same with was_on, the device's previous state of that metric on the day (NULL: first reading).
-- An episode starts at a reading that is on when was_on is not true. Ties on event_ts order by value, so the
-- rule is deterministic when a device reports two values in one millisecond. Used as the @alarm_flags@ placeholder.
flagged AS (
    SELECT *,
        CASE metric WHEN 'smoke_alarm' THEN 'smoke' WHEN 'gas_alarm' THEN 'gas' WHEN 'sos' THEN 'sos'
            WHEN 'fall' THEN 'fall' WHEN 'intrusion' THEN 'fence_intrusion' WHEN 'cover_open' THEN 'manhole_open'
            WHEN 'battery_pct' THEN 'low_battery' WHEN 'online' THEN 'offline' END AS alarm_type,
        CASE WHEN metric = 'battery_pct' THEN value < 20 WHEN metric = 'online' THEN value = 0 ELSE value >= 1 END
            AS is_on
    FROM silver
    WHERE metric IN ('smoke_alarm', 'gas_alarm', 'sos', 'fall', 'intrusion', 'cover_open', 'battery_pct', 'online')
),
episodes AS (
    SELECT *, lag(is_on) OVER (PARTITION BY device_id, metric ORDER BY event_ts, value) AS was_on
    FROM flagged
)
