-- Type one day's work-order rows (view `raw`: all text, identifiers already tokenised/redacted) and give
-- each rejected row exactly one reason. SLA hours per category: repair 48, complaint 24, inquiry 8,
-- suggestion 72, delivery 4, alarm 2.
WITH t AS (
    SELECT *,
        svc_null(order_id) AS oid,
        CASE svc_null(category_raw) WHEN '报修' THEN 'repair' WHEN '投诉' THEN 'complaint' WHEN '咨询' THEN 'inquiry'
            WHEN '建议' THEN 'suggestion' WHEN '代收快递' THEN 'delivery' WHEN '设备告警' THEN 'alarm' END AS category,
        CASE svc_null(channel_raw) WHEN '业主APP' THEN 'app' WHEN '微信公众号' THEN 'wechat' WHEN '物业电话' THEN 'phone'
            WHEN '12345热线' THEN '12345' WHEN '网格上报' THEN 'grid' WHEN '设备告警' THEN 'device' END AS channel,
        svc_ts(created_raw) AS created_ts, svc_ts(appointment_raw) AS appointment_ts,
        svc_ts(dispatched_raw) AS dispatched_ts, svc_ts(completed_raw) AS completed_ts,
        svc_ts(closed_raw) AS closed_ts, svc_status(status_raw) AS status,
        TRY_CAST(svc_null(satisfaction_raw) AS TINYINT) AS satisfaction,
        coalesce(TRY_CAST(svc_null(reopened_raw) AS INTEGER), 0) AS reopened_count,
        lower(svc_null(alarm_raw)) AS source_alarm_id
    FROM raw
)
SELECT oid AS order_id, coalesce(svc_null(community_id), svc_community(source_file)) AS community_id,
    category, channel, svc_null(location) AS location, location_token, description, reporter_token,
    created_ts, appointment_ts, dispatched_ts, completed_ts, closed_ts, status, satisfaction, reopened_count,
    created_ts + to_hours(CASE category WHEN 'repair' THEN 48 WHEN 'complaint' THEN 24 WHEN 'inquiry' THEN 8
        WHEN 'suggestion' THEN 72 WHEN 'delivery' THEN 4 WHEN 'alarm' THEN 2 END) AS sla_due_ts,
    source_alarm_id, source_file, source_line, in_file_dup,
    CASE WHEN ragged THEN 'ragged_row'
        WHEN oid IS NULL THEN 'missing_order_id'
        WHEN category IS NULL THEN 'unknown_category'
        WHEN channel IS NULL THEN 'unknown_channel'
        WHEN status IS NULL THEN 'unknown_status'
        WHEN created_ts IS NULL THEN 'bad_timestamp'
        WHEN (svc_null(closed_raw) IS NOT NULL AND closed_ts IS NULL)
            OR (svc_null(completed_raw) IS NOT NULL AND completed_ts IS NULL)
            OR (svc_null(dispatched_raw) IS NOT NULL AND dispatched_ts IS NULL) THEN 'bad_timestamp'
        WHEN svc_null(satisfaction_raw) IS NOT NULL AND (satisfaction IS NULL OR satisfaction NOT BETWEEN 1 AND 5)
            THEN 'bad_satisfaction'
        WHEN source_alarm_id IS NOT NULL AND NOT regexp_full_match(source_alarm_id, '[0-9a-f]{32}') THEN 'bad_alarm_id'
        WHEN pii_left THEN 'unredactable_text'
    END AS reason,
    CASE WHEN created_ts IS NULL AND oid IS NOT NULL THEN 'creation time in none of the known formats' END AS detail
FROM t
