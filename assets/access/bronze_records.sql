-- `acs_lines` + `acs_events` -> table `records`: one row per landed record (an event, a line that yields
-- none, or a file that could not be read), reason NULL = accepted; `dup_cross_file` is set later for a
-- rejected line repeating one of an earlier file (kernel.ndjson.RepeatedRejections).
-- Inputs: `doors` (registry view), `event_types`, `verify_modes`, `person_tokens`, `card_tokens`; placeholders
-- @day_start@, @day_end@, @statuses@ and @conventions@ (SQL lists from warehouse.domains.access: a status or
-- door convention the silver suite would reject is quarantined here, so one odd vendor value never blocks the
-- day's exports).
CREATE OR REPLACE TEMP TABLE records AS
WITH j AS (
    SELECT t.*, d.door_id IS NOT NULL AS known_door, d.vendor_convention, et.event_kind, et.result, vm.verify_mode,
        -- a missing, unparseable or sentinel ("1900-01-00T00:00:00.000+08:00") happenTime: use the receive time
        t.happen_ts >= TIMESTAMPTZ '2000-01-01 00:00:00+00' AS happen_ok
    FROM acs_events t
    LEFT JOIN (SELECT DISTINCT ON (door_id) door_id, vendor_convention FROM doors) d USING (door_id)
    LEFT JOIN event_types et USING (event_type)
    LEFT JOIN verify_modes vm ON vm.raw = t.mode_raw
),
typed AS (
    SELECT j.*,
        CASE WHEN happen_ok THEN happen_ts ELSE received_ts END AS event_ts,
        CASE WHEN NOT coalesce(happen_ok, false) THEN 'receive_time'
             WHEN contains(happen_raw, ' ') THEN 'repaired' ELSE 'ok' END AS time_quality,
        CASE vendor_convention
            WHEN 'inout_10' THEN CASE inout_raw WHEN '1' THEN 'in' WHEN '0' THEN 'out' ELSE 'unknown' END
            WHEN 'inout_12' THEN CASE inout_raw WHEN '1' THEN 'in' WHEN '2' THEN 'out' ELSE 'unknown' END
            ELSE 'unknown'
        END AS direction,
        CASE user_raw
            WHEN '1' THEN 'resident' WHEN '2' THEN 'visitor' WHEN '3' THEN 'blacklist' WHEN '4' THEN 'staff'
            -- UserType 0 on a verification nobody could be matched to is a stranger
            WHEN '0' THEN CASE WHEN person_raw IS NULL AND event_kind IN ('pass', 'denied') THEN 'stranger'
                               ELSE 'unknown' END
            ELSE 'unknown'
        END AS user_type
    FROM j
),
verdict AS (
    SELECT typed.*,
        CASE
            WHEN event_id IS NULL THEN 'missing_event_id'
            WHEN event_type IS NULL OR event_kind IS NULL THEN 'unknown_event_type'
            WHEN door_id IS NULL THEN 'missing_door'
            WHEN NOT known_door THEN 'unknown_door'
            -- a registry convention we cannot read would silently turn every direction into 'unknown'
            WHEN NOT coalesce(list_contains(@conventions@, vendor_convention), false) THEN 'unknown_convention'
            WHEN event_ts IS NULL THEN 'missing_timestamp'
            WHEN status IS NULL OR NOT list_contains(@statuses@, status) THEN 'bad_status'
            WHEN event_kind <> 'door_forced' AND verify_mode IS NULL THEN 'unknown_verify_mode'
            WHEN event_ts < TIMESTAMPTZ '@day_start@' OR event_ts >= TIMESTAMPTZ '@day_end@'
                THEN 'outside_partition_day'
        END AS reason
    FROM typed
)
SELECT v.event_id, v.community_id, v.door_id, v.event_type, v.event_kind, v.event_ts, v.received_ts,
    v.time_quality, v.direction, CASE WHEN v.event_kind <> 'door_forced' THEN v.verify_mode END AS verify_mode,
    v.result, v.user_type, p.person_token, c.card_token, v.status, v.send_ts, v.event_index,
    v.source_file, v.source_line, v.reason,
    CASE v.reason
        WHEN 'unknown_event_type' THEN 'eventType not in assets/access/event_types.csv'
        WHEN 'unknown_door' THEN 'srcIndex not in the door registry'
        WHEN 'unknown_convention' THEN 'the door''s registry vendor_convention is not a known ExtEventInOut convention'
        WHEN 'bad_status' THEN 'status missing, not an integer or not a known ISC event status'
        WHEN 'missing_event_id' THEN 'no eventId'
        WHEN 'missing_door' THEN 'no srcIndex'
        WHEN 'missing_timestamp' THEN 'no usable happenTime and no ExtReceiveTime'
        WHEN 'unknown_verify_mode' THEN 'currentVerifyMode not in assets/access/verify_modes.csv'
        WHEN 'outside_partition_day' THEN 'event time outside the partition day'
    END AS detail,
    v.reason IS NULL AND row_number() OVER (
        PARTITION BY v.source_file, v.event_id, v.status, v.reason IS NULL ORDER BY v.source_line, v.event_index) > 1
        AS dup_in_file,
    false AS dup_cross_file
FROM verdict v
LEFT JOIN person_tokens p USING (person_raw)
LEFT JOIN card_tokens c USING (card_raw)
UNION ALL
SELECT NULL, community_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, send_ts,
    NULL, source_file, source_line, line_reason,
    CASE line_reason WHEN 'unreadable_file' THEN file_error
                     WHEN 'malformed_json' THEN 'line is not valid JSON (e.g. truncated)'
                     WHEN 'unknown_envelope' THEN 'not an ISC OnEventNotify envelope'
                     ELSE 'envelope carries no events' END,
    false, false
FROM acs_lines WHERE line_reason IS NOT NULL;
