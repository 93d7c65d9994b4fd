-- One batch of landing lines (relation `lines_df`: source_file, source_line, community_id, line, file_error)
-- -> table `msgs`, one row per platform message with its message-level verdict. A file that could not be
-- read is one row (line NULL, source_line 0, file_error the detail): one message, `unreadable_file`.
-- One pass: each line is parsed once into a struct covering both envelope shapes (json_transform), and
-- both shapes are normalised to a list of (event_time, properties) services that is unnested in place.
-- Inputs: `registry`; placeholders @day_start@, @day_end@, @subject_expr@ and @ident_count@
-- (the identifier properties, from vendor_keys.csv).
CREATE OR REPLACE TEMP TABLE msgs AS
WITH parsed AS (
    SELECT source_file, source_line, community_id, file_error, valid_json,
        CASE WHEN valid_json THEN json_transform(line, '{
            "deviceId": "VARCHAR", "timestamp": "VARCHAR", "messageType": "VARCHAR",
            "payload": {"serviceData": "JSON"},
            "event_time": "VARCHAR",
            "notify_data": {"header": {"device_id": "VARCHAR"},
                            "body": {"services": [{"event_time": "VARCHAR", "properties": "JSON"}]}}
        }') END AS s
    -- (TRY(json_transform(...)) would parse once, but falls back to row-at-a-time on every vector that
    -- holds a malformed line, which is most vectors: measured 3x slower than validating first)
    FROM (SELECT *, json_valid(line) AS valid_json FROM lines_df)
),
typed AS (
    SELECT *,
        CASE
            WHEN file_error IS NOT NULL THEN 'unreadable_file'
            WHEN NOT valid_json THEN 'malformed_json'
            WHEN s.messageType = 'dataReport' OR s.payload IS NOT NULL THEN 'ctwing'
            WHEN s.notify_data IS NOT NULL THEN 'iotda'
            ELSE 'unknown_envelope'
        END AS kind
    FROM parsed
),
services AS (
    SELECT source_file, source_line, community_id, file_error, kind,
        CASE kind WHEN 'ctwing' THEN nullif(s.deviceId, '')
                  WHEN 'iotda' THEN nullif(s.notify_data.header.device_id, '') END AS device_id,
        CASE kind WHEN 'iotda' THEN timezone('UTC', TRY_STRPTIME(s.event_time, '%Y%m%dT%H%M%SZ')) END AS received_ts,
        CASE
            WHEN kind = 'ctwing' THEN [{'event_time': s.timestamp, 'properties': s.payload.serviceData}]
            WHEN kind = 'iotda' AND len(s.notify_data.body.services) > 0 THEN s.notify_data.body.services
            ELSE [NULL]
        END AS svcs
    FROM typed
),
m AS (
    SELECT source_file, source_line, community_id, file_error, kind, device_id, received_ts,
        unnest(svcs) AS svc, generate_subscripts(svcs, 1) - 1 AS svc_idx
    FROM services
),
verdict AS (
    SELECT m.source_file, m.source_line, m.svc_idx, m.community_id, m.file_error, m.kind,
        CASE WHEN m.kind IN ('ctwing', 'iotda') THEN m.kind END AS platform,
        m.device_id, m.received_ts,
        m.svc.event_time AS ts_raw,
        CASE m.kind
            WHEN 'ctwing' THEN to_timestamp(TRY_CAST(m.svc.event_time AS BIGINT) / 1000.0)
            WHEN 'iotda' THEN timezone('UTC', TRY_STRPTIME(m.svc.event_time, '%Y%m%dT%H%M%SZ'))
        END AS event_ts,
        m.svc.properties AS props
    FROM m
)
SELECT m.* EXCLUDE (kind),
    @subject_expr@ AS subject_raw,
    CASE WHEN json_type(m.props) = 'OBJECT' THEN len(json_keys(m.props)) - @ident_count@ ELSE 0 END AS n_readings,
    CASE
        WHEN m.kind IN ('unreadable_file', 'malformed_json', 'unknown_envelope') THEN m.kind
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
FROM verdict m LEFT JOIN (SELECT DISTINCT device_id FROM registry) r USING (device_id);

-- a platform retry inside one delivery repeats the whole message: keep its first line only
CREATE OR REPLACE TEMP TABLE msgs AS
SELECT *,
    msg_reason IS NULL AND row_number() OVER (
        PARTITION BY source_file, device_id, ts_raw, props, msg_reason IS NULL ORDER BY source_line) > 1
        AS dup_in_file
FROM msgs;
