-- Type one day's payments: yuan text to fen, channel labels to the canonical enum.
WITH t AS (
    SELECT *, svc_null(payment_id) AS pid, svc_fen(amount_raw) AS amount_fen, svc_ts(paid_raw) AS paid_ts,
        CASE svc_null(channel_raw) WHEN '微信支付' THEN 'wechat' WHEN '微信' THEN 'wechat' WHEN '支付宝' THEN 'alipay'
            WHEN '银行代扣' THEN 'bank' WHEN '银行' THEN 'bank' WHEN '现金' THEN 'cash' WHEN '前台POS' THEN 'counter'
            END AS channel
    FROM raw
)
SELECT pid AS payment_id, svc_null(bill_id) AS bill_id,
    coalesce(svc_null(community_id), svc_community(source_file)) AS community_id, room_token,
    amount_fen, channel, paid_ts, payer_token, source_file, source_line, in_file_dup,
    CASE WHEN ragged THEN 'ragged_row'
        WHEN pid IS NULL THEN 'missing_payment_id'
        WHEN svc_null(bill_id) IS NULL THEN 'missing_bill_id'
        WHEN amount_fen IS NULL OR amount_fen <= 0 THEN 'bad_amount'
        WHEN channel IS NULL THEN 'unknown_channel'
        WHEN paid_ts IS NULL THEN 'bad_timestamp'
    END AS reason,
    CASE WHEN amount_fen IS NULL AND pid IS NOT NULL THEN 'amount is not a number of yuan' END AS detail
FROM t
