-- Alarm episodes of the touched (day, device, metric) groups, by the daily path's own rule (alarm_flags.sql):
-- an episode starts at a reading that is on when the device's previous reading of that metric on the day was not;
-- it lasts while the readings stay on and is cleared by the first reading that is off. One row per episode with
-- its extent: start, last reading that was on, clearing reading (NULL while still on), on-readings so far.
-- Inputs: view `silver` (the engine's stored alarm readings of the touched groups, device_id made day-local as
-- '<day>/<device_id>' so the shared rule's window never crosses midnight; grp is '<device_id>|<metric>');
-- placeholder alarm_flags.
WITH @alarm_flags@,
numbered AS (
    SELECT *,
        sum(CASE WHEN is_on AND was_on IS DISTINCT FROM true THEN 1 ELSE 0 END)
            OVER (PARTITION BY device_id, metric ORDER BY event_ts, value ROWS UNBOUNDED PRECEDING) AS episode
    FROM episodes
)
SELECT day, grp, any_value(alarm_type) AS alarm_type, episode,
    min(event_ts) FILTER (WHERE is_on) AS start_ts,
    max(event_ts) FILTER (WHERE is_on) AS last_on_ts,
    min(event_ts) FILTER (WHERE NOT is_on) AS cleared_ts,
    count(*) FILTER (WHERE is_on) AS reports,
    arg_min(community_id, event_ts) AS community_id,
    arg_min(building_id, event_ts) AS building_id,
    bool_or(was_on IS NULL AND is_on) AS first_of_day,
    min(first_seen) FILTER (WHERE is_on) AS first_seen
FROM numbered
WHERE episode > 0
GROUP BY day, grp, episode
