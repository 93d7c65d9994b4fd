-- silver/telemetry staging for one day: one row per reading identity (device, event time, metric, value),
-- so a platform retry re-delivered in another file collapses to one row; the earliest file and line wins.
-- `n` counts the bronze rows behind each identity (n - 1 are cross-file duplicates) and `registered` says
-- whether the registry knows the device: the accounting check reads both from this one query.
-- Two passes, no sort: a plain hash aggregate finds the identities with more than one bronze row (a few
-- thousand a district-day); every other row is its identity as it stands, and only the repeated ones pay for
-- picking the first: over 60 communities' 4.2 M bronze rows, 3.9-4.4 s against 9.2-9.7 s for one arg_min over
-- every row (tests/assets/telemetry/silver_reference.sql, which test_silver_identity.py compares this with).
-- The joins match NULLs as GROUP BY does. Inputs: views `bronze`, `registry`.
-- The repeated identities are found in two steps: first the identities' 64-bit hashes that occur more than once (a
-- hash aggregate on one integer: 5.7 s over 600 communities' 41.6 M rows, against 19.3 s for the four columns, whose
-- table spilled), then the exact identities among the rows with such a hash. A repeated identity always repeats its
-- hash (hash() equates what GROUP BY equates: NULLs, 0.0 and -0.0, NaNs); a collision only adds a candidate that the
-- exact aggregate drops.
WITH candidates AS (
    SELECT hash(device_id, event_ts, metric, value) AS h FROM bronze GROUP BY 1 HAVING count(*) > 1
),
repeated AS (
    SELECT device_id, event_ts, metric, value, count(*) AS n
    FROM bronze
    WHERE hash(device_id, event_ts, metric, value) IN (SELECT h FROM candidates)
    GROUP BY ALL
    HAVING count(*) > 1
),
firsts AS (
    SELECT b.device_id, b.event_ts, b.metric, b.value, b.platform, b.unit, b.quality_flag, b.subject_token, 1 AS n
    FROM bronze b ANTI JOIN repeated r ON b.device_id IS NOT DISTINCT FROM r.device_id
        AND b.event_ts IS NOT DISTINCT FROM r.event_ts AND b.metric IS NOT DISTINCT FROM r.metric
        AND b.value IS NOT DISTINCT FROM r.value
    UNION ALL
    SELECT device_id, event_ts, metric, value, first.platform, first.unit, first.quality_flag, first.subject_token, n
    FROM (
        SELECT r.device_id, r.event_ts, r.metric, r.value, any_value(r.n) AS n,
            arg_min({'platform': b.platform, 'unit': b.unit, 'quality_flag': b.quality_flag,
                     'subject_token': b.subject_token}, {'f': b.source_file, 'l': b.source_line}) AS first
        FROM bronze b JOIN repeated r ON b.device_id IS NOT DISTINCT FROM r.device_id
            AND b.event_ts IS NOT DISTINCT FROM r.event_ts AND b.metric IS NOT DISTINCT FROM r.metric
            AND b.value IS NOT DISTINCT FROM r.value
        GROUP BY r.device_id, r.event_ts, r.metric, r.value
    )
)
SELECT g.community_id, g.building_id, d.device_id, g.device_type, d.platform, d.event_ts,
    d.metric, d.value, d.unit, d.quality_flag, d.subject_token, d.n, g.device_id IS NOT NULL AS registered
FROM firsts d
LEFT JOIN (SELECT DISTINCT ON (device_id) * FROM registry) g USING (device_id)
