-- Parse one batch of landing lines (table `lines`: source_file, source_line, line) into readings.
-- Inputs: `registry` (device_id, ...), `vendor_keys`, `metrics`; placeholders @day_start@, @day_end@.
-- Each line is parsed once into a struct covering both envelope shapes (json_transform), not once per field.

CREATE OR REPLACE TEMP TABLE env AS
WITH v AS (SELECT *, json_valid(line) AS valid_json FROM lines),
s AS (
    SELECT source_file, source_line, valid_json,
        regexp_extract(source_file, '([0-9]{12})-[0-9]{4}', 1) AS community_id,
        CASE WHEN valid_json THEN json_transform(line, '{
            "deviceId": "VARCHAR", "timestamp": "VARCHAR", "messageType": "VARCHAR",
            "payload": {"serviceData": "JSON"},
            "event_time": "VARCHAR",
            "notify_data": {"header": {"device_id": "VARCHAR"},
                            "body": {"services": [{"event_time": "VARCHAR", "properties": "JSON"}]}}
        }') END AS s
    FROM v
)
SELECT *,
    CASE
        WHEN NOT valid_json THEN NULL
        WHEN s.messageType = 'dataReport' OR s.payload IS NOT NULL THEN 'ctwing'
        WHEN s.notify_data IS NOT NULL THEN 'iotda'
    END AS platform
FROM s;

-- one row per platform message (an IoTDA envelope may carry several services)
CREATE OR REPLACE TEMP TABLE msgs AS
WITH ctwing AS (
    SELECT source_file, source_line, community_id, platform, 0 AS svc_idx,
        nullif(s.deviceId, '') AS device_id,
        s.timestamp AS ts_raw,
        to_timestamp(TRY_CAST(s.timestamp AS BIGINT) / 1000.0) AS event_ts,
        CAST(NULL AS TIMESTAMPTZ) AS received_ts,
        s.payload.serviceData AS props
    FROM env WHERE platform = 'ctwing'
),
iotda_svc AS (
    SELECT source_file, source_line, community_id, platform,
        nullif(s.notify_data.header.device_id, '') AS device_id,
        TRY_STRPTIME(s.event_time, '%Y%m%dT%H%M%SZ') AS recv_naive,
        CASE WHEN len(s.notify_data.body.services) > 0 THEN s.notify_data.body.services
             ELSE [NULL] END AS services
    FROM env WHERE platform = 'iotda'
),
iotda AS (
    SELECT source_file, source_line, community_id, platform, i - 1 AS svc_idx, device_id,
        services[i].event_time AS ts_raw,
        timezone('UTC', TRY_STRPTIME(services[i].event_time, '%Y%m%dT%H%M%SZ')) AS event_ts,
        timezone('UTC', recv_naive) AS received_ts,
        services[i].properties AS props
    FROM iotda_svc, range(1, len(services) + 1) AS r(i)
)
SELECT *,
    md5(source_file || ':' || source_line || ':' || svc_idx) AS message_id,
    md5(coalesce(device_id, '') || '|' || coalesce(ts_raw, '') || '|' || coalesce(props::VARCHAR, '')) AS dedup_key
FROM (SELECT * FROM ctwing UNION ALL BY NAME SELECT * FROM iotda);

-- message-level verdicts, first failing reason wins
CREATE OR REPLACE TEMP TABLE msg_verdict AS
SELECT m.*,
    CASE
        WHEN m.device_id IS NULL THEN 'missing_device_id'
        WHEN m.ts_raw IS NULL THEN 'missing_timestamp'
        WHEN m.event_ts IS NULL THEN 'bad_timestamp'
        WHEN m.props IS NULL OR json_type(m.props) <> 'OBJECT' THEN 'missing_payload'
        WHEN r.device_id IS NULL THEN 'unknown_device'
        WHEN m.received_ts IS NOT NULL
             AND m.event_ts - m.received_ts BETWEEN INTERVAL '7 hours 30 minutes' AND INTERVAL '8 hours 30 minutes'
             THEN 'timezone_confusion'
        WHEN m.event_ts > TIMESTAMPTZ '@day_end@' + INTERVAL '10 minutes'
             OR (m.received_ts IS NOT NULL AND m.event_ts > m.received_ts + INTERVAL '10 minutes')
             THEN 'future_timestamp'
        WHEN m.event_ts < TIMESTAMPTZ '@day_start@' OR m.event_ts >= TIMESTAMPTZ '@day_end@'
             THEN 'outside_partition_day'
    END AS msg_reason
FROM msgs m LEFT JOIN registry r USING (device_id);

-- explode properties into readings; identifier properties become the subject, not readings
CREATE OR REPLACE TEMP TABLE readings AS
WITH kv AS (
    SELECT v.* EXCLUDE (props),
        unnest(map_entries(json_transform(props, '"MAP(VARCHAR, JSON)"'))) AS e
    FROM msg_verdict v
    WHERE props IS NOT NULL AND json_type(props) = 'OBJECT'
)
SELECT kv.* EXCLUDE (e), e.key AS vendor_key, e.value AS raw_json,
    CASE WHEN json_type(e.value) = 'VARCHAR' THEN e.value->>'$' ELSE e.value::VARCHAR END AS raw_value,
    k.metric, k.scale, k.role
FROM kv LEFT JOIN vendor_keys k ON k.platform = kv.platform AND k.vendor_key = e.key;

CREATE OR REPLACE TEMP TABLE subjects AS
SELECT message_id, any_value(raw_value) AS subject_raw
FROM readings WHERE role = 'identifier:person' GROUP BY message_id;
