-- Type one day's status-change rows; an event whose order is not among the day's accepted work orders is
-- rejected (its remark cannot be redacted against the reporter's name, and it would dangle).
WITH t AS (
    SELECT *, svc_null(order_id) AS oid, TRY_CAST(svc_null(seq_raw) AS INTEGER) AS seq,
        svc_status(status_raw) AS status, svc_ts(ts_raw) AS event_ts
    FROM raw
)
SELECT oid AS order_id, seq, status, svc_null(actor_role) AS actor_role, event_ts, note,
    svc_community(source_file) AS community_id, source_file, source_line, in_file_dup,
    CASE WHEN ragged THEN 'ragged_row'
        WHEN oid IS NULL THEN 'missing_order_id'
        WHEN seq IS NULL THEN 'bad_sequence'
        WHEN status IS NULL THEN 'unknown_status'
        WHEN event_ts IS NULL THEN 'bad_timestamp'
        WHEN NOT order_known THEN 'unknown_order'
        WHEN pii_left THEN 'unredactable_text'
    END AS reason,
    CASE WHEN status IS NULL AND oid IS NOT NULL THEN 'status label not in the vendor dictionary' END AS detail
FROM t
