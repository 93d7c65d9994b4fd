-- Type one day's fee bills: yuan text to fen, ISO dates.
WITH t AS (
    SELECT *, svc_null(bill_id) AS bid, svc_fen(due_raw) AS due_fen,
        TRY_CAST(svc_null(period_start_raw) AS DATE) AS period_start,
        TRY_CAST(svc_null(period_end_raw) AS DATE) AS period_end,
        coalesce(TRY_CAST(svc_null(due_date_raw) AS DATE), CAST(svc_ts(due_date_raw) AS DATE)) AS due_date
    FROM raw
)
SELECT bid AS bill_id, coalesce(svc_null(community_id), svc_community(source_file)) AS community_id,
    room_token, svc_null(fee_item) AS fee_item, period_start, period_end, due_fen, due_date,
    source_file, source_line, in_file_dup,
    CASE WHEN ragged THEN 'ragged_row'
        WHEN bid IS NULL THEN 'missing_bill_id'
        WHEN due_fen IS NULL OR due_fen <= 0 THEN 'bad_amount'
        WHEN due_date IS NULL THEN 'bad_date'
        WHEN svc_null(fee_item) IS NULL THEN 'missing_fee_item'
    END AS reason,
    CASE WHEN due_fen IS NULL AND bid IS NOT NULL THEN 'amount is not a number of yuan' END AS detail
FROM t
