-- silver/work_order_events: one row per (order, seq), the copy from the last file and line, with the
-- community of its order (every accepted event's order is in the day's bronze orders). Views `bronze`, `orders`.
SELECT x.*, o.community_id
FROM (
    SELECT * EXCLUDE (source_file, source_line) FROM bronze
    QUALIFY row_number() OVER (PARTITION BY @keys@ ORDER BY source_file DESC, source_line DESC) = 1
) x
LEFT JOIN (SELECT DISTINCT order_id, community_id FROM orders) o USING (order_id)
