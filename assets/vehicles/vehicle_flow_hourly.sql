-- Complete grid: every gate x 24 local hours x direction x plate group x plate type x residency, zeros included.
-- ck_vehicles: the cell key, the sum of the record keys of the passages counted (identity: passage_key).
WITH gates AS (SELECT DISTINCT community_id, gate_id FROM tollgates),
hours AS (SELECT TIMESTAMP '@day@' + to_hours(h::BIGINT) AS hour_start FROM range(24) t(h)),
dims AS (
    SELECT * FROM (VALUES ('in'), ('out')) d(direction)
    CROSS JOIN (VALUES ('local'), ('out_of_town'), ('unknown'), ('no_plate')) g(plate_group)
    CROSS JOIN (VALUES ('new_energy'), ('fuel'), ('other')) t(plate_type)
    CROSS JOIN (VALUES ('resident'), ('visitor')) r(residency)
),
counts AS (
    SELECT community_id, gate_id, hour_start, direction, plate_group, plate_type, residency, count(*) AS vehicles,
        sum(neuron_record_key(passage_key)) AS ck_vehicles
    FROM silver GROUP BY ALL
)
SELECT g.community_id, g.gate_id, h.hour_start, d.direction, d.plate_group, d.plate_type, d.residency,
    coalesce(c.vehicles, 0)::BIGINT AS vehicles, coalesce(c.ck_vehicles, 0)::BIGINT AS ck_vehicles
FROM gates g CROSS JOIN hours h CROSS JOIN dims d
LEFT JOIN counts c ON c.community_id = g.community_id AND c.gate_id = g.gate_id AND c.hour_start = h.hour_start
    AND c.direction = d.direction AND c.plate_group = d.plate_group AND c.plate_type = d.plate_type
    AND c.residency = d.residency
