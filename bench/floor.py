"""The floor the benchmarks compare Neuron against: bare DuckDB parsing the carrier platforms' telemetry to long
format (device, time, property, value), with no validation, accounting, lineage or privacy work."""

# the envelope fields Neuron extracts, declared up front (auto-detecting both shapes across 2,400 files runs out of
# memory)
ENVELOPE_COLUMNS = ("{'deviceId': 'VARCHAR', 'timestamp': 'VARCHAR', 'messageType': 'VARCHAR', "
                    "'payload': 'STRUCT(serviceData JSON)', 'event_time': 'VARCHAR', "
                    "'notify_data': 'STRUCT(header STRUCT(device_id VARCHAR), body STRUCT(services "
                    "STRUCT(event_time VARCHAR, properties JSON)[]))'}")


def telemetry_long_sql(files: str) -> str:
    """A query over the CTWing and IoTDA NDJSON files matching the glob ``files``: one row per reading."""
    return f'''
        WITH raw AS (SELECT * FROM read_json('{files}', format='newline_delimited', ignore_errors=true,
                                             filename=true, columns={ENVELOPE_COLUMNS})),
        msgs AS (
            SELECT filename, deviceId AS device_id, to_timestamp(TRY_CAST(timestamp AS BIGINT) / 1000.0) AS ts,
                   payload.serviceData AS props FROM raw WHERE payload IS NOT NULL
            UNION ALL
            SELECT filename, notify_data.header.device_id,
                   timezone('UTC', TRY_STRPTIME(unnest(notify_data.body.services).event_time, '%Y%m%dT%H%M%SZ')),
                   unnest(notify_data.body.services).properties FROM raw WHERE notify_data IS NOT NULL)
        SELECT filename, device_id, ts, e.key AS vendor_key, TRY_CAST(e.value::VARCHAR AS DOUBLE) AS value
        FROM (SELECT *, unnest(map_entries(json_transform(props, '"MAP(VARCHAR, JSON)"'))) AS e FROM msgs)'''
