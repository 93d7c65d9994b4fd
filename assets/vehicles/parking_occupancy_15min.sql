-- Per car park and 15-minute slot: cars present at the slot end, entries and exits within [start, end).
-- ck_<count>: the cell key of each count, the sum of the record keys of the sessions it counts (identity:
-- park_id/parking_serial); a slot where nobody moved keeps its stock's records, so its stock keeps its value.
WITH slots AS (
    SELECT TIMESTAMP '@day@' + to_minutes((15 * i)::BIGINT) AS slot_start,
        TIMESTAMP '@day@' + to_minutes((15 * i + 15)::BIGINT) AS slot_end
    FROM range(96) t(i)
),
s AS (SELECT park_id, timezone('@tz@', enter_ts) AS e, timezone('@tz@', leave_ts) AS l,
             neuron_record_key(park_id || '/' || parking_serial) AS rk FROM sessions)
SELECT p.community_id, p.park_id, sl.slot_start, p.capacity,
    count(s.park_id) FILTER (WHERE s.e < sl.slot_end AND (s.l IS NULL OR s.l >= sl.slot_end))::BIGINT AS occupied,
    greatest(p.capacity - count(s.park_id) FILTER (WHERE s.e < sl.slot_end AND (s.l IS NULL OR s.l >= sl.slot_end)),
             0)::BIGINT AS available,
    count(s.park_id) FILTER (WHERE s.e >= sl.slot_start AND s.e < sl.slot_end)::BIGINT AS entries,
    count(s.park_id) FILTER (WHERE s.l >= sl.slot_start AND s.l < sl.slot_end)::BIGINT AS exits,
    coalesce(sum(s.rk) FILTER (WHERE s.e < sl.slot_end AND (s.l IS NULL OR s.l >= sl.slot_end)), 0)::BIGINT
        AS ck_occupied,
    coalesce(sum(s.rk) FILTER (WHERE s.e >= sl.slot_start AND s.e < sl.slot_end), 0)::BIGINT AS ck_entries,
    coalesce(sum(s.rk) FILTER (WHERE s.l >= sl.slot_start AND s.l < sl.slot_end), 0)::BIGINT AS ck_exits
FROM car_parks p CROSS JOIN slots sl
LEFT JOIN s ON s.park_id = p.park_id
GROUP BY p.community_id, p.park_id, sl.slot_start, p.capacity
