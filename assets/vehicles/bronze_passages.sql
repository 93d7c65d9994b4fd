-- GA/T 1400 documents -> one row per MotorVehicle object (temp table pv_raw) with its verdict, before dedup.
-- Inputs: temp tables docs(source_file, community_id, content, file_error), pv_wrappers, pv_in_out, pv_gates,
-- pv_lanes (parse.py builds them from the CSV mappings and the tollgate registry). Generated parts (@...@) come
-- from gat1400_key_aliases.csv (@fixed_content@), gat1400_wrappers.csv (@hits@, @roots@) and gat1400_fields.csv
-- (@fields@). Only ARRAY values are ever cast, so a malformed document can never raise (an error would echo a plate).
CREATE OR REPLACE TEMP TABLE pv_docs AS
WITH t AS (SELECT source_file, community_id, file_error, @fixed_content@ AS content FROM docs)
SELECT source_file, community_id, file_error, json_valid(content) AS ok,
    CASE WHEN json_valid(content) THEN content::JSON END AS j,
    -- the document repeats, byte for byte, one of an earlier file of the community (a re-delivered file): its
    -- rejected objects are cross-file duplicates of the first copy's, not quarantined a second time
    content IS NOT NULL
        AND source_file > min(source_file) OVER (PARTITION BY community_id, md5_number(content)) AS repeat_doc
FROM t;

-- every value found at a wrapper path: an array of objects, one bare object, or junk (a string, a number)
CREATE OR REPLACE TEMP TABLE pv_hits AS
WITH h AS (@hits@)
SELECT h.source_file, h.rank, h.outer_idx, h.hit, w.accept, json_type(h.hit) AS kind
FROM h JOIN pv_wrappers w USING (rank)
WHERE h.hit IS NOT NULL AND json_type(h.hit) <> 'NULL'
    -- a container object at a list-only path is read by the path that goes one level deeper
    AND NOT (w.accept = 'list' AND json_type(h.hit) = 'OBJECT');

CREATE OR REPLACE TEMP TABLE pv_objs AS
WITH bad AS (
    SELECT source_file, count(*) AS n FROM pv_hits
    WHERE kind NOT IN ('ARRAY', 'OBJECT') OR (accept = 'object' AND kind <> 'OBJECT') GROUP BY 1
), good AS (
    SELECT source_file, rank, outer_idx,
        CAST(CASE WHEN kind = 'ARRAY' THEN hit ELSE json_array(hit) END AS JSON[]) AS arr
    FROM pv_hits WHERE kind = 'ARRAY' AND accept <> 'object' OR kind = 'OBJECT' AND accept <> 'list'
), objs AS (
    SELECT source_file, rank, outer_idx, unnest(arr) AS o, generate_subscripts(arr, 1) AS inner_idx FROM good
), docs AS (
    SELECT d.*, coalesce(b.n, 0) AS bad_hits,
        EXISTS (SELECT 1 FROM pv_hits h WHERE h.source_file = d.source_file) AS any_hit,
        d.ok AND (@roots@) AS known_root
    FROM pv_docs d LEFT JOIN bad b USING (source_file)
)
SELECT d.source_file, d.community_id, d.file_error, d.repeat_doc, o.o,
    row_number() OVER (PARTITION BY o.source_file ORDER BY o.rank, o.outer_idx, o.inner_idx) AS source_line,
    CASE WHEN json_type(o.o) <> 'OBJECT' THEN 'unknown_envelope' END AS doc_reason
FROM objs o JOIN docs d USING (source_file)
UNION ALL
-- one record per document that yields no object: unreadable, not JSON, junk where the list should be, or no
-- known wrapper at all. A known notification without vehicles (faces only) is no record.
SELECT source_file, community_id, file_error, repeat_doc, NULL::JSON, 0,
    CASE WHEN file_error IS NOT NULL THEN 'unreadable_file' WHEN NOT ok THEN 'bad_json'
         ELSE 'unknown_envelope' END
FROM docs
WHERE file_error IS NOT NULL OR NOT ok OR bad_hits > 0 OR (NOT any_hit AND NOT known_root);

