-- `msgs` -> table `records`: one row per landed record (a reading; or a message/line that yields none),
-- reason NULL = accepted; `dup_cross_file` is set later for a rejected line that repeats one of an earlier
-- file (kernel.ndjson.RepeatedRejections). Readings come from JSON properties and, for transparent payloads,
-- from the model's codec (codecs.csv: big-endian fields decoded from the bytes in SQL). Each vendor key is
-- looked up for the device's product model first, then for any model of its platform ('*'); identifier and
-- ignored keys are not readings; `code` keys go through vendor_codes.csv.
-- Inputs: `msgs`, `subject_tokens`, `vendor_keys`, `vendor_codes`, `codecs`, `metrics`.
-- `raw_readings` is narrow: a reading carries its message's key (lid, svc_idx), not the message's columns, which
-- `records` joins back once (carrying ~16 message columns through the UNNEST cost more than the parse).
CREATE OR REPLACE TEMP TABLE raw_readings AS
WITH json_kv AS (
    SELECT m.lid, m.svc_idx, m.platform, m.vendor_model,
        unnest(map_entries(json_transform(m.props, '"MAP(VARCHAR, JSON)"'))) AS e
    FROM msgs m
    WHERE m.codec_src IS NULL AND m.props IS NOT NULL AND json_type(m.props) = 'OBJECT'
),
json_readings AS (
    SELECT j.* EXCLUDE (e), e.key AS vendor_key,
        CASE WHEN json_type(e.value) = 'VARCHAR' THEN e.value->>'$' ELSE e.value::VARCHAR END AS raw_value,
        json_type(e.value) = 'BOOLEAN' AS is_bool
    FROM json_kv j
),
codec_fields AS (
    SELECT m.lid, m.svc_idx, m.platform, m.vendor_model, c.vendor_key, c.type, c.byte_length, c.scale AS codec_scale,
        substr(hex(m.payload_bytes), c.byte_offset * 2 + 1, c.byte_length * 2) AS h
    FROM msgs m JOIN codecs c ON c.platform = m.platform AND c.vendor_model = m.vendor_model
    WHERE m.payload_bytes IS NOT NULL AND octet_length(m.payload_bytes) >= c.byte_offset + c.byte_length
),
codec_values AS (
    SELECT * EXCLUDE (type, byte_length, codec_scale, h, u),
        CAST(round(CASE type
            WHEN 'uint' THEN u
            WHEN 'int' THEN CASE WHEN u >= pow(2, 8 * byte_length - 1) THEN u - pow(2, 8 * byte_length) ELSE u END
            WHEN 'bcd' THEN TRY_CAST(h AS DOUBLE)
        END * codec_scale, 6) AS VARCHAR) AS raw_value,
        false AS is_bool
    FROM (SELECT *, TRY_CAST('0x' || h AS UBIGINT)::DOUBLE AS u FROM codec_fields)
),
all_kv AS (
    SELECT * FROM json_readings
    UNION ALL BY NAME
    SELECT * FROM codec_values
),
keyed AS (
    SELECT kv.*,
        coalesce(ke.role, kg.role) AS role,
        CASE WHEN ke.role IS NOT NULL THEN ke.metric ELSE kg.metric END AS key_metric,
        CASE WHEN ke.role IS NOT NULL THEN ke.scale ELSE kg.scale END AS scale
    FROM all_kv kv
    LEFT JOIN vendor_keys ke ON ke.platform = kv.platform AND ke.vendor_model = kv.vendor_model
        AND ke.vendor_key = kv.vendor_key
    LEFT JOIN vendor_keys kg ON kg.platform = kv.platform AND kg.vendor_model = '*' AND kg.vendor_key = kv.vendor_key
)
SELECT k.lid, k.svc_idx, k.vendor_key, k.raw_value, k.is_bool, k.role, k.scale,
    CASE WHEN k.role = 'code' THEN coalesce(ce.metric, cg.metric) ELSE k.key_metric END AS metric,
    CASE WHEN k.role = 'code' THEN coalesce(ce.value, cg.value) END AS code_value
FROM keyed k
LEFT JOIN vendor_codes ce ON k.role = 'code' AND ce.platform = k.platform AND ce.vendor_model = k.vendor_model
    AND ce.vendor_key = k.vendor_key AND ce.code = k.raw_value
LEFT JOIN vendor_codes cg ON k.role = 'code' AND cg.platform = k.platform AND cg.vendor_model = '*'
    AND cg.vendor_key = k.vendor_key AND cg.code = k.raw_value
