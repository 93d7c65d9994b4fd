-- silver/access_events staging for one day: one row per eventId. Re-sends and status updates keep the eventId.
-- Each distinct status of an event is a version, taken from its FIRST delivery (envelope sendTime, then file,
-- line and position). ISC statuses only progress (0, then 1/2 start/stop, then 4/5 linkage result/async image),
-- so the version with the highest status wins. Ordering by status, not by delivery, means a stale re-send of an
-- older status never wins, even when it is the only copy of that status left (its original was truncated) or
-- its sendTime is unparseable (NULL send_ts sorts '-infinity' when picking a version's first delivery).
-- `versions` counts the bronze rows behind each event (versions - 1 are duplicates).
-- Hash aggregates, not windows, and only over the events bronze holds more than once (a few percent: at 600
-- communities 154 k of 3.98 M events); every other row is its event as it stands. The struct aggregates over every
-- event took 26 of the step's 31 s there. test_silver_access_rewrite.py holds this to the one-pass query.
-- Inputs: views `bronze`, `doors`.
WITH repeated AS (
    SELECT event_id FROM bronze GROUP BY event_id HAVING count(*) > 1
),
-- each bronze row as a version (v) and the order of its delivery; not materialised: each branch reads its rows
rows AS NOT MATERIALIZED (
    SELECT event_id, status,
        {'door_id': door_id, 'event_type': event_type, 'event_kind': event_kind, 'event_ts': event_ts,
         'received_ts': received_ts, 'time_quality': time_quality, 'direction': direction,
         'verify_mode': verify_mode, 'result': result, 'user_type': user_type,
         'person_token': person_token, 'card_token': card_token, 'status': status} AS v,
        {'s': coalesce(send_ts, TIMESTAMPTZ '-infinity'), 'f': source_file, 'l': source_line, 'i': event_index}
            AS delivery
    FROM bronze
),
status_versions AS (
    SELECT b.event_id, b.status, count(*) AS copies, arg_min(b.v, b.delivery) AS v
    FROM rows b SEMI JOIN repeated r ON b.event_id IS NOT DISTINCT FROM r.event_id
    GROUP BY b.event_id, b.status
),
latest AS (
    SELECT event_id, sum(copies) AS versions, arg_max(v, status) AS v
    FROM status_versions
    GROUP BY event_id
    UNION ALL
    SELECT b.event_id, 1 AS versions, b.v
    FROM rows b ANTI JOIN repeated r ON b.event_id IS NOT DISTINCT FROM r.event_id
)
SELECT l.event_id, d.community_id, l.v.door_id AS door_id, d.building_id, d.kind AS door_kind, d.gate_name,
    l.v.event_type AS event_type, l.v.event_kind AS event_kind, l.v.event_ts AS event_ts,
    l.v.received_ts AS received_ts, l.v.time_quality AS time_quality, l.v.direction AS direction,
    l.v.verify_mode AS verify_mode, l.v.result AS result, l.v.user_type AS user_type,
    l.v.person_token AS person_token, l.v.card_token AS card_token, l.v.status AS status,
    CAST(l.versions AS INTEGER) AS versions
FROM latest l
JOIN (SELECT DISTINCT ON (door_id) * FROM doors) d ON d.door_id = l.v.door_id
