-- The alarm-flag rule shared by silver/device_alarms (the daily path) and the incident engine (assets/incidents):
-- one definition of what turns an alarm on, so the published incidents and the day's security_events count the
-- same episodes. Two CTEs over a view `silver` (device_id, metric, value, event_ts, ...):
--   flagged   the readings of the alarm metrics with their alarm_type and whether the alarm is on;
--   episodes  the readings of the groups that are ever on, with was_on, the device's previous state of that metric
--             on the day (NULL: first reading).
-- An episode starts at a reading that is on when was_on is not true. Ties on event_ts order by value, so the
-- rule is deterministic when a device reports two values in one millisecond. Used as the @alarm_flags@ placeholder.
-- Only the (device, metric) groups with a reading on are windowed: a group that is never on starts no episode, and
-- both users read only the episodes (at 600 communities 91 k of 13 M alarm readings; the window over all of them
-- was half of silver/device_alarms).
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
    SELECT f.*, lag(f.is_on) OVER (PARTITION BY f.device_id, f.metric ORDER BY f.event_ts, f.value) AS was_on
    FROM flagged f
    SEMI JOIN (SELECT DISTINCT device_id, metric FROM flagged WHERE is_on) o
        ON f.device_id IS NOT DISTINCT FROM o.device_id AND f.metric = o.metric
)
