-- Work-order figures of the partition day grouped by `keys` (view `orders` = silver/work_orders):
-- opened = filed today and not a duplicate; closed = status closed with the last close today (a re-opened
-- order counts when it is finally closed); hours run from filing to that last close; on time = closed by
-- sla_due_ts. Placeholders `keys`, `tz`, `day`.
SELECT @keys@,
    count(*) FILTER (WHERE filed AND duplicate_of IS NULL) AS opened,
    count(*) FILTER (WHERE closed) AS closed,
    round(avg(CASE WHEN closed_ts <= sla_due_ts THEN 1.0 ELSE 0.0 END) FILTER (WHERE closed), 4) AS on_time_rate,
    round(quantile_cont(hours, 0.5) FILTER (WHERE closed), 2) AS median_hours_to_close,
    round(quantile_cont(hours, 0.9) FILTER (WHERE closed), 2) AS p90_hours_to_close,
    round(avg(satisfaction) FILTER (WHERE closed), 2) AS satisfaction_avg
FROM (
    SELECT *, CAST(timezone('@tz@', created_ts) AS DATE) = DATE '@day@' AS filed,
        coalesce(status = 'closed' AND CAST(timezone('@tz@', closed_ts) AS DATE) = DATE '@day@', false) AS closed,
        epoch(closed_ts - created_ts) / 3600.0 AS hours
    FROM orders
)
GROUP BY ALL
