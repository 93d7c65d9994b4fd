-- dim.community: one row per community code seen in any registry snapshot (seen: community_id and day of each
-- snapshot row); name and street from the snapshots that carry them (named), the latest day's value winning
-- (on one day, the value most rows carry). Codes are 310107 (district) + 3-digit street + 3-digit community.
-- warehouse/catalog.py fills in the two lists from the registries declared.
WITH seen AS (
    @seen@
),
named AS (
    @named@
),
latest_name AS (
    SELECT community_id, community_name
    FROM (SELECT community_id, community_name, date, count(*) AS n
          FROM named WHERE community_name IS NOT NULL GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY community_id ORDER BY date DESC, n DESC, community_name) = 1
),
latest_street AS (
    SELECT community_id, street
    FROM (SELECT community_id, street, date, count(*) AS n
          FROM named WHERE street IS NOT NULL GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY community_id ORDER BY date DESC, n DESC, street) = 1
),
span AS (
    SELECT community_id, min(date) AS first_seen, max(date) AS last_seen
    FROM seen WHERE community_id IS NOT NULL GROUP BY community_id
)
SELECT
    s.community_id,
    n.community_name,
    st.street AS street_name,
    CASE WHEN regexp_full_match(s.community_id, '[0-9]{12}') THEN substr(s.community_id, 1, 9) END AS street_code,
    CASE WHEN regexp_full_match(s.community_id, '[0-9]{12}') THEN substr(s.community_id, 1, 6) END AS district_code,
    d.district_name_zh,
    d.district_name_en,
    s.first_seen,
    s.last_seen
FROM span AS s
LEFT JOIN latest_name AS n ON n.community_id = s.community_id
LEFT JOIN latest_street AS st ON st.community_id = s.community_id
LEFT JOIN dim.district AS d ON d.district_code = substr(s.community_id, 1, 6)
ORDER BY s.community_id
