-- `acs_lines` + `acs_events` -> table `records`: one row per landed record (an event, a line that yields
-- none, or a file that could not be read), reason NULL = accepted; `routed` marks an accepted event of another
-- ability or class (field detection, people counting, video...) that goes to bronze/access_other_events as a
-- count, never to the door tables and never to quarantine; `dup_cross_file` is set later for a rejected line
-- repeating one of an earlier file (kernel.ndjson.RepeatedRejections).
-- Inputs: `doors` (registry view), `vendors`, `event_types`, `verify_modes`, `user_types`, `person_tokens`,
-- `card_tokens`; placeholders @day_start@, @day_end@, @tz@, @statuses@ and @conventions@ (SQL lists from
-- assets.access.datasets: a status or door convention the silver suite would reject is quarantined here, so one
-- odd vendor value never blocks the day's exports).
CREATE OR REPLACE TEMP TABLE records AS
WITH j AS (
    SELECT ae.*, d.door_id IS NOT NULL AS known_door, d.vendor_convention,
        -- the exact eventType row, else the default row of the envelope's ability
        coalesce(et.event_class, ab.event_class) AS mapped_class,
        et.event_kind, et.result, et.verify_mode AS type_mode, vm.verify_mode AS explicit_mode,
        ut.user_type AS mapped_user,
        neuron_event_time(ae.happen_raw, ae.received_ts, '@tz@', ae.max_clock_skew) AS et_
    FROM acs_events ae
    LEFT JOIN (SELECT DISTINCT ON (door_id) door_id, vendor_convention FROM doors) d USING (door_id)
    LEFT JOIN event_types et ON et.vendor = ae.vendor AND et.event_type = ae.event_type
    LEFT JOIN (SELECT DISTINCT ON (vendor, ability) * FROM event_types WHERE event_type IS NULL) ab
        ON ab.vendor = ae.vendor AND ab.ability = ae.ability
    LEFT JOIN verify_modes vm ON vm.vendor = ae.vendor AND vm.raw = ae.mode_raw
    LEFT JOIN user_types ut ON ut.vendor = ae.vendor AND ut.raw = ae.user_raw
),
typed AS (
    SELECT j.*,
        -- the class decides; an unmapped eventType is a door record (and a vocabulary gap) only on a door ability
        CASE WHEN mapped_class = 'door' THEN false WHEN mapped_class IS NOT NULL THEN true
             ELSE NOT door_ability END AS routed,
        et_.ts AS event_ts, et_.quality AS time_quality,
        CASE vendor_convention
            WHEN 'inout_10' THEN CASE inout_raw WHEN '1' THEN 'in' WHEN '0' THEN 'out' ELSE 'unknown' END
            WHEN 'inout_12' THEN CASE inout_raw WHEN '1' THEN 'in' WHEN '2' THEN 'out' ELSE 'unknown' END
            ELSE 'unknown'
        END AS direction,
        -- an explicit currentVerifyMode wins; ISC platform pushes carry none, and the eventType implies the mode
        CASE WHEN mode_raw IS NOT NULL THEN explicit_mode ELSE type_mode END AS verify_mode,
        -- an absent or unknown UserType is unknown (allowed); a verification nobody could be matched to (no
        -- person behind it, and no UserType saying who it was) is a stranger
        CASE WHEN coalesce(mapped_user, 'unknown') = 'unknown' AND person_raw IS NULL
                  AND event_kind IN ('pass', 'denied') THEN 'stranger'
             ELSE coalesce(mapped_user, 'unknown') END AS user_type
    FROM j
),
verdict AS (
    SELECT typed.*,
        CASE
            WHEN routed THEN NULL
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
        WHEN 'unknown_verify_mode' THEN CASE WHEN v.mode_raw IS NULL
            THEN 'no currentVerifyMode and the eventType implies no verify mode (assets/access/event_types.csv)'
            ELSE 'currentVerifyMode not in assets/access/verify_modes.csv' END
        WHEN 'outside_partition_day' THEN 'event time outside the partition day'
    END AS detail,
    v.reason IS NULL AND (NOT v.routed OR v.event_id IS NOT NULL) AND row_number() OVER (
        PARTITION BY v.source_file, v.event_id, v.status, v.reason IS NULL, v.routed
        ORDER BY v.source_line, v.event_index) > 1 AS dup_in_file,
    false AS dup_cross_file,
    v.routed, v.vendor, v.ability, CASE WHEN v.routed THEN coalesce(v.mapped_class, 'unmapped') END AS event_class,
    v.src_type
FROM verdict v
LEFT JOIN person_tokens p ON NOT v.routed AND p.person_raw = v.person_raw
LEFT JOIN card_tokens c ON NOT v.routed AND c.card_raw = v.card_raw
UNION ALL
SELECT NULL, community_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, send_ts,
    NULL, source_file, source_line, line_reason,
    CASE line_reason WHEN 'unreadable_file' THEN file_error
                     WHEN 'malformed_json' THEN 'line is not valid JSON (e.g. truncated)'
                     WHEN 'unknown_envelope' THEN 'not an envelope of a vendor in assets/access/vendors.csv'
                     ELSE 'envelope carries no events' END,
    false, false, false, vendor, ability, NULL, NULL
FROM acs_lines WHERE line_reason IS NOT NULL;
