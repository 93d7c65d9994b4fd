-- payment_list items of the accepted exit pushes (bronze_parking.sql has checked every amount fits BIGINT fen).
WITH u AS (
    SELECT a.community_id, a.park_id, a.parking_serial, a.source_file, a.source_line,
        unnest(a.pays) AS pay, generate_subscripts(a.pays, 1) AS item
    FROM pk a
    WHERE a.reason IS NULL AND NOT a.dup_in_file AND NOT a.dup_cross_file AND a.event = 'leave' AND len(a.pays) > 0
)
SELECT community_id, park_id, parking_serial, item, coalesce(pay->>'pay_type', 'unknown') AS pay_type,
    to_timestamp(TRY_CAST(pay->>'pay_time' AS BIGINT) / 1000.0) AS pay_ts,
    TRY_CAST(pay->>'value' AS BIGINT) AS value_fen,
    TRY_CAST(coalesce(pay->>'free_value', '0') AS BIGINT) AS free_fen,
    TRY_CAST(coalesce(pay->>'change_value', '0') AS BIGINT) AS change_fen,
    pay->>'parking_order' AS parking_order, source_file, source_line
FROM u ORDER BY community_id, park_id, parking_serial, item
