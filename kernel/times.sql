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

-- Every macro is a plain expression, never a subquery: DuckDB plans a macro's subquery as a join evaluated for every
-- row, NULLs included, whatever CASE branch the row takes (measured: 0.98 s for 285 k CTWing timestamps against
-- 0.02 s for the epoch-milliseconds branch alone). The commonest form comes first, tested on the raw text; a value
-- used more than once is bound by a lambda where it is costly (the form, the instant).
-- tests/kernel/test_times.py holds these to the earlier subquery macros (tests/kernel/times_reference.sql) on a
-- corpus of every form, broken forms and random text.

-- which form a squeezed value `s` has (`t`: the raw value trimmed): epoch_s | epoch_ms | epoch_us | compact_local |
-- offset | local | NULL (unparseable); the calendar forms are prefixed 'repaired_' when whitespace other than one
-- date-time separator was removed
CREATE OR REPLACE TEMP MACRO neuron_time_form_of(s, t) AS CASE
    WHEN s IS NULL OR s = '' THEN NULL
    WHEN regexp_full_match(s, '[0-9]{14}') AND try_strptime(s, '%Y%m%d%H%M%S') IS NOT NULL THEN 'compact_local'
    WHEN regexp_full_match(s, '[0-9]+(\.[0-9]+)?([eE][+]?[0-9]+)?') THEN
        CASE WHEN TRY_CAST(s AS DOUBLE) < 1e11 THEN 'epoch_s'
             WHEN TRY_CAST(s AS DOUBLE) < 1e14 THEN 'epoch_ms'
             WHEN TRY_CAST(s AS DOUBLE) < 1e17 THEN 'epoch_us' END
    WHEN neuron_time_parts(s).y = '' THEN NULL
    ELSE CASE WHEN regexp_matches(t, '\s')
                    AND NOT regexp_full_match(t, '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?')
              THEN 'repaired_' ELSE '' END
         || CASE WHEN neuron_time_parts(s).zone = '' THEN 'local' ELSE 'offset' END
END;

-- which form a raw value has (above); 13 digits not starting with 0 are epoch milliseconds, the commonest form
CREATE OR REPLACE TEMP MACRO neuron_time_form(raw) AS CASE
    WHEN regexp_full_match(CAST(raw AS VARCHAR), '[1-9][0-9]{12}') THEN 'epoch_ms'
    ELSE neuron_time_form_of(neuron_time_squeeze(raw), trim(CAST(raw AS VARCHAR)))
END;

-- a calendar value `s` (squeezed) as text DuckDB casts: 'y-mo-d h:mi:se[.frac][±hh:mm]' (Z -> +00:00, ±hhmm -> ±hh:mm)
CREATE OR REPLACE TEMP MACRO neuron_time_text(s) AS regexp_replace(regexp_replace(regexp_replace(s,
    '^([0-9]{4})-?([0-9]{2})-?([0-9]{2})T?([0-9]{2}):?([0-9]{2}):?([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?$',
    '\1-\2-\3 \4:\5:\6\7\8'), 'Z$', '+00:00'), '([+-][0-9]{2})([0-9]{2})$', '\1:\2');

