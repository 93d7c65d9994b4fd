-- gold/security_events: what public security must see, without people. Location generalised to the
-- building (null = community gate or perimeter), time to the minute. The credential of an event is its
-- person token, else its card token. Rules (documented in the contract):
--   forced_door      every door-forced-open event;
--   repeated_denied  a credential's denial that makes 3 denials within 10 minutes, when its previous denial
--                    did not already do so (one event per burst onset);
--   anti_passback    a granted pass on the same door with the same credential <= 2 s after the previous one: a
--                    double swipe or a credential handed back (an anti-passback signal). It is NOT tailgating:
--                    a second person following without a credential leaves no door event to count;
--   fence_intrusion  every fence_intrusion alarm episode of silver/device_alarms (telemetry domain);
--   smoke, gas, sos, fall, manhole_open
--                    every alarm episode of those types in silver/device_alarms (source iot_alarm).
-- forced_door and the alarm episodes are also the incidents published within a minute (assets/incidents); the
-- blocking check `matches_incidents` proves this table and the day's incidents agree.
-- Inputs: views `silver`, `alarms`; placeholders tz and alarm_types (the alarm types that are security events).
WITH a AS (
    SELECT *, coalesce(person_token, card_token) AS cred FROM silver
),
den AS (
    SELECT community_id, building_id, event_ts, cred, event_id,
        coalesce(event_ts - lag(event_ts, 2) OVER w <= INTERVAL 10 MINUTE, false) AS burst
    FROM a WHERE event_kind = 'denied' AND cred IS NOT NULL
    WINDOW w AS (PARTITION BY cred ORDER BY event_ts, event_id)
),
rep AS (
    SELECT community_id, building_id, event_ts,
        burst AND NOT coalesce(lag(burst) OVER (PARTITION BY cred ORDER BY event_ts, event_id), false) AS onset
    FROM den
),
passes AS (
    SELECT community_id, building_id, event_ts,
        event_ts - lag(event_ts) OVER (PARTITION BY door_id, cred ORDER BY event_ts, event_id)
            <= INTERVAL 2 SECOND AS close
    FROM a WHERE event_kind = 'pass' AND cred IS NOT NULL
),
found AS (
    SELECT 'forced_door' AS event_type, community_id, building_id, event_ts FROM a WHERE event_kind = 'door_forced'
    UNION ALL
    SELECT 'repeated_denied', community_id, building_id, event_ts FROM rep WHERE onset
    UNION ALL
    SELECT 'anti_passback', community_id, building_id, event_ts FROM passes WHERE close
    UNION ALL
    SELECT alarm_type, community_id, building_id, event_ts FROM alarms WHERE alarm_type IN @alarm_types@
)
SELECT event_type, community_id, building_id, date_trunc('minute', timezone('@tz@', event_ts)) AS event_minute,
    CASE WHEN event_type = 'fence_intrusion' THEN 'e_fence' WHEN event_type IN @alarm_types@ THEN 'iot_alarm'
        ELSE 'access_control' END AS source,
    count(*) AS events
FROM found
GROUP BY ALL