-- identifier properties are not readings and are never kept; ignored keys are framing
WHERE k.role IS NULL OR (k.role NOT LIKE 'identifier%' AND k.role <> 'ignore');

CREATE OR REPLACE TEMP TABLE records AS
WITH no_readings AS (
    SELECT m.source_file, m.source_line, m.community_id, m.platform, m.vendor_model, m.device_id, m.event_ts,
        m.received_ts, NULL::VARCHAR AS vendor_key, NULL::VARCHAR AS raw_value, NULL::VARCHAR AS metric,
        NULL::DOUBLE AS value, NULL::VARCHAR AS unit, NULL::VARCHAR AS quality_flag, NULL::VARCHAR AS subject_token,
        m.registered, coalesce(m.msg_reason, 'missing_payload') AS reason,
        CASE WHEN m.msg_reason = 'unreadable_file' THEN m.file_error
             WHEN m.msg_reason = 'malformed_json' THEN 'line is not valid JSON'
             WHEN m.msg_reason = 'unknown_envelope' THEN 'neither a CTWing, an IoTDA nor a ThingsBoard envelope'
             WHEN m.msg_reason = 'unsupported_message_type' THEN 'a platform message that carries no telemetry'
             WHEN m.msg_reason = 'undecodable_payload' THEN 'transparent payload is not valid base64/hex or is shorter than the codec'
             WHEN m.msg_reason = 'no_codec' THEN 'no codec declared for this product model (vendors/codecs.csv)'
             ELSE 'message carries no readings' END AS detail,
        false AS dup_in_file, false AS dup_cross_file
    FROM msgs m
    WHERE NOT EXISTS (SELECT 1 FROM raw_readings r WHERE r.lid = m.lid AND r.svc_idx = m.svc_idx)
),
valued AS (
    SELECT r.* EXCLUDE (lid, svc_idx), m.source_file, m.source_line, m.community_id, m.platform, m.vendor_model,
        m.device_id, m.event_ts, m.received_ts, m.registered, m.msg_reason, m.subject_raw, m.dup_in_file,
        mt.min_value, mt.max_value, mt.unit,
        CASE WHEN r.role = 'code' THEN r.code_value
             WHEN r.is_bool THEN CAST(r.raw_value = 'true' AS DOUBLE) ELSE TRY_CAST(r.raw_value AS DOUBLE) END
            * coalesce(r.scale, 1) AS v0
    FROM raw_readings r JOIN msgs m USING (lid, svc_idx) LEFT JOIN metrics mt USING (metric)
),
checked AS (
    SELECT *,
        -- NB-IoT modules often drop RSRP's sign (114 for -114 dBm): restore it when that lands in range
        metric = 'rsrp_dbm' AND v0 > 0 AND -v0 BETWEEN min_value AND max_value AS sign_restored
    FROM valued
),
reading_level AS (
    SELECT c.source_file, c.source_line, c.community_id, c.platform, c.vendor_model, c.device_id, c.event_ts,
        c.received_ts, c.vendor_key, c.raw_value, c.metric,
        CASE WHEN c.sign_restored THEN -c.v0 ELSE c.v0 END AS value,
        c.unit,
        CASE WHEN c.sign_restored THEN 'rsrp_sign_restored' ELSE 'ok' END AS quality_flag,
        t.subject_token, c.registered,
        CASE
            WHEN c.msg_reason IS NOT NULL THEN c.msg_reason
            WHEN c.role = 'code' AND c.metric IS NULL THEN 'unknown_code'
            WHEN c.metric IS NULL THEN 'unknown_metric'
            WHEN c.v0 IS NULL THEN 'non_numeric_value'
            WHEN NOT c.sign_restored AND (c.v0 < c.min_value OR c.v0 > c.max_value) THEN 'out_of_range'
        END AS reason,
        CASE
            WHEN c.msg_reason IS NOT NULL THEN NULL
            WHEN c.role = 'code' AND c.metric IS NULL THEN 'vendor code not in vendors/vendor_codes.csv'
            WHEN c.metric IS NULL THEN 'vendor key not in vendors/vendor_keys.csv for this platform and model'
            WHEN c.v0 IS NULL THEN 'value is not numeric'
            WHEN NOT c.sign_restored AND (c.v0 < c.min_value OR c.v0 > c.max_value)
                THEN format('{}={} outside [{}, {}] {}', c.metric, c.v0, c.min_value, c.max_value, c.unit)
        END AS detail,
        c.dup_in_file, false AS dup_cross_file
    FROM checked c LEFT JOIN subject_tokens t USING (subject_raw)
)
SELECT * FROM no_readings
UNION ALL
SELECT * FROM reading_level;