CREATE OR REPLACE TEMP TABLE pv_raw AS
WITH f AS (
    SELECT source_file, community_id, CAST(source_line AS BIGINT) AS source_line, doc_reason, file_error,
        repeat_doc, @fields@,
        -- SubImageList arrives as an object or as a JSON string holding the object
        CASE WHEN json_type(o->'SubImageList') = 'VARCHAR' AND json_valid(o->>'SubImageList')
             THEN coalesce(json_array_length(CAST(o->>'SubImageList' AS JSON), '$.SubImageInfoObject'), 0)
             ELSE coalesce(json_array_length(o, '$.SubImageList.SubImageInfoObject'), 0) END
          + (o->>'StorageUrl1' IS NOT NULL)::INT + (o->>'StorageUrl2' IS NOT NULL)::INT
          + (o->>'StorageUrl3' IS NOT NULL)::INT + (o->>'StorageUrl4' IS NOT NULL)::INT
          + (o->>'StorageUrl5' IS NOT NULL)::INT AS images_dropped
    FROM pv_objs
), t AS (
    SELECT *,
        nullif(trim(tollgate_id_raw), '') AS tollgate_sent,
        nullif(trim(device_id_raw), '') AS device_sent,
        TRY_CAST(lane_no_raw AS INTEGER) AS lane_no,
        -- fourteen digits are meant as YYYYMMDDhhmmss: an impossible one (month 13) is a bad time, not epoch ms
        CASE WHEN NOT (regexp_full_match(trim(pass_time_raw), '[0-9]{14}')
                       AND neuron_time_form(pass_time_raw) <> 'compact_local')
             THEN date_trunc('second', neuron_time(pass_time_raw, '@tz@')) END AS pass_ts,
        CASE WHEN regexp_full_match(trim(pass_time_raw), '[0-9]{14}')
                  AND neuron_time_form(pass_time_raw) <> 'compact_local' THEN 'invalid_compact'
             ELSE neuron_time_form(pass_time_raw) END AS pass_time_form
    FROM f
), g AS (
    -- the gate: the TollgateID as registered, else the short TollgateID a deployment sends (its alias in this
    -- community), else the registered camera (DeviceID) when TollgateID is empty or unknown
    SELECT t.*,
        coalesce(g1.tollgate_id, g2.tollgate_id, g3.tollgate_id) AS tollgate_id,
        CASE WHEN g1.tollgate_id IS NOT NULL THEN 'tollgate_id' WHEN g2.tollgate_id IS NOT NULL THEN 'alias'
             WHEN g3.tollgate_id IS NOT NULL THEN 'device_id' END AS gate_match
    FROM t
    LEFT JOIN (SELECT tollgate_id FROM pv_gates GROUP BY 1) g1 ON g1.tollgate_id = t.tollgate_sent
    LEFT JOIN (SELECT community_id, alias, min(tollgate_id) AS tollgate_id FROM pv_gates WHERE alias IS NOT NULL
               GROUP BY 1, 2 HAVING count(*) = 1) g2 ON g2.community_id = t.community_id AND g2.alias = t.tollgate_sent
    LEFT JOIN (SELECT device_id, min(tollgate_id) AS tollgate_id FROM pv_gates WHERE device_id IS NOT NULL
               GROUP BY 1 HAVING count(*) = 1) g3 ON g3.device_id = t.device_sent
), d AS (
    -- in or out: an explicit regional field (InOut, ParkingInOutType) first, else the registered lane, else a
    -- gate registered as entry-only or exit-only. Direction is the lane's travel direction and never says in/out.
    SELECT g.*,
        coalesce(x.in_out, l.in_out, CASE WHEN gt.gate_in_out IN ('in', 'out') THEN gt.gate_in_out END) AS direction,
        CASE WHEN x.in_out IS NOT NULL THEN 'explicit' WHEN l.in_out IS NOT NULL THEN 'lane'
             WHEN gt.gate_in_out IN ('in', 'out') THEN 'gate' END AS direction_source
    FROM g
    LEFT JOIN pv_in_out x ON x.field = g.in_out_key AND x.value = lower(trim(g.in_out_raw))
    LEFT JOIN (SELECT tollgate_id, lane_no, min(in_out) AS in_out FROM pv_lanes GROUP BY 1, 2 HAVING count(*) = 1) l
        ON l.tollgate_id = g.tollgate_id AND l.lane_no = g.lane_no
    LEFT JOIN (SELECT tollgate_id, min(gate_in_out) AS gate_in_out FROM pv_gates GROUP BY 1) gt
        ON gt.tollgate_id = g.tollgate_id
)
SELECT *,
    CASE
        WHEN doc_reason IS NOT NULL THEN doc_reason
        WHEN pass_ts IS NULL THEN 'bad_pass_time'
        WHEN pass_ts < TIMESTAMPTZ '@day_start@' OR pass_ts >= TIMESTAMPTZ '@day_end@' THEN 'pass_time_outside_day'
        WHEN tollgate_id IS NULL THEN 'unknown_tollgate'
        WHEN direction IS NULL THEN 'unknown_direction'
    END AS reason
FROM d;
