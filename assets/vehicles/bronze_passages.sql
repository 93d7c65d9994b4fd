-- GA/T 1400 MotorVehicle files -> one row per object with its reason (NULL = accepted) and duplicate flags.
-- Inputs: temp table docs(source_file, community_id, content, file_error); tollgates view. Output: temp table
-- passages. A file that could not be read (content NULL, file_error the detail) is one record, unreadable_file.
CREATE OR REPLACE TEMP TABLE pv_docs AS
SELECT source_file, community_id, file_error, json_valid(content) AS ok,
    CASE WHEN json_valid(content) THEN content::JSON END AS j,
    -- the document repeats, byte for byte, one of an earlier file of the community (a re-delivered file): its
    -- rejected objects are cross-file duplicates of the first copy's, not quarantined a second time
    content IS NOT NULL
        AND source_file > min(source_file) OVER (PARTITION BY community_id, md5_number(content)) AS repeat_doc
FROM docs;

-- both wrappers: MotorVehicleListObject.MotorVehicleObject (standard) and MotorVehicleObjectList(.MotorVehicleObject).
-- The list may arrive as an array or as one bare object (wrapped here); anything else (a string, a number) is an
-- unknown envelope and the whole document goes to quarantine. Only ARRAY values are ever cast, so a malformed
-- document can never raise (a conversion error would echo the raw plate into the logs).
CREATE OR REPLACE TEMP TABLE pv_objs AS
WITH raw AS (
    SELECT source_file, community_id, file_error, repeat_doc, ok,
        coalesce(json_extract(j, '$.MotorVehicleListObject.MotorVehicleObject'),
                 json_extract(j, '$.MotorVehicleObjectList.MotorVehicleObject'),
                 CASE WHEN json_type(json_extract(j, '$.MotorVehicleObjectList')) = 'ARRAY'
                      THEN json_extract(j, '$.MotorVehicleObjectList') END) AS list
    FROM pv_docs
), lists AS (
    SELECT source_file, community_id, file_error, repeat_doc, ok,
        CASE WHEN file_error IS NOT NULL THEN 'unreadable_file'
             WHEN NOT ok THEN 'bad_json'
             WHEN json_type(list) NOT IN ('ARRAY', 'OBJECT') OR list IS NULL THEN 'unknown_envelope' END AS doc_reason,
        CAST(CASE WHEN json_type(list) = 'ARRAY' THEN list
                  WHEN json_type(list) = 'OBJECT' THEN json_array(list) END AS JSON[]) AS arr
    FROM raw
)
SELECT source_file, community_id, file_error, repeat_doc, unnest(arr) AS o, generate_subscripts(arr, 1) AS source_line,
    NULL::VARCHAR AS doc_reason
FROM lists WHERE doc_reason IS NULL AND len(arr) > 0
UNION ALL
SELECT source_file, community_id, file_error, repeat_doc, NULL::JSON, 0, doc_reason FROM lists
WHERE doc_reason IS NOT NULL;

CREATE OR REPLACE TEMP TABLE passages AS
WITH f AS (
    SELECT source_file, community_id, CAST(source_line AS BIGINT) AS source_line,
        doc_reason, file_error, repeat_doc,
        o->>'MotorVehicleID' AS motor_vehicle_id,
        o->>'TollgateID' AS tollgate_id,
        coalesce(o->>'DeviceID', o->>'DeviceId') AS device_id,
        TRY_CAST(o->>'LaneNo' AS INTEGER) AS lane_no,
        TRY_CAST(o->>'InfoKind' AS INTEGER) AS info_kind,
        o->>'HasPlate' IN ('1', 'true', 'True') AS has_plate,
        o->>'PlateNo' AS plate_raw,
        o->>'PlateColor' AS plate_color_raw,
        TRY_CAST(o->>'PlateReliability' AS DOUBLE) AS plate_reliability,
        o->>'VehicleClass' AS vehicle_class,
        o->>'VehicleColor' AS vehicle_color,
        CASE
            WHEN lower(o->>'InOut') IN ('in', '1') THEN 'in'
            WHEN lower(o->>'InOut') IN ('out', '2') THEN 'out'
            WHEN o->>'ParkingInOutType' = '1' OR o->>'Direction' = '1' THEN 'in'
            WHEN o->>'ParkingInOutType' = '2' OR o->>'Direction' = '2' THEN 'out'
        END AS direction,
        o->>'PassTime' AS pass_time_raw,
        try_strptime(o->>'PassTime', '%Y%m%d%H%M%S') AS pass_local,
        -- SubImageList arrives as an object or as a JSON string holding the object
        CASE WHEN json_type(o->'SubImageList') = 'VARCHAR' AND json_valid(o->>'SubImageList')
             THEN json_array_length(CAST(o->>'SubImageList' AS JSON), '$.SubImageInfoObject')
             ELSE coalesce(json_array_length(o, '$.SubImageList.SubImageInfoObject'), 0) END
          + (o->>'StorageUrl1' IS NOT NULL)::INT + (o->>'StorageUrl2' IS NOT NULL)::INT
          + (o->>'StorageUrl3' IS NOT NULL)::INT AS images_dropped
    FROM pv_objs
), r AS (
    SELECT *,
        timezone('@tz@', pass_local) AS pass_ts,
        CASE
            WHEN doc_reason IS NOT NULL THEN doc_reason
            WHEN motor_vehicle_id IS NULL OR NOT regexp_full_match(motor_vehicle_id, '[0-9]{48}') THEN 'missing_id'
            WHEN pass_local IS NULL THEN 'bad_pass_time'
            WHEN timezone('@tz@', pass_local) < TIMESTAMPTZ '@day_start@'
                OR timezone('@tz@', pass_local) >= TIMESTAMPTZ '@day_end@' THEN 'pass_time_outside_day'
            WHEN tollgate_id IS NULL OR tollgate_id NOT IN (SELECT tollgate_id FROM tollgates) THEN 'unknown_tollgate'
            WHEN direction IS NULL THEN 'unknown_direction'
        END AS reason
    FROM f
), d AS (
    -- re-sends are ranked among accepted copies only: a bad first copy (quarantined) never hides a good re-send
    SELECT *,
        row_number() OVER (PARTITION BY motor_vehicle_id, reason IS NULL, source_file ORDER BY source_line) AS rn_file,
        first(source_file) OVER (PARTITION BY motor_vehicle_id, reason IS NULL
                                 ORDER BY source_file, source_line) AS first_file
    FROM r
)
SELECT * EXCLUDE (rn_file, first_file, repeat_doc),
    reason IS NULL AND rn_file > 1 AS dup_in_file,
    (reason IS NULL AND rn_file = 1 AND source_file <> first_file) OR (reason IS NOT NULL AND repeat_doc)
        AS dup_cross_file
FROM d;
