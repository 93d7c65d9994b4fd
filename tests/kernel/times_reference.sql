-- The one parser of vendor times, as DuckDB macros (kernel/times.py installs them on every step connection).
-- Forms seen in vendor documents and payloads (../shared/reference/formats.md §1-2, §8; tests/kernel/test_times.py
-- holds one case per form):
--   ISO 8601 with offset            2019-03-13T17:38:34.000+08:00, ...Z, +0800
--   local, no offset                2019-03-13 17:38:34 (ISC, Alibaba status), 2019-03-13T17:38:34
--   compact local (GA/T 1400)       20190313173834
--   compact UTC (IoTDA)             20191204T012345Z
--   epoch seconds (float too)       1554185521, 1554185521.83 (a parking cloud)
--   epoch milliseconds              1554185521830 (CTWing, 4pyun)
--   epoch microseconds              1554185521830123 (ISC ExtReceiveTime)
--   broken by spaces                2018-08-14T07: 20: 51.531+08: 00, 2018-08-15T 15:53:47.000+08:00,
--                                   2017-12-2823: 00: 03.000 (date and hour glued)
-- Whitespace is removed before matching, so a valid "yyyy-MM-dd HH:mm:ss" is never broken by the repair
-- (date and time are told apart by position, not by the separator). Invalid calendar values (the sentinel
-- 1900-01-00T00:00:00.000+08:00, month 13) give NULL, never an error.

-- the raw value as text without any whitespace
CREATE OR REPLACE TEMP MACRO neuron_time_squeeze(raw) AS
    regexp_replace(CAST(raw AS VARCHAR), '\s+', '', 'g');

-- calendar parts of a squeezed value (NULL fields when it is not a calendar form)
CREATE OR REPLACE TEMP MACRO neuron_time_parts(s) AS
    regexp_extract(s, '^([0-9]{4})-?([0-9]{2})-?([0-9]{2})T?([0-9]{2}):?([0-9]{2}):?([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?$',
                   ['y', 'mo', 'd', 'h', 'mi', 'se', 'frac', 'zone']);

-- which form a raw value has: epoch_s | epoch_ms | epoch_us | compact_local | offset | local | NULL (unparseable);
-- the calendar forms are prefixed 'repaired_' when whitespace other than one date-time separator was removed
CREATE OR REPLACE TEMP MACRO neuron_time_form(raw) AS (
    WITH x AS (SELECT neuron_time_squeeze(raw) AS s, trim(CAST(raw AS VARCHAR)) AS t)
    SELECT CASE
        WHEN s IS NULL OR s = '' THEN NULL
        WHEN regexp_full_match(s, '[0-9]{14}') AND try_strptime(s, '%Y%m%d%H%M%S') IS NOT NULL
            THEN 'compact_local'
        WHEN regexp_full_match(s, '[0-9]+(\.[0-9]+)?([eE][+]?[0-9]+)?') THEN
            CASE WHEN TRY_CAST(s AS DOUBLE) < 1e11 THEN 'epoch_s'
                 WHEN TRY_CAST(s AS DOUBLE) < 1e14 THEN 'epoch_ms'
                 WHEN TRY_CAST(s AS DOUBLE) < 1e17 THEN 'epoch_us' END
        WHEN neuron_time_parts(s).y = '' THEN NULL
        ELSE CASE WHEN regexp_matches(t, '\s')
                        AND NOT regexp_full_match(t, '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?')
                  THEN 'repaired_' ELSE '' END
             || CASE WHEN neuron_time_parts(s).zone = '' THEN 'local' ELSE 'offset' END
    END FROM x
);

-- the instant a raw vendor time denotes; local forms are read in time zone `tz`. NULL when unparseable.
CREATE OR REPLACE TEMP MACRO neuron_time(raw, tz) AS (
    WITH x AS (SELECT neuron_time_squeeze(raw) AS s), f AS (SELECT s, neuron_time_form(raw) AS form, neuron_time_parts(s) AS p FROM x)
    SELECT CASE
        WHEN form IS NULL THEN NULL
        WHEN form = 'compact_local' THEN timezone(tz, try_strptime(s, '%Y%m%d%H%M%S'))
        WHEN form = 'epoch_s' THEN TRY(to_timestamp(CAST(s AS DOUBLE)))
        WHEN form = 'epoch_ms' THEN TRY(to_timestamp(CAST(s AS DOUBLE) / 1e3))
        WHEN form = 'epoch_us' THEN TRY(to_timestamp(CAST(s AS DOUBLE) / 1e6))
        WHEN p.zone = '' THEN timezone(tz, TRY_CAST(format('{}-{}-{} {}:{}:{}{}', p.y, p.mo, p.d, p.h, p.mi, p.se, p.frac)
                                              AS TIMESTAMP))
        ELSE TRY_CAST(format('{}-{}-{} {}:{}:{}{}{}', p.y, p.mo, p.d, p.h, p.mi, p.se, p.frac,
                             CASE WHEN p.zone = 'Z' THEN '+00:00'
                                  WHEN length(p.zone) = 5 THEN substr(p.zone, 1, 3) || ':' || substr(p.zone, 4, 2)
                                  ELSE p.zone END) AS TIMESTAMPTZ)
    END FROM f
);

-- an event time with its quality: the device's time when it parses and lies within `max_skew` of the receive
-- time, else the receive time (documented fallback), flagged. quality: ok | repaired (spaces removed) |
-- receive_time (missing, unparseable or pre-2000 sentinel) | clock_skew (device clock off by more than
-- max_skew) | missing (no usable time at all). `received` may be NULL (then only the parse decides).
CREATE OR REPLACE TEMP MACRO neuron_event_time(raw, received, tz, max_skew) AS (
    WITH x AS (SELECT neuron_time(raw, tz) AS t, neuron_time_form(raw) AS form)
    SELECT CASE
        WHEN t IS NOT NULL AND t >= TIMESTAMPTZ '2000-01-01 00:00:00+00'
             AND (received IS NULL OR abs(epoch(t) - epoch(received)) <= epoch(max_skew))
            THEN {'ts': t, 'quality': CASE WHEN starts_with(form, 'repaired_') THEN 'repaired' ELSE 'ok' END}
        WHEN received IS NULL THEN {'ts': NULL::TIMESTAMPTZ, 'quality': 'missing'}
        WHEN t IS NOT NULL AND t >= TIMESTAMPTZ '2000-01-01 00:00:00+00' THEN {'ts': received, 'quality': 'clock_skew'}
        ELSE {'ts': received, 'quality': 'receive_time'}
    END FROM x
);
