-- pv_raw + plates -> temp table passages: the passage key and the duplicate flags.
-- A passage is identified by its MotorVehicleID when that is the standard 48 digits. A 10-digit, empty or
-- malformed ID cannot identify it across re-sends, so such a passage is keyed by a composite of the resolved gate,
-- lane, pass time (to the second) and the keyed plate token, never the plate ('k' + md5); if a passage with a
-- 48-digit ID has the same composite, it is that passage (a copy sent without its ID) and takes its ID. A car
-- without a plate has no token: its composite adds the ID as sent, so two such cars in one second stay two.
-- Rows rejected before a gate and a time are known have no key (they are never ranked as duplicates).
CREATE OR REPLACE TEMP TABLE passages AS
WITH c AS (
    SELECT r.*, p.plate_token,
        CASE WHEN regexp_full_match(coalesce(r.motor_vehicle_id_raw, ''), '[0-9]{48}') THEN r.motor_vehicle_id_raw
        END AS mvid48,
        CASE WHEN r.tollgate_id IS NOT NULL AND r.pass_ts IS NOT NULL THEN
            'k' || substr(md5(concat_ws('|', r.tollgate_id, coalesce(CAST(r.lane_no AS VARCHAR), '-'),
                                        CAST(epoch(r.pass_ts) AS BIGINT),
                                        coalesce(p.plate_token, 'no_plate:' || coalesce(r.motor_vehicle_id_raw, '')))),
                          1, 32) END AS composite
    FROM pv_raw r LEFT JOIN plates p ON r.plate_raw IS NOT DISTINCT FROM p.plate_raw
        AND r.plate_color_raw IS NOT DISTINCT FROM p.plate_color_raw AND p.colour_scheme = 'gat1400'
), k AS (
    SELECT c.*, coalesce(c.mvid48, m.mvid48, c.composite) AS passage_key
    FROM c LEFT JOIN (SELECT composite, min(mvid48) AS mvid48 FROM c WHERE mvid48 IS NOT NULL AND composite IS NOT NULL
                      GROUP BY 1) m ON c.mvid48 IS NULL AND m.composite = c.composite
), d AS (
    -- re-sends are ranked among accepted copies only: a bad first copy (quarantined) never hides a good re-send
    SELECT *,
        row_number() OVER (PARTITION BY passage_key, reason IS NULL, source_file ORDER BY source_line) AS rn_file,
        first(source_file) OVER (PARTITION BY passage_key, reason IS NULL
                                 ORDER BY source_file, source_line) AS first_file
    FROM k
)
SELECT * EXCLUDE (rn_file, first_file, repeat_doc),
    reason IS NULL AND rn_file > 1 AS dup_in_file,
    (reason IS NULL AND rn_file = 1 AND source_file <> first_file) OR (reason IS NOT NULL AND repeat_doc)
        AS dup_cross_file
FROM d;
