-- One batch of landing lines (relation `lines_df`: lid, source_file, source_line, community_id, line, file_error;
-- lid numbers the batch's lines, the key that ties a reading to its message)
-- -> table `msgs`, one row per platform message (or per service / gateway entry inside one) with its
-- message-level verdict. A file that could not be read is one row (line NULL, source_line 0, file_error the
-- detail): one message, `unreadable_file`.
-- Envelopes (docs/vendors/telemetry.md): CTWing dataReport (payload.serviceData thing model, payload.APPdata /
-- payload.msg transparent bytes, or a flat payload) and deviceOnlineOfflineReport; IoTDA device.property and
-- device.status; ThingsBoard device telemetry (ts/values, array of them, or flat k/v at server time) and gateway
-- telemetry, as recorded by the receiver under landing/telemetry/<day>/thingsboard/ ({topic, device,
-- received_ms, payload}). Every time goes through kernel/times.sql (neuron_time).
-- Status messages become one property (`eventType` / `status`) mapped through vendor_codes.csv.
-- Inputs: `registry`, `models`, `codec_len`; placeholders @day_start@, @day_end@, @tz@, @subject_expr@.
CREATE OR REPLACE TEMP TABLE msgs AS
WITH parsed AS (
    SELECT lid, source_file, source_line, community_id, file_error, valid_json,
        split_part(source_file, '/', 3) AS folder,
        CASE WHEN valid_json THEN json_transform(line, '{
            "deviceId": "VARCHAR", "timestamp": "VARCHAR", "messageType": "VARCHAR", "productId": "VARCHAR",
            "eventType": "VARCHAR", "payload": "JSON",
            "resource": "VARCHAR", "event_time": "VARCHAR", "event_time_ms": "VARCHAR",
            "notify_data": {"header": {"device_id": "VARCHAR"},
                            "body": {"services": [{"event_time": "VARCHAR", "properties": "JSON"}],
                                     "status": "VARCHAR"}},
            "topic": "VARCHAR", "device": "VARCHAR", "received_ms": "VARCHAR"
        }') END AS s
    -- (IoTDA's body is typed here with its services and status, so the line is the only JSON an IoTDA message
    -- parses; json_transform gives a nested field exactly what it gave the body parsed again:
    -- test_message_statement.py)
    -- (TRY(json_transform(...)) would parse once, but falls back to row-at-a-time on every vector that
    -- holds a malformed line, which is most vectors: measured 3x slower than validating first)
    FROM (SELECT *, json_valid(line) AS valid_json FROM lines_df)
),
-- materialised once: the envelope's kind is decided here, not again in each of the five branches reading it
typed AS MATERIALIZED (
    SELECT *,
        CASE
            WHEN file_error IS NOT NULL THEN 'unreadable_file'
            WHEN NOT valid_json THEN 'malformed_json'
            WHEN folder = 'thingsboard' AND s.topic = 'v1/gateway/telemetry' THEN 'tb_gateway'
            WHEN folder = 'thingsboard' AND s.topic IS NOT NULL THEN 'tb_device'
            WHEN s.messageType = 'deviceOnlineOfflineReport' THEN 'ctwing_status'
            WHEN s.messageType = 'dataReport' OR (s.messageType IS NULL AND s.payload IS NOT NULL) THEN 'ctwing'
            WHEN s.messageType IS NOT NULL THEN 'unsupported_message_type'
            WHEN s.resource = 'device.status' THEN 'iotda_status'
            WHEN s.notify_data IS NOT NULL AND coalesce(s.resource, 'device.property') = 'device.property' THEN 'iotda'
            WHEN s.notify_data IS NOT NULL THEN 'unsupported_message_type'
            ELSE 'unknown_envelope'
        END AS kind
    FROM parsed
),
-- one row per reading group: (device, raw event time, properties or transparent bytes)
services AS (
    SELECT lid, source_file, source_line, 0 AS svc_idx, community_id, file_error, kind, NULL AS device_id,
        NULL AS product_id, NULL AS received_raw, NULL AS ts_raw, NULL::JSON AS props,
        NULL AS codec_src, NULL AS codec_enc
    FROM typed WHERE kind IN ('unreadable_file', 'malformed_json', 'unknown_envelope', 'unsupported_message_type')
    UNION ALL
    SELECT lid, source_file, source_line, 0, community_id, file_error, kind, nullif(s.deviceId, ''), s.productId, NULL,
        s.timestamp,
        CASE WHEN kind = 'ctwing_status' THEN json_object('eventType', s.eventType)
             WHEN has_sd THEN json_extract(s.payload, '$.serviceData')
             WHEN has_app OR has_msg THEN NULL
             ELSE s.payload END,
        CASE WHEN kind = 'ctwing' AND (has_app OR has_msg) THEN coalesce(json_extract_string(s.payload, '$.APPdata'),
                                                                          json_extract_string(s.payload, '$.msg')) END,
        CASE WHEN kind <> 'ctwing' THEN NULL WHEN has_app THEN 'base64' WHEN has_msg THEN 'hex' END
    FROM (
        -- the payload's keys, read once (a key present with a JSON null counts as present, as json_exists does)
        SELECT *, coalesce(list_contains(k, 'serviceData'), false) AS has_sd,
            coalesce(list_contains(k, 'APPdata'), false) AS has_app, coalesce(list_contains(k, 'msg'), false) AS has_msg
        FROM (SELECT *, json_keys(s.payload) AS k FROM typed WHERE kind IN ('ctwing', 'ctwing_status'))
    )
    UNION ALL
    SELECT lid, source_file, source_line, svc_idx, community_id, file_error, kind, device_id, NULL, received_raw,
        svc.event_time, svc.properties, NULL, NULL
    FROM (
        SELECT *, unnest(svcs) AS svc, generate_subscripts(svcs, 1) - 1 AS svc_idx
        FROM (
            SELECT lid, source_file, source_line, community_id, file_error, kind,
                nullif(s.notify_data.header.device_id, '') AS device_id,
                coalesce(s.event_time, s.event_time_ms) AS received_raw,
                CASE WHEN kind = 'iotda_status'
                     THEN [{'event_time': coalesce(s.event_time, s.event_time_ms),
                            'properties': json_object('status', s.notify_data.body.status)}]
                     ELSE coalesce(nullif(s.notify_data.body.services, []), [NULL]) END AS svcs
            FROM typed WHERE kind IN ('iotda', 'iotda_status')
        )
    )
    UNION ALL
    -- ThingsBoard device telemetry: {ts, values}, [{ts, values}, ...] or flat k/v (server time)
    SELECT lid, source_file, source_line, svc_idx, community_id, file_error, kind, device_id, NULL, received_raw,
        coalesce(json_extract_string(e, '$.ts'), received_raw),
        CASE WHEN json_exists(e, '$.values') THEN json_extract(e, '$.values') ELSE e END, NULL, NULL
    FROM (
        SELECT *, unnest(entries) AS e, generate_subscripts(entries, 1) - 1 AS svc_idx
        FROM (
            SELECT lid, source_file, source_line, community_id, file_error, kind, nullif(s.device, '') AS device_id,
                s.received_ms AS received_raw,
                CASE WHEN json_type(s.payload) = 'ARRAY' THEN coalesce(nullif(json_transform(s.payload, '["JSON"]'), []), [NULL])
                     ELSE [s.payload] END AS entries
            FROM typed WHERE kind = 'tb_device'
        )
    )
    UNION ALL
    -- ThingsBoard gateway telemetry: {"<device name>": [{ts, values}, ...], ...}
    SELECT lid, source_file, source_line, dev_idx * 1000 + svc_idx, community_id, file_error, kind, nullif(device_id, ''),
        NULL, received_raw, coalesce(json_extract_string(e, '$.ts'), received_raw),
        CASE WHEN json_exists(e, '$.values') THEN json_extract(e, '$.values') ELSE e END, NULL, NULL
    FROM (
        SELECT *, unnest(dev.value) AS e, generate_subscripts(dev.value, 1) - 1 AS svc_idx, dev.key AS device_id
        FROM (
            SELECT *, unnest(devs) AS dev, generate_subscripts(devs, 1) - 1 AS dev_idx
            FROM (
                SELECT lid, source_file, source_line, community_id, file_error, kind, s.received_ms AS received_raw,
                    coalesce(nullif(map_entries(json_transform(s.payload, '"MAP(VARCHAR, JSON[])"')), []),
                             [{'key': NULL, 'value': [NULL]}]) AS devs
                FROM typed WHERE kind = 'tb_gateway'
            )
        )
    )
),
decoded AS (
    SELECT sv.*,
        CASE WHEN sv.kind IN ('ctwing', 'ctwing_status') THEN 'ctwing'
             WHEN sv.kind IN ('iotda', 'iotda_status') THEN 'iotda'
             WHEN sv.kind IN ('tb_device', 'tb_gateway') THEN 'thingsboard' END AS platform,
        CASE WHEN sv.kind IN ('ctwing_status', 'iotda_status') THEN 'status'
             WHEN sv.kind IN ('ctwing', 'iotda', 'tb_device', 'tb_gateway') THEN 'report' END AS message_kind,
        neuron_time(sv.ts_raw, '@tz@') AS event_ts,
        neuron_time(sv.received_raw, '@tz@') AS received_ts,
        CASE WHEN sv.codec_enc = 'base64' AND length(sv.codec_src) % 4 = 0
                  AND regexp_full_match(sv.codec_src, '[A-Za-z0-9+/]*={0,2}') THEN from_base64(sv.codec_src)
             WHEN sv.codec_enc = 'hex' AND regexp_full_match(sv.codec_src, '([0-9A-Fa-f]{2})*') THEN unhex(sv.codec_src)
        END AS payload_bytes
    FROM services sv
),
verdict AS (
    SELECT m.*, r.device_id IS NOT NULL AS registered,
        -- the product model: the registry's, else the one the CTWing productId names
        coalesce(r.vendor_model, pm.vendor_model) AS vendor_model
    FROM decoded m
    LEFT JOIN (SELECT device_id, any_value(vendor_model) AS vendor_model FROM registry GROUP BY 1) r USING (device_id)
    LEFT JOIN models pm ON pm.platform = m.platform AND pm.product_id = m.product_id
)
SELECT m.* EXCLUDE (kind, file_error, product_id, received_raw, codec_enc), m.file_error,
    @subject_expr@ AS subject_raw, false AS dup_in_file,
    coalesce(m.props::VARCHAR, m.codec_src) AS body,
    CASE
        WHEN m.kind IN ('unreadable_file', 'malformed_json', 'unknown_envelope', 'unsupported_message_type') THEN m.kind
        WHEN m.device_id IS NULL THEN 'missing_device_id'
        WHEN m.ts_raw IS NULL THEN 'missing_timestamp'
        WHEN m.event_ts IS NULL THEN 'bad_timestamp'
        WHEN m.codec_src IS NOT NULL AND m.payload_bytes IS NULL THEN 'undecodable_payload'
        WHEN m.codec_src IS NULL AND (m.props IS NULL OR json_type(m.props) <> 'OBJECT') THEN 'missing_payload'
        WHEN NOT m.registered THEN 'unknown_device'
        WHEN m.codec_src IS NOT NULL AND c.needs IS NULL THEN 'no_codec'
        WHEN m.codec_src IS NOT NULL AND octet_length(m.payload_bytes) < c.needs THEN 'undecodable_payload'
        WHEN m.received_ts IS NOT NULL
             AND m.event_ts - m.received_ts BETWEEN INTERVAL '7 hours 30 minutes' AND INTERVAL '8 hours 30 minutes'
             THEN 'timezone_confusion'
        WHEN m.event_ts > TIMESTAMPTZ '@day_end@' + INTERVAL '10 minutes'
             OR (m.received_ts IS NOT NULL AND m.event_ts > m.received_ts + INTERVAL '10 minutes')
             THEN 'future_timestamp'
        WHEN m.event_ts < TIMESTAMPTZ '@day_start@' OR m.event_ts >= TIMESTAMPTZ '@day_end@'
             THEN 'outside_partition_day'
    END AS msg_reason
FROM verdict m LEFT JOIN codec_len c ON c.platform = m.platform AND c.vendor_model = m.vendor_model;

-- a platform retry inside one delivery repeats the whole message: keep its first line only. A hash aggregate
-- finds the accepted messages a file repeats (few), and only their later copies are flagged (a window over every
-- message sorted the whole batch by its body: 3x the time). A (file, svc_idx) has one message per line, so "a
-- later line of the same key" is exactly row_number() > 1 in source_line order; keys compare as the window's
-- partitions do (NULL equals NULL), which tests/assets/telemetry/test_retry_flag.py checks against the window.
CREATE OR REPLACE TEMP TABLE msg_retries AS
WITH accepted AS (
    SELECT lid, svc_idx, source_file, source_line, device_id, ts_raw, body FROM msgs WHERE msg_reason IS NULL
),
repeated AS (
    SELECT source_file, svc_idx, device_id, ts_raw, body, min(source_line) AS first_line
    FROM accepted GROUP BY ALL HAVING count(*) > 1
)
SELECT a.lid, a.svc_idx
FROM accepted a JOIN repeated r ON a.source_file = r.source_file AND a.svc_idx = r.svc_idx
    AND a.device_id IS NOT DISTINCT FROM r.device_id AND a.ts_raw IS NOT DISTINCT FROM r.ts_raw
    AND a.body IS NOT DISTINCT FROM r.body
WHERE a.source_line > r.first_line;

UPDATE msgs SET dup_in_file = true FROM msg_retries r WHERE msgs.lid = r.lid AND msgs.svc_idx = r.svc_idx;
