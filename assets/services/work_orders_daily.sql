-- gold/work_orders_daily: the complete grid communities x categories (zeros included) for suppression.
-- Inputs: views `orders`, `registry`; `stats` = work_order_stats.sql by community and category; `categories`.
WITH stats AS (@stats@),
grid AS (
    SELECT c.community_id, k.category
    FROM (SELECT community_id FROM registry UNION SELECT community_id FROM orders) c
    CROSS JOIN (SELECT unnest(@categories@) AS category) k
)
SELECT g.community_id, g.category, coalesce(s.opened, 0) AS opened, coalesce(s.closed, 0) AS closed,
    s.on_time_rate, s.median_hours_to_close, s.p90_hours_to_close, s.satisfaction_avg,
    coalesce(s.ck_opened, 0)::BIGINT AS ck_opened, coalesce(s.ck_closed, 0)::BIGINT AS ck_closed,
    coalesce(s.on_time, 0) AS on_time, coalesce(s.ck_on_time, 0)::BIGINT AS ck_on_time,
    coalesce(s.rated, 0) AS rated, coalesce(s.ck_rated, 0)::BIGINT AS ck_rated,
    coalesce(s.rating_sum, 0) AS rating_sum, coalesce(s.ck_rating_sum, 0)::BIGINT AS ck_rating_sum
FROM grid g LEFT JOIN stats s USING (community_id, category)
