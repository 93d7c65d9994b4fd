-- `msgs` -> table `records`: one row per landed record (a reading; or a message/line that yields none),
-- reason NULL = accepted; `dup_cross_file` is set later for a rejected line that repeats one of an earlier
-- file (kernel.ndjson.RepeatedRejections). Inputs: `msgs`, `subject_tokens`, `vendor_keys`, `metrics`.
CREATE OR REPLACE TEMP TABLE records AS
WITH kv AS (
    SELECT m.* EXCLUDE (props), unnest(map_entries(json_transform(m.props, '"MAP(VARCHAR, JSON)"'))) AS e
    FROM msgs m
    WHERE m.props IS NOT NULL AND json_type(m.props) = 'OBJECT'
),
readings AS (
    SELECT kv.* EXCLUDE (e), e.key AS vendor_key,
        CASE WHEN json_type(e.value) = 'VARCHAR' THEN e.value->>'$' ELSE e.value::VARCHAR END AS raw_value,
        json_type(e.value) = 'BOOLEAN' AS is_bool,
        k.metric, k.scale
    FROM kv LEFT JOIN vendor_keys k ON k.platform = kv.platform AND k.vendor_key = e.key
    WHERE k.role IS DISTINCT FROM 'identifier:person'
),
no_readings AS (
    SELECT m.source_file, m.source_line, m.community_id, m.platform, m.device_id, m.event_ts, m.received_ts,
        NULL::VARCHAR AS vendor_key, NULL::VARCHAR AS raw_value, NULL::VARCHAR AS metric, NULL::DOUBLE AS value,
        NULL::VARCHAR AS unit, NULL::VARCHAR AS quality_flag, NULL::VARCHAR AS subject_token,
        coalesce(m.msg_reason, 'missing_payload') AS reason,
        CASE WHEN m.msg_reason = 'unreadable_file' THEN m.file_error
             WHEN m.msg_reason = 'malformed_json' THEN 'line is not valid JSON'
             WHEN m.msg_reason = 'unknown_envelope' THEN 'neither a CTWing nor an IoTDA envelope'
             ELSE 'message carries no readings' END AS detail,
        false AS dup_in_file, false AS dup_cross_file
    -- identifier properties are not readings: a message holding only those yields none
    FROM msgs m WHERE m.n_readings <= 0
),
valued AS (
    SELECT r.*, mt.min_value, mt.max_value, mt.unit,
        CASE WHEN r.is_bool THEN CAST(r.raw_value = 'true' AS DOUBLE) ELSE TRY_CAST(r.raw_value AS DOUBLE) END
            * r.scale AS v0
    FROM readings r LEFT JOIN metrics mt USING (metric)
),
checked AS (
    SELECT *,
        -- NB-IoT modules often drop RSRP's sign (114 for -114 dBm): restore it when that lands in range
        metric = 'rsrp_dbm' AND v0 > 0 AND -v0 BETWEEN min_value AND max_value AS sign_restored
    FROM valued
),
reading_level AS (
    SELECT c.source_file, c.source_line, c.community_id, c.platform, c.device_id, c.event_ts, c.received_ts,
        c.vendor_key, c.raw_value, c.metric,
        CASE WHEN c.sign_restored THEN -c.v0 ELSE c.v0 END AS value,
        c.unit,
        CASE WHEN c.sign_restored THEN 'rsrp_sign_restored' ELSE 'ok' END AS quality_flag,
        t.subject_token,
        CASE
            WHEN c.msg_reason IS NOT NULL THEN c.msg_reason
            WHEN c.metric IS NULL THEN 'unknown_metric'
            WHEN c.v0 IS NULL THEN 'non_numeric_value'
            WHEN NOT c.sign_restored AND (c.v0 < c.min_value OR c.v0 > c.max_value) THEN 'out_of_range'
        END AS reason,
        CASE
            WHEN c.msg_reason IS NOT NULL THEN NULL
            WHEN c.metric IS NULL THEN 'vendor key not in the vocabulary'
            WHEN c.v0 IS NULL THEN 'value is not numeric'
            WHEN NOT c.sign_restored AND (c.v0 < c.min_value OR c.v0 > c.max_value)
                THEN format('{}={} outside [{}, {}] {}', c.metric, c.raw_value, c.min_value, c.max_value, c.unit)
        END AS detail,
        c.dup_in_file, false AS dup_cross_file
    FROM checked c LEFT JOIN subject_tokens t USING (subject_raw)
)
SELECT * FROM no_readings
UNION ALL
SELECT * FROM reading_level;
