-- The silver identity query before the two-pass rewrite (one arg_min over every bronze row), kept verbatim
-- as the reference test_silver_identity.py compares the rewrite with.
-- silver/telemetry staging for one day: one row per reading identity (device, event time, metric, value),
-- so a platform retry re-delivered in another file collapses to one row; the earliest file and line wins.
-- `n` counts the bronze rows behind each identity (n - 1 are cross-file duplicates) and `registered` says
-- whether the registry knows the device: the accounting check reads both from this one aggregation.
-- A hash aggregate, not a window: no sort over the district-day. Inputs: views `bronze`, `registry`.
WITH firsts AS (
    SELECT device_id, event_ts, metric, value, count(*) AS n,
        arg_min({'platform': platform, 'unit': unit, 'quality_flag': quality_flag, 'subject_token': subject_token},
                {'f': source_file, 'l': source_line}) AS first
    FROM bronze
    GROUP BY ALL
)
SELECT g.community_id, g.building_id, d.device_id, g.device_type, d.first.platform AS platform, d.event_ts,
    d.metric, d.value, d.first.unit AS unit, d.first.quality_flag AS quality_flag,
    d.first.subject_token AS subject_token, d.n, g.device_id IS NOT NULL AS registered
FROM firsts d
LEFT JOIN (SELECT DISTINCT ON (device_id) * FROM registry) g USING (device_id)
