-- silver/work_orders: the latest snapshot per order, plus duplicate_of for cross-channel duplicates.
-- Dedup rule: orders filed on the partition day with the same community, category and (non-null) location
-- (compared by location_token, the keyed token of the place as written: the location column keeps no room)
-- form one issue while each follows the previous within 120 minutes; every order but the issue's first is
-- flagged duplicate_of = that first order (kept, counted once in gold). Inputs: view `bronze`; `tz`, `day`.
-- Latest snapshot: the copy with the most re-opens (a re-open carries no timestamp in the export, but a later
-- snapshot never has fewer), then the latest status-change time in the row, then the last file and line.
WITH latest AS (
    SELECT * EXCLUDE (source_file, source_line) FROM bronze
    QUALIFY row_number() OVER (PARTITION BY order_id
        ORDER BY reopened_count DESC, greatest(created_ts, dispatched_ts, completed_ts, closed_ts) DESC NULLS LAST,
            source_file DESC, source_line DESC) = 1
),
filed_today AS (
    SELECT order_id, community_id, category, location_token, created_ts,
        created_ts - lag(created_ts) OVER w AS gap
    FROM latest
    WHERE CAST(timezone('@tz@', created_ts) AS DATE) = DATE '@day@' AND location_token IS NOT NULL
    WINDOW w AS (PARTITION BY community_id, category, location_token ORDER BY created_ts, order_id)
),
clusters AS (
    SELECT *, sum(CASE WHEN gap IS NULL OR gap > INTERVAL 120 MINUTE THEN 1 ELSE 0 END) OVER (
        PARTITION BY community_id, category, location_token ORDER BY created_ts, order_id ROWS UNBOUNDED PRECEDING) AS issue
    FROM filed_today
),
firsts AS (
    SELECT order_id, first(order_id) OVER (PARTITION BY community_id, category, location_token, issue
        ORDER BY created_ts, order_id) AS first_id
    FROM clusters
)
SELECT l.*, CASE WHEN f.first_id <> l.order_id THEN f.first_id END AS duplicate_of
FROM latest l LEFT JOIN firsts f USING (order_id)
