-- Payments with the channel folded to online | cash | other; a re-sent item is kept once.
SELECT community_id, park_id, parking_serial, item,
    CASE WHEN lower(pay_type) IN ('wechat', 'alipay', 'unionpay', 'online', 'app', 'etc', '2', '3') THEN 'online'
         WHEN lower(pay_type) IN ('cash', '1') THEN 'cash' ELSE 'other' END AS pay_type,
    pay_ts, value_fen, free_fen, change_fen
FROM payments
QUALIFY row_number() OVER (PARTITION BY park_id, parking_serial, item ORDER BY source_file, source_line) = 1
