-- Runs after bronze_parse.sql once the subject tokens are joined in (table `subject_tokens`).
-- Output: `records`, one row per landed record (reason NULL = accepted), and `accepted`.
CREATE OR REPLACE TEMP TABLE records AS
WITH line_level AS (
    SELECT source_file, source_line, community_id, platform,
        NULL::VARCHAR AS device_id, NULL::TIMESTAMPTZ AS event_ts, NULL::TIMESTAMPTZ AS received_ts,
        NULL::VARCHAR AS vendor_key, NULL::VARCHAR AS raw_value, NULL::VARCHAR AS metric, NULL::DOUBLE AS value,
        NULL::VARCHAR AS message_id, NULL::VARCHAR AS dedup_key, NULL::VARCHAR AS subject_token,
        CASE WHEN NOT valid_json THEN 'malformed_json' ELSE 'unknown_envelope' END AS reason,
        CASE WHEN NOT valid_json THEN 'line is not valid JSON' ELSE 'neither a CTWing nor an IoTDA envelope' END AS detail
    FROM env WHERE NOT valid_json OR platform IS NULL
),
no_readings AS (
    SELECT v.source_file, v.source_line, v.community_id, v.platform, v.device_id, v.event_ts, v.received_ts,
        NULL, NULL, NULL, NULL, v.message_id, v.dedup_key, NULL,
        coalesce(v.msg_reason, 'missing_payload'), 'message carries no readings'
    FROM msg_verdict v
    WHERE NOT EXISTS (SELECT 1 FROM readings r
                      WHERE r.message_id = v.message_id AND r.role IS DISTINCT FROM 'identifier:person')
),
valued AS (
    SELECT r.*, t.subject_token,
        CASE WHEN json_type(r.raw_json) = 'BOOLEAN' THEN CAST(r.raw_value = 'true' AS DOUBLE)
             ELSE TRY_CAST(r.raw_value AS DOUBLE) END * r.scale AS v0
    FROM readings r
    LEFT JOIN subjects s USING (message_id)
    LEFT JOIN subject_tokens t USING (subject_raw)
    WHERE r.role IS DISTINCT FROM 'identifier:person'
),
checked AS (
    SELECT v.*, mt.min_value, mt.max_value, mt.unit,
        -- NB-IoT modules often drop RSRP's sign (114 for -114 dBm): restore it when that lands in range
        CASE WHEN v.metric = 'rsrp_dbm' AND v.v0 > 0 AND -v.v0 BETWEEN mt.min_value AND mt.max_value
             THEN -v.v0 ELSE v.v0 END AS value,
        CASE WHEN v.metric = 'rsrp_dbm' AND v.v0 > 0 AND -v.v0 BETWEEN mt.min_value AND mt.max_value
             THEN 'rsrp_sign_restored' ELSE 'ok' END AS quality_flag
    FROM valued v LEFT JOIN metrics mt USING (metric)
),
reading_level AS (
    SELECT source_file, source_line, community_id, platform, device_id, event_ts, received_ts,
        vendor_key, raw_value, metric, value, message_id, dedup_key, subject_token,
        CASE
            WHEN msg_reason IS NOT NULL THEN msg_reason
            WHEN metric IS NULL THEN 'unknown_metric'
            WHEN value IS NULL THEN 'non_numeric_value'
            WHEN value < min_value OR value > max_value THEN 'out_of_range'
        END AS reason,
        CASE
            WHEN msg_reason IS NOT NULL THEN NULL
            WHEN metric IS NULL THEN 'vendor key not in the vocabulary'
            WHEN value IS NULL THEN 'value is not numeric'
            WHEN value < min_value OR value > max_value
                THEN format('{}={} outside [{}, {}] {}', metric, raw_value, min_value, max_value, unit)
        END AS detail,
        unit, quality_flag
    FROM checked
)
SELECT *, NULL::VARCHAR AS unit, NULL::VARCHAR AS quality_flag FROM line_level
UNION ALL SELECT *, NULL, NULL FROM no_readings
UNION ALL SELECT * FROM reading_level;

CREATE OR REPLACE TEMP TABLE accepted AS
SELECT *,
    row_number() OVER (PARTITION BY source_file, dedup_key, vendor_key ORDER BY source_line) > 1 AS dup_in_file
FROM records WHERE reason IS NULL;
