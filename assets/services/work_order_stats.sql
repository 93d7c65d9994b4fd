-- Work-order figures of the partition day grouped by `keys` (view `orders` = silver/work_orders):
-- opened = filed today and not a duplicate; closed = status closed with the last close today (a re-opened
-- order counts when it is finally closed); hours run from filing to that last close; on time = closed by
-- sla_due_ts. Placeholders `keys`, `tz`, `day`. For the cell key method (kernel.record_keys; an order's record
-- identity is community/order_id): ck_<count> per count, the auxiliary counts on_time and rated with theirs, and
-- rating_sum with ck_rating_sum (other keys of the same orders, so the sum's noise is not the count's).
SELECT @keys@,
    count(*) FILTER (WHERE filed AND duplicate_of IS NULL) AS opened,
    count(*) FILTER (WHERE closed) AS closed,
    round(avg(CASE WHEN closed_ts <= sla_due_ts THEN 1.0 ELSE 0.0 END) FILTER (WHERE closed), 4) AS on_time_rate,
    round(quantile_cont(hours, 0.5) FILTER (WHERE closed), 2) AS median_hours_to_close,
    round(quantile_cont(hours, 0.9) FILTER (WHERE closed), 2) AS p90_hours_to_close,
    round(avg(satisfaction) FILTER (WHERE closed), 2) AS satisfaction_avg,
    sum(rk) FILTER (WHERE filed AND duplicate_of IS NULL) AS ck_opened,
    sum(rk) FILTER (WHERE closed) AS ck_closed,
    count(*) FILTER (WHERE closed AND closed_ts <= sla_due_ts) AS on_time,
    sum(rk) FILTER (WHERE closed AND closed_ts <= sla_due_ts) AS ck_on_time,
    count(satisfaction) FILTER (WHERE closed) AS rated,
    sum(rk) FILTER (WHERE closed AND satisfaction IS NOT NULL) AS ck_rated,
    sum(satisfaction) FILTER (WHERE closed) AS rating_sum,
    sum(neuron_record_key(community_id || '/' || order_id || '#rating')) FILTER (WHERE closed AND satisfaction IS NOT NULL)
        AS ck_rating_sum
FROM (
    SELECT *, neuron_record_key(community_id || '/' || order_id) AS rk,
        CAST(timezone('@tz@', created_ts) AS DATE) = DATE '@day@' AS filed,
        coalesce(status = 'closed' AND CAST(timezone('@tz@', closed_ts) AS DATE) = DATE '@day@', false) AS closed,
        epoch(closed_ts - created_ts) / 3600.0 AS hours
    FROM orders
)
GROUP BY ALL