-- the instant of a squeezed value `s` of form `form` (neuron_time_form_of's); local forms are read in time zone `tz`
CREATE OR REPLACE TEMP MACRO neuron_time_at(s, form, tz) AS CASE
    WHEN form IS NULL THEN NULL
    WHEN form = 'compact_local' THEN timezone(tz, try_strptime(s, '%Y%m%d%H%M%S'))
    WHEN form = 'epoch_s' THEN TRY(to_timestamp(TRY_CAST(s AS DOUBLE)))
    WHEN form = 'epoch_ms' THEN TRY(to_timestamp(TRY_CAST(s AS DOUBLE) / 1e3))
    WHEN form = 'epoch_us' THEN TRY(to_timestamp(TRY_CAST(s AS DOUBLE) / 1e6))
    WHEN suffix(form, 'local') THEN timezone(tz, TRY_CAST(neuron_time_text(s) AS TIMESTAMP))
    ELSE TRY_CAST(neuron_time_text(s) AS TIMESTAMPTZ)
END;

-- the instant a raw vendor time denotes; local forms are read in time zone `tz`. NULL when unparseable.
-- The commonest forms, exactly as documented and without whitespace, are read first by one anchored match and
-- DuckDB's own cast (epoch milliseconds; ISO 8601 with an offset, ISC's happenTime and sendTime; local; epoch
-- microseconds; IoTDA's compact UTC): the same instants the classification gives, which costs ~0.7 s per 250 k ISO
-- values (a regexp_extract of eight groups), against ~0.04 s for the match. (Below, the form is bound once by the
-- lambda: neuron_time_at tests it up to six times.)
CREATE OR REPLACE TEMP MACRO neuron_time(raw, tz) AS CASE
    WHEN regexp_full_match(CAST(raw AS VARCHAR), '[1-9][0-9]{12}') THEN TRY(to_timestamp(TRY_CAST(raw AS DOUBLE) / 1e3))
    WHEN regexp_full_match(CAST(raw AS VARCHAR),
                           '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})')
        THEN TRY_CAST(CAST(raw AS VARCHAR) AS TIMESTAMPTZ)
    WHEN regexp_full_match(CAST(raw AS VARCHAR), '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?')
        THEN timezone(tz, TRY_CAST(CAST(raw AS VARCHAR) AS TIMESTAMP))
    WHEN regexp_full_match(CAST(raw AS VARCHAR), '[1-9][0-9]{15}') THEN TRY(to_timestamp(TRY_CAST(raw AS DOUBLE) / 1e6))
    -- compact UTC (IoTDA's event_time, most of the telemetry)
    WHEN regexp_full_match(CAST(raw AS VARCHAR), '[0-9]{8}T[0-9]{6}Z')
        THEN timezone('UTC', try_strptime(CAST(raw AS VARCHAR), '%Y%m%dT%H%M%SZ'))
    ELSE list_transform([neuron_time_form_of(neuron_time_squeeze(raw), trim(CAST(raw AS VARCHAR)))],
                        lambda f: neuron_time_at(neuron_time_squeeze(raw), f, tz))[1]
END;

-- an event time with its quality: the device's time when it parses and lies within `max_skew` of the receive
-- time, else the receive time (documented fallback), flagged. quality: ok | repaired (spaces removed) |
-- receive_time (missing, unparseable or pre-2000 sentinel) | clock_skew (device clock off by more than
-- max_skew) | missing (no usable time at all). `received` may be NULL (then only the parse decides).
-- (`t` is bound once by the lambda: a macro argument used three times would be evaluated three times)
CREATE OR REPLACE TEMP MACRO neuron_event_time(raw, received, tz, max_skew) AS list_transform([neuron_time(raw, tz)],
    lambda t: CASE
        WHEN t IS NOT NULL AND t >= TIMESTAMPTZ '2000-01-01 00:00:00+00'
             AND (received IS NULL OR abs(epoch(t) - epoch(received)) <= epoch(max_skew))
            -- only a value with whitespace can be a repaired one: the others skip the classification
            THEN {'ts': t, 'quality': CASE WHEN NOT regexp_matches(CAST(raw AS VARCHAR), '\s') THEN 'ok'
                                           WHEN starts_with(neuron_time_form(raw), 'repaired_') THEN 'repaired'
                                           ELSE 'ok' END}
        WHEN received IS NULL THEN {'ts': NULL::TIMESTAMPTZ, 'quality': 'missing'}
        WHEN t IS NOT NULL AND t >= TIMESTAMPTZ '2000-01-01 00:00:00+00' THEN {'ts': received, 'quality': 'clock_skew'}
        ELSE {'ts': received, 'quality': 'receive_time'}
    END)[1];
