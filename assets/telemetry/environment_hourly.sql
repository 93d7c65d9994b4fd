-- gold/environment_hourly: PM averages and energy-averaged noise (LAeq) per community and local hour.
-- Sums run over DECIMAL so results do not depend on the (parallel, unordered) summation order: a re-run
-- yields byte-identical rows. Input: view `silver`; placeholder @tz@.
SELECT community_id,
    date_trunc('hour', timezone('@tz@', event_ts)) AS hour_start,
    round(avg(value::DECIMAL(18, 4)) FILTER (WHERE metric = 'pm25_ugm3'), 2)::DOUBLE AS pm25_avg,
    round(avg(value::DECIMAL(18, 4)) FILTER (WHERE metric = 'pm10_ugm3'), 2)::DOUBLE AS pm10_avg,
    round(10 * log10(
        (sum(pow(10, value / 10)::DECIMAL(38, 6)) FILTER (WHERE metric = 'noise_dba')
         / count(*) FILTER (WHERE metric = 'noise_dba'))::DOUBLE), 2) AS noise_laeq,
    round(max(value) FILTER (WHERE metric = 'noise_dba'), 2) AS noise_max,
    count(*) AS observations,
    count(DISTINCT device_id) AS devices
FROM silver
WHERE device_type = 'env' AND metric IN ('pm25_ugm3', 'pm10_ugm3', 'noise_dba')
GROUP BY ALL
