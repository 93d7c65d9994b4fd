"""Vectorised generator of a district-day of door events in the Hikvision ISC ``OnEventNotify`` envelope.

Writes gzipped NDJSON per community (one envelope a line, several events an envelope), the door registry
(simulator.sites), and a ground truth computed from the same deliveries: accounting and gold with the pipeline's
documented rules, but an event's final status from the vendor's status progression (the highest status sent).
Communities are generated CHUNK_COMMUNITIES at a time so memory stays flat as the district grows.

Deployments differ per community, as real ones do (docs/vendors/access.md): a *platform* community pushes what
the ISC platform sends (no currentVerifyMode and no UserType, the verify mode implied by eventType;
ExtReceiveTime in epoch microseconds; happenTime with offset or local without one; ExtEventPersonNo "0" for a
stranger; one door controller whose clock is years off); a *legacy* community's integration adds
currentVerifyMode and UserType and sends ISO receive times. Every community's subscription also carries
field-detection (event_rule), people-counting (event_pdc) and video (event_vss) events from cameras.
"""

from __future__ import annotations

import base64
import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from simulator import sites
from simulator.canaries import Canary

# ISC eventType codes; the first three are seen in public code, the rest are this integration's choices
# (documented in assets/access/event_types.csv, which the parser reads).
FACE_PASS, ID_MATCH, CARD_PASS, OTHER_PASS, DENIED, FORCED = 196893, 197162, 198914, 196888, 197151, 199428
# seen in a public ISC payload (successMultipleAuthCard); the two denials are this integration's codes
MULTI_PASS, FACE_DENIED, CARD_DENIED = 196883, 197160, 198916
# the modes a platform community's face-and-card terminals verify with (each implied by its eventType)
PLATFORM_MODES = ("face", "card", "id_card", "multi")
PLATFORM_PASS = {"face": FACE_PASS, "card": CARD_PASS, "id_card": ID_MATCH, "multi": MULTI_PASS}
# other abilities on the same subscription: (ability, eventType, class, events per community-day); the
# people-counting code is a placeholder ([UNVERIFIED]: the pipeline maps the whole event_pdc ability)
OTHER_EVENTS = (("event_rule", 131588, "field_detection", 14), ("event_pdc", 1644175361, "people_counting", 12),
                ("event_vss", 131331, "motion_detection", 8), ("event_vss", 131329, "video_loss", 2))
# the door controller whose clock is years off (a platform community's last unit door) runs this far behind
CLOCK_OFF_MS = 3 * 365 * 86_400_000
SHANGHAI_MS = 8 * 3_600_000
MODES = ("face", "card", "qr", "password", "fingerprint", "id_card", "remote", "multi")
MODE_STRING = {"face": "face", "card": "card", "qr": "qrCode", "password": "password", "fingerprint": "fp",
               "id_card": "idCard", "remote": "remote", "multi": "cardOrFaceOrFp"}
MODE_NUMBER = {m: i + 1 for i, m in enumerate(("card", "password", "fingerprint", "face", "id_card", "qr", "remote",
                                                 "multi"))}
USER_CODES = {"stranger": 0, "resident": 1, "visitor": 2, "blacklist": 3, "staff": 4}
EVENTS_PER_COMMUNITY = 6700
# glued: date and hour run together with spaces after the colons ("2017-12-2823: 00: 03.000", seen in ISC code)
TIME_FAULTS = ("space_colon", "space_t", "sentinel", "missing_time", "glued")
SENTINEL = "1900-01-00T00:00:00.000+08:00"
_SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
_CATEGORIES = ("resident", "visitor", "staff", "stranger", "resident_denied", "blacklist", "forced")
_CATEGORY_P = (0.8345, 0.07, 0.03, 0.035, 0.025, 0.005, 0.0005)
_KINDS = {"resident": (1200, "R"), "visitor": (150, "V"), "staff": (20, "S"), "blacklist": (3, "B")}
# communities generated (and held in memory) at a time; chunk k draws from default_rng([seed, ordinal, 40, k]),
# which for k = 0 is the same stream as default_rng([seed, ordinal, 40]): a district of up to this many
# communities is generated exactly as before chunking
CHUNK_COMMUNITIES = 30


def _fmt(template: str, *exprs: pl.Expr | str) -> pl.Expr:
    """``pl.format`` for JSON templates (whose literal braces it would read as column names)."""
    parts = template.split("{}")
    if len(parts) != len(exprs) + 1:
        raise ValueError(f"{len(parts) - 1} placeholders, {len(exprs)} values")
    items: list[pl.Expr] = []
    for lit, e in zip(parts, [*exprs, None], strict=True):
        if lit:
            items.append(pl.lit(lit))
        if e is not None:
            items.append((pl.col(e) if isinstance(e, str) else e).cast(pl.String))
    return pl.concat_str(items)


def _iso(ms: pl.Expr) -> pl.Expr:
    """ISO-8601 with milliseconds and +08:00 from local epoch milliseconds."""
    return _fmt("{}.{}+08:00", ms.cast(pl.Datetime("ms")).dt.strftime("%Y-%m-%dT%H:%M:%S"),
                     (ms % 1000).cast(pl.String).str.zfill(3))


def _population(comms: pl.DataFrame, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per kind of person: the first row of every community (and the total at the end) and the name draws.

    Drawn once for the whole district (a few integers a person), so a community's people do not depend on the
    chunk it is generated in.
    """
    sf = comms["size_factor"].to_numpy()
    out = {}
    for kind, (base, _) in _KINDS.items():
        n = np.maximum(1, np.round(base * sf)).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(n)])
        out[kind] = (starts, rng.integers(0, [len(_SURNAMES), len(_GIVEN), len(_GIVEN)], (int(starts[-1]), 3)))
    return out


def _people(comms: pl.DataFrame, population: dict[str, tuple[np.ndarray, np.ndarray]], canaries: list[Canary],
            c0: int, c1: int) -> dict[str, pl.DataFrame]:
    """Residents, visitors, staff and blacklisted people of communities ``c0 <= cidx < c1`` the platform knows."""
    surnames, given = pl.Series(list(_SURNAMES)), pl.Series(list(_GIVEN))
    out = {}
    for kind, (_, prefix) in _KINDS.items():
        starts, draws = population[kind]
        n = np.diff(starts[c0:c1 + 1])
        lo, hi = int(starts[c0]), int(starts[c1])
        cidx = np.repeat(np.arange(c0, c1, dtype=np.int64), n)
        k = np.arange(lo, hi, dtype=np.int64) - np.repeat(starts[c0:c1], n)
        idx = draws[lo:hi]
        df = pl.DataFrame({"cidx": cidx, "k": k}).with_columns(
            person_no=pl.concat_str(pl.lit(prefix), comms["community_id"].gather(cidx),
                                    pl.col("k").cast(pl.String).str.zfill(5)),
            card_no=pl.lit(None, pl.String) if kind == "visitor" else pl.concat_str(
                (pl.col("cidx") + 7000).cast(pl.String).str.zfill(4), pl.col("k").cast(pl.String).str.zfill(6)),
            name=surnames.gather(idx[:, 0]) + given.gather(idx[:, 1]) + given.gather(idx[:, 2]),
        )
        if kind == "resident" and c0 == 0:  # the canaries live in the first community (rows k = 0, 1, 2)
            at = np.arange(min(len(canaries), int(n[0])))
            df = df.with_columns(
                df["person_no"].scatter(at, [canaries[i].person_number for i in at]),
                df["card_no"].scatter(at, [canaries[i].card_number for i in at]),
                df["name"].scatter(at, [canaries[i].name for i in at]),
            )
        out[kind] = df.with_columns(n_kind=pl.len().over("cidx"))
    return out


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after local midnight: morning and evening peaks over a daytime base, a quiet night."""
    comp = rng.choice(4, n, p=[0.28, 0.32, 0.34, 0.06])
    t = np.where(comp == 0, rng.normal(7.8, 0.7, n),
                 np.where(comp == 1, rng.normal(18.6, 1.1, n),
                          np.where(comp == 2, rng.uniform(6, 23, n), rng.uniform(0, 24, n))))
    return (np.clip(t, 0, 23.999) * 3600 * 1000).astype(np.int64)


def _door_index(comms: pl.DataFrame, doors: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per community (by position): its first row in the door registry, its number of gates and of unit doors."""
    per_comm = doors.with_row_index("row").group_by("community_id", maintain_order=True).agg(
        first=pl.col("row").min(), gates=(pl.col("kind") == "gate").sum(), units=(pl.col("kind") == "unit_door").sum())
    per_comm = comms.select("community_id").join(per_comm, on="community_id", how="left", maintain_order="left")
    first_row, n_gates, n_units = (per_comm[c].to_numpy().astype(np.int64) for c in ("first", "gates", "units"))
    return first_row, n_gates, n_units


def _events(rng: np.random.Generator, comms: pl.DataFrame, c0: int, door_index: tuple[np.ndarray, ...],
            conventions: np.ndarray, people: dict[str, pl.DataFrame], day: date,
            platform: np.ndarray | None = None) -> pl.DataFrame:
    """One row per logical event (before faults and re-deliveries) of the chunk of communities from ``c0``.

    ``platform`` (by district community position) marks the communities whose feed is the ISC platform's own.
    """
    nc = comms.height
    n_per = rng.poisson(EVENTS_PER_COMMUNITY * comms["size_factor"].to_numpy())
    cidx = np.repeat(np.arange(c0, c0 + nc), n_per)
    n = cidx.size
    cat = np.array(_CATEGORIES)[rng.choice(len(_CATEGORIES), n, p=_CATEGORY_P)]
    # the canaries pass through the first community's doors a few times each
    first = np.flatnonzero(cidx == 0)[:15]
    cat[first] = "resident"
    # "local epoch" milliseconds: naive Asia/Shanghai wall-clock time counted from 1970-01-01
    midnight = int((np.datetime64(day.isoformat(), "ms") - np.datetime64("1970-01-01", "ms")).astype(np.int64))
    ts = midnight + _times(rng, n)

    first_row, n_gates, n_units = door_index
    at_gate = (rng.random(n) < 0.55) | (cat == "stranger") | (cat == "visitor")
    door_row = np.where(at_gate, first_row[cidx] + (rng.random(n) * n_gates[cidx]).astype(np.int64),
                        first_row[cidx] + n_gates[cidx] + (rng.random(n) * np.maximum(n_units[cidx], 1)).astype(np.int64))

    hour = (ts - midnight) // 3_600_000
    p_in = np.where(hour < 12, 0.3, 0.7)
    direction = np.where(rng.random(n) < p_in, "in", "out")
    conv = conventions[door_row]
    direction = np.where((conv == "inout_10") & (rng.random(n) < 0.01), "unknown", direction)

    mode = np.array(MODES)[rng.choice(8, n, p=[0.58, 0.2, 0.08, 0.03, 0.02, 0.02, 0.02, 0.05])]
    mode = np.where(np.isin(cat, ["stranger", "blacklist"]), "face", mode)
    mode = np.where(cat == "resident_denied", np.where(rng.random(n) < 0.5, "card", "face"), mode)
    mode = np.where(cat == "visitor", np.where(rng.random(n) < 0.7, "qr", "face"), mode)
    on_platform = np.zeros(n, dtype=bool) if platform is None else platform[cidx]
    # a platform community's terminals read faces and cards: other credentials show as a face verification
    mode = np.where(on_platform & ~np.isin(mode, PLATFORM_MODES), "face", mode)

    kind = np.where(np.isin(cat, ["resident", "visitor", "staff"]), "pass",
                    np.where(cat == "forced", "door_forced", "denied"))
    user = np.where(np.isin(cat, ["resident", "resident_denied"]), "resident", cat)
    user = np.where(cat == "forced", "unknown", user)

    ev = pl.DataFrame({
        "cidx": cidx, "cat": cat, "ts_ms": ts, "door_row": door_row, "direction": direction, "mode": mode,
        "event_kind": kind, "user_type": user, "u": rng.random(n),
        "numeric_mode": rng.random(n) < 0.3, "with_name": rng.random(n) < 0.3, "platform": on_platform,
    })
    # pick the person behind each event from the matching population
    ev = ev.with_columns(pop=pl.when(pl.col("user_type").is_in(["resident", "visitor", "staff", "blacklist"]))
                         .then(pl.col("user_type")))
    parts = []
    for pop, tbl in people.items():
        sub = ev.filter(pl.col("pop") == pop).join(tbl.select("cidx", "n_kind").unique(), on="cidx", how="left")
        sub = sub.with_columns(k=(pl.col("u") * pl.col("n_kind")).cast(pl.Int64)).drop("n_kind")
        parts.append(sub.join(tbl.select("cidx", "k", "person_no", "card_no", "name"), on=["cidx", "k"], how="left"))
    rest = ev.filter(pl.col("pop").is_null()).with_columns(
        k=pl.lit(None, pl.Int64), person_no=pl.lit(None, pl.String), card_no=pl.lit(None, pl.String),
        name=pl.lit(None, pl.String))
    ev = pl.concat([*parts, rest]).sort("cidx", "ts_ms", "door_row")
    # a card number is only sent when a card took part in the verification
    return ev.with_row_index("seq").with_columns(
        card_no=pl.when(pl.col("mode").is_in(["card", "multi", "id_card"])).then(pl.col("card_no")),
        event_type=_event_type())


def _plant_canaries(ev: pl.DataFrame, people: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The first 15 resident passes of the first community belong to the three canary residents."""
    res = people["resident"].filter(pl.col("cidx") == 0).filter(pl.col("k") < 3)
    idx = ev.filter((pl.col("cidx") == 0) & (pl.col("cat") == "resident")).head(15)["seq"]
    pick = pl.DataFrame({"seq": idx, "k2": np.arange(idx.len()) % 3})
    pick = pick.join(res.select(pl.col("k").alias("k2"), "person_no", "card_no", "name"), on="k2").drop("k2")
    return ev.update(pick, on="seq")


def _plant_patterns(rng: np.random.Generator, ev: pl.DataFrame, nc: int) -> pl.DataFrame:
    """Double swipes (a second pass on the same door with one credential 1-2 s later) and denial bursts."""
    passes = ev.filter((pl.col("event_kind") == "pass") & pl.col("person_no").is_not_null()
                       & (pl.col("ts_ms") % 86_400_000 > 3_600_000))
    tail = passes.group_by("cidx", maintain_order=True).head(2).sample(fraction=1.0, seed=int(rng.integers(1 << 30)))
    tail = tail.with_columns(ts_ms=pl.col("ts_ms") + 1000 + (pl.col("u") * 900).cast(pl.Int64))
    residents = ev.filter((pl.col("cat") == "resident") & (pl.col("ts_ms") % 86_400_000 > 3_600_000)
                          & (pl.col("ts_ms") % 86_400_000 < 22 * 3_600_000))
    burst_src = residents.group_by("cidx", maintain_order=True).agg(pl.all().get(5))
    bursts = []
    for i in range(3 + int(rng.integers(0, 2))):
        bursts.append(burst_src.with_columns(
            ts_ms=pl.col("ts_ms") + 20_000 + i * 90_000, event_kind=pl.lit("denied"),
            cat=pl.lit("resident_denied"), mode=pl.lit("card"),
            card_no=pl.coalesce(pl.col("card_no"), pl.lit("00000000"))))
    extra = pl.concat([tail, *bursts], how="vertical_relaxed").select(ev.columns)
    out = pl.concat([ev, extra.with_columns(seq=pl.lit(None, pl.UInt32))], how="vertical_relaxed")
    return out.sort("cidx", "ts_ms", "door_row", nulls_last=True).drop("seq").with_row_index("seq")


def _event_type() -> pl.Expr:
    """The eventType an event is sent with: a platform community's implies the verify mode; a legacy one's passes
    other credentials and all denials with generic codes and says the mode in currentVerifyMode."""
    kind, mode = pl.col("event_kind"), pl.col("mode")
    legacy_pass = (pl.when(mode.is_in(["face", "multi"])).then(FACE_PASS).when(mode == "card").then(CARD_PASS)
                   .when(mode == "id_card").then(ID_MATCH).otherwise(OTHER_PASS))
    platform_pass = mode.replace_strict(PLATFORM_PASS, default=FACE_PASS, return_dtype=pl.Int64)
    return (pl.when(kind == "door_forced").then(FORCED)
            .when((kind == "denied") & pl.col("platform")).then(pl.when(mode == "card").then(CARD_DENIED)
                                                                 .otherwise(FACE_DENIED))
            .when(kind == "denied").then(DENIED)
            .when(pl.col("platform")).then(platform_pass).otherwise(legacy_pass)).cast(pl.Int64)


def _faults(rng: np.random.Generator, ev: pl.DataFrame, faults: bool, clock_off_row: int = -1) -> pl.DataFrame:
    n = ev.height
    u = rng.random(n)
    tod = ev["ts_ms"].to_numpy() % 86_400_000
    safe = (tod > 3_600_000) & (tod < 22 * 3_600_000)
    code = np.full(n, -1, dtype=np.int64)
    if faults:
        for i in range(len(TIME_FAULTS)):
            code[safe & (u >= i * 0.002) & (u < (i + 1) * 0.002)] = i
    # independent draws: an event can be re-sent, updated, re-sent stale after its update, or all of these
    v_door, v_resend, v_update, v_stale = rng.random((4, n)) * faults + (not faults)
    updates = np.where(v_update < 0.02, rng.integers(1, 3, n), 0)
    return ev.with_columns(
        time_fault=pl.Series(code).replace_strict(dict(enumerate(TIME_FAULTS)), default=None, return_dtype=pl.String),
        unknown_door=pl.Series(v_door < 0.001),
        resend=pl.when(pl.Series(v_resend < 0.010)).then(pl.lit("in_file"))
        .when(pl.Series(v_resend < 0.015)).then(pl.lit("cross_file")),
        updates=pl.Series(updates),
        # the vendor's status progression: 0, then 1 or 2, then 4 or 5
        status1=pl.Series(rng.choice([1, 2], n)), status2=pl.Series(rng.choice([4, 5], n)),
        # after its last update, an event may be sent again with an older status (0, or its first update)
        stale=pl.Series((updates > 0) & (v_stale < 0.3)),
        stale_first_update=pl.Series((updates == 2) & (rng.random(n) < 0.5)),
        stale_late=pl.Series(rng.random(n) < 0.5),
        recv_ms=pl.col("ts_ms") + pl.Series(rng.integers(200, 3000, n)),
        face_extra=pl.Series(rng.choice(3, n, p=[0.985, 0.008, 0.007]) if faults else np.zeros(n, dtype=np.int64)),
        event_id=_fmt("acs{}e{}", pl.lit(f"{rng.integers(1 << 40):010x}"), pl.col("seq")),
        # a platform community's happenTime: half ISO with offset, half local "yyyy-MM-dd HH:mm:ss" (whole seconds)
        local_form=pl.Series(rng.random(n) < 0.5) & pl.col("platform"),
        # the controller with the clock years off; kept to 01:00-22:00 so its receive times stay in the day
        clock_off=pl.Series((ev["door_row"].to_numpy() == clock_off_row) & safe & faults),
    ).with_columns(event_type=_event_type())  # again: the planted denial bursts changed kind and mode


# an envelope holds the events sent within one ENVELOPE_WINDOW_MS window (and at most 3-10 of them), so two
# deliveries of one event at least a window apart always carry increasing envelope sendTimes
ENVELOPE_WINDOW_MS = 10_000


def _deliveries(rng: np.random.Generator, ev: pl.DataFrame) -> pl.DataFrame:
    """Every copy the platform sends: originals, exact re-sends, status updates and stale re-sends, with their file.

    Updates follow at 30 s and 60 s; a stale re-send comes at least 10 s after the last update.
    """
    base = ev.select("seq", "cidx", status=pl.lit(0), send_ms=pl.col("recv_ms") + 500, late=pl.lit(False))
    dup = ev.filter(pl.col("resend").is_not_null()).select(
        "seq", "cidx", status=pl.lit(0), send_ms=pl.col("recv_ms") + 5_000 + (pl.col("u") * 100_000).cast(pl.Int64),
        late=pl.col("resend") == "cross_file")
    ups = [ev.filter(pl.col("updates") > i).select(
        "seq", "cidx", status=pl.col(f"status{i + 1}"), send_ms=pl.col("recv_ms") + 30_000 * (i + 1),
        late=pl.lit(bool(i))) for i in range(2)]
    stale = ev.filter(pl.col("stale")).select(
        "seq", "cidx", status=pl.when(pl.col("stale_first_update")).then(pl.col("status1")).otherwise(0),
        send_ms=pl.col("recv_ms") + 30_000 * pl.col("updates") + 10_000 + (pl.col("u") * 50_000).cast(pl.Int64),
        late=pl.col("stale_late"))
    dl = pl.concat([base, dup, *ups, stale], how="vertical_relaxed")
    hour = ((dl["send_ms"].to_numpy() % 86_400_000) // 3_600_000).clip(0, 23)
    file_seq = np.minimum(np.where(dl["late"].to_numpy(), hour + 1, hour), 24)
    dl = dl.with_columns(file_seq=pl.Series(file_seq)).sort("cidx", "file_seq", "send_ms", "seq", "status")
    size = rng.integers(3, 11)
    by_file = ("cidx", "file_seq")
    dl = dl.with_columns(win=pl.col("send_ms") // ENVELOPE_WINDOW_MS)
    dl = dl.with_columns(sub=pl.int_range(pl.len()).over(*by_file, "win") // size)
    brk = ((pl.col("win") != pl.col("win").shift(1)) | (pl.col("sub") != pl.col("sub").shift(1))).fill_null(True)
    dl = dl.with_columns(brk=brk.over(*by_file).cast(pl.Int64))
    dl = dl.with_columns(line=pl.col("brk").cum_sum().over(*by_file)).drop("win", "sub", "brk")
    return dl.with_columns(event_index=pl.int_range(pl.len()).over("cidx", "file_seq", "line").cast(pl.Int32),
                           env_send_ms=pl.col("send_ms").max().over("cidx", "file_seq", "line"))


def _blobs(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    jpegs = [base64.b64encode(b"\xff\xd8\xff\xe0" + rng.bytes(180)).decode() for _ in range(4)]
    feats = [json.dumps([round(float(x), 5) for x in rng.normal(0, 0.1, n)]) for n in (128, 256, 512)]
    return jpegs, feats


def _render(rng: np.random.Generator, ev: pl.DataFrame, dl: pl.DataFrame, d: pl.DataFrame) -> pl.DataFrame:
    """One NDJSON text line per envelope: (cidx, file_seq, line, text); ``d`` is the door registry with door_row."""
    jpegs, feats = _blobs(rng)
    ev = ev.lazy().join(d.lazy().select("door_row", "door_id", "gate_name", "device_gb_code", "vendor_convention"),
                        on="door_row", how="left")
    in_out = (pl.when(pl.col("direction") == "in").then(pl.lit(1))
              .when(pl.col("direction") == "unknown").then(pl.lit(-1))
              .when(pl.col("vendor_convention") == "inout_10").then(pl.lit(0)).otherwise(pl.lit(2)))
    mode_str = pl.col("mode").replace_strict(MODE_STRING, return_dtype=pl.String)
    mode_num = pl.col("mode").replace_strict(MODE_NUMBER, return_dtype=pl.Int64).cast(pl.String)
    platform = pl.col("platform")
    verify = pl.when((pl.col("event_kind") == "door_forced") | platform).then(pl.lit("")).when(
        pl.col("numeric_mode")).then(_fmt(',"currentVerifyMode":{}', mode_num)).otherwise(
        _fmt(',"currentVerifyMode":"{}"', mode_str))
    # what the device's clock said (years behind on the faulty controller)
    device_ms = pl.col("ts_ms") - pl.when(pl.col("clock_off")).then(pl.lit(CLOCK_OFF_MS)).otherwise(pl.lit(0))
    local = device_ms.cast(pl.Datetime("ms"))
    happen = pl.when(pl.col("local_form")).then(local.dt.strftime("%Y-%m-%d %H:%M:%S")).otherwise(_iso(device_ms))
    glued = _fmt("{}{}.{}", local.dt.strftime("%Y-%m-%d"), local.dt.strftime("%H: %M: %S"),
                 (device_ms % 1000).cast(pl.String).str.zfill(3))
    happen = (pl.when(pl.col("time_fault") == "space_colon").then(happen.str.replace_all(":", ": ", literal=True))
              .when(pl.col("time_fault") == "space_t").then(
                  happen.str.replace("T", "T ", literal=True).str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}  "))
              .when(pl.col("time_fault") == "glued").then(glued)
              .when(pl.col("time_fault") == "sentinel").then(pl.lit(SENTINEL)).otherwise(happen))
    happen_kv = pl.when(pl.col("time_fault") == "missing_time").then(pl.lit("")).otherwise(
        _fmt('"happenTime":"{}",', happen))
    face = pl.col("mode").is_in(["face", "multi"]) & (pl.col("event_kind") != "door_forced")
    pic = pl.when(face).then(_fmt(
        ',"ExtEventPictureURL":"http://10.{}.{}.{}:6120/pic?={}d{}i{}&AccessKeyId=x"',
        pl.col("cidx") % 200, pl.col("door_row") % 250, pl.col("seq") % 250, pl.col("seq"), pl.col("cidx"),
        pl.col("ts_ms") % 997)).otherwise(pl.lit(""))
    # sometimes a base64 face image, sometimes a 128/256/512-float feature vector
    img = pl.col("seq") % len(jpegs)
    feat = pl.col("seq") % len(feats)
    extra = pl.lit("")
    for i, blob in enumerate(jpegs):
        extra = pl.when(face & (pl.col("face_extra") == 1) & (img == i)).then(
            pl.lit(',"faceImage":"' + blob + '"')).otherwise(extra)
    for i, vec in enumerate(feats):
        extra = pl.when(face & (pl.col("face_extra") == 2) & (feat == i)).then(
            pl.lit(',"faceFeature":' + vec)).otherwise(extra)
    # the platform sends "0" for nobody; a legacy integration leaves the field out
    person = pl.when(pl.col("person_no").is_not_null()).then(_fmt(',"ExtEventPersonNo":"{}"', pl.col("person_no"))
                                                             ).when(platform).then(pl.lit(',"ExtEventPersonNo":"0"')
                                                                                   ).otherwise(pl.lit(""))
    card = pl.when(pl.col("card_no").is_not_null()).then(_fmt(',"ExtEventCardNo":"{}"', pl.col("card_no"))
                                                         ).otherwise(pl.lit(',"ExtEventCardNo":""'))
    name = pl.when(pl.col("with_name") & pl.col("name").is_not_null()).then(
        _fmt(',"personName":"{}"', pl.col("name"))).otherwise(pl.lit(""))
    # an unregistered door: a registry code with its first 8 digits set to f (sites never issues such a code)
    src = pl.when(pl.col("unknown_door")).then(_fmt("ffffffff{}", pl.col("door_id").str.slice(8))).otherwise(
        pl.col("door_id"))
    user = pl.when(platform).then(pl.lit("")).otherwise(_fmt(',"UserType":{}', pl.col("user_type").replace_strict(
        {**USER_CODES, "unknown": 0}, return_dtype=pl.Int64)))
    # ISC platform: epoch microseconds as a string; a legacy integration: ISO with offset
    received = pl.when(platform).then(((pl.col("recv_ms") - SHANGHAI_MS) * 1000).cast(pl.String)).otherwise(
        _iso(pl.col("recv_ms")))
    body = ev.select(
        "seq",
        head=_fmt('{"eventId":"{}","eventType":{},', pl.col("event_id"), pl.col("event_type")),
        tail=_fmt(
            '"srcIndex":"{}","srcType":"door","srcName":"{}","srcParentIndex":"{}","eventLvl":0,"timeout":0,'
            '"data":{"ExtEventInOut":{},"ExtEventDoorID":"1","ExtEventReaderID":"{}","ExtReceiveTime":"{}",'
            '"Seq":{}{},"svrIndexCode":"isc-{}"{}{}{}{}{}{}}}',
            src, pl.col("gate_name"), pl.col("device_gb_code"), in_out,
            pl.when(pl.col("direction") == "out").then(pl.lit("2")).otherwise(pl.lit("1")), received,
            pl.col("seq"), user, pl.col("cidx"), person, card, name, verify, pic, extra),
        happen=happen_kv,
    )
    rows = dl.lazy().join(body, on="seq", how="left").sort("cidx", "file_seq", "line", "event_index")
    rows = rows.select("cidx", "file_seq", "line", "env_send_ms", "status", text=_fmt(
        '{}{}"status":{},{}', pl.col("head"), pl.col("happen"), pl.col("status"), pl.col("tail")))
    env = rows.group_by("cidx", "file_seq", "line", maintain_order=True).agg(
        events=pl.col("text").str.join(","), send_ms=pl.col("env_send_ms").first(), max_status=pl.col("status").max())
    return env.with_columns(text=_fmt(
        '{"method":"OnEventNotify","params":{"sendTime":"{}","ability":"event_acs","events":[{}]}}',
        _iso(pl.col("send_ms")), pl.col("events"))).drop("events").collect()


def _write(landing: Path, day: date, comms: pl.DataFrame, env: pl.DataFrame, pool: ThreadPoolExecutor) -> int:
    """One gzipped NDJSON file per community and hour of sending; returns the number of files.

    ``env`` comes from _render in (cidx, file_seq, line) order, so each file is a contiguous run of lines.
    """
    files = env.group_by("cidx", "file_seq", maintain_order=True).agg(n=pl.len())
    starts = np.concatenate([[0], np.cumsum(files["n"].to_numpy())])
    cids = comms["community_id"].gather(files["cidx"]).to_list()
    texts = env["text"]

    def write(i: int) -> None:
        out = landing / "access_events" / day.isoformat() / cids[i]
        out.mkdir(parents=True, exist_ok=True)
        name = f"{cids[i]}-{int(files['file_seq'][i]):03d}.ndjson.gz"
        tmp = out / (name + ".part")
        text = texts.slice(int(starts[i]), int(starts[i + 1] - starts[i])).str.join("\n").item() + "\n"
        with gzip.open(tmp, "wb", compresslevel=3) as f:
            f.write(text.encode("utf-8"))
        tmp.rename(out / name)

    list(pool.map(write, range(files.height)))
    return files.height


def _security_truth(acc: pl.DataFrame) -> pl.DataFrame:
    """Forced doors, repeated denials (rising edge of >=3 in 10 min per credential), anti-passback (<=2 s)."""
    cred = pl.coalesce(pl.col("person_no"), pl.col("card_no"))
    a = acc.with_columns(cred=cred)
    forced = a.filter(pl.col("event_kind") == "door_forced").select("community_id", "building_id", "eff_ms",
                                                                    event_type=pl.lit("forced_door"))
    den = a.filter((pl.col("event_kind") == "denied") & pl.col("cred").is_not_null()).sort("cred", "eff_ms", "event_id")
    den = den.with_columns(c=(pl.col("eff_ms") - pl.col("eff_ms").shift(2).over("cred")) <= 600_000)
    den = den.with_columns(c=pl.col("c").fill_null(False))
    rep = den.filter(pl.col("c") & ~pl.col("c").shift(1).over("cred").fill_null(False)).select(
        "community_id", "building_id", "eff_ms", event_type=pl.lit("repeated_denied"))
    gr = a.filter((pl.col("event_kind") == "pass") & pl.col("cred").is_not_null()).sort("door_id", "cred", "eff_ms",
                                                                                        "event_id")
    tail = gr.filter((pl.col("eff_ms") - pl.col("eff_ms").shift(1).over("door_id", "cred")) <= 2000).select(
        "community_id", "building_id", "eff_ms", event_type=pl.lit("anti_passback"))
    allev = pl.concat([forced, rep, tail])
    return allev.with_columns(event_minute=(pl.col("eff_ms") // 60_000 * 60_000).cast(pl.Datetime("ms"))).group_by(
        "event_type", "community_id", "building_id", "event_minute").agg(events=pl.len()).sort(pl.all())


def simulate(landing: Path, day: date, communities: pl.DataFrame, devices: pl.DataFrame, seed: int,
             canaries: list[Canary], faults: bool = True) -> dict:
    """Door registry, a day of ISC door events per community, and the ground truth; returns the summary.

    Generates, writes and reduces to truth CHUNK_COMMUNITIES communities at a time; event ``Seq`` numbers
    (and so event ids) run on across chunks.
    """
    landing = Path(landing)
    # which communities' feed is the ISC platform's own (the first is a legacy integration, the second not)
    platform = np.random.default_rng([seed, 43]).random(communities.height) < 0.5
    platform[0:1] = False
    platform[1:2] = True
    doors = sites.doors(communities, seed)
    sites.write_doors(landing, day, doors)
    d = doors.with_row_index("door_row").with_columns(pl.col("door_row").cast(pl.Int64))
    door_index = _door_index(communities, doors)
    conventions = doors["vendor_convention"].to_numpy()
    population = _population(communities, np.random.default_rng([seed, 41]))
    # the controller with the clock years off: the last door of the first platform community
    on_platform = np.flatnonzero(platform)
    clock_off_row = (int(door_index[0][on_platform[0]] + door_index[1][on_platform[0]] + door_index[2][on_platform[0]]
                         - 1) if on_platform.size else -1)
    truth = _Truth(communities, d)
    seq0 = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for k, c0 in enumerate(range(0, communities.height, CHUNK_COMMUNITIES)):
            c1 = min(c0 + CHUNK_COMMUNITIES, communities.height)
            rng = np.random.default_rng([seed, day.toordinal(), 40, k])
            people = _people(communities, population, canaries, c0, c1)
            ev = _events(rng, communities.slice(c0, c1 - c0), c0, door_index, conventions, people, day, platform)
            if c0 == 0:
                ev = _plant_canaries(ev, people)
            ev = _plant_patterns(rng, ev, c1 - c0).with_columns(seq=pl.col("seq") + seq0)
            seq0 += ev.height
            _deliver(rng, landing, day, communities, d, ev, faults, truth, pool, clock_off_row, (c0, c1))
    return truth.write(landing, day, doors)


# the event columns the truth tables are computed from
_TRUTH_COLUMNS = ("seq", "cidx", "door_row", "ts_ms", "recv_ms", "time_fault", "event_kind", "event_id", "direction",
                  "mode", "user_type", "person_no", "card_no", "platform", "local_form", "clock_off")


def _other_events(rng: np.random.Generator, c0: int, c1: int, day: date, door_env: pl.DataFrame) -> pl.DataFrame:
    """Field-detection, people-counting and video events of cameras on the same subscription, one envelope each,
    appended to the community's file of their sending hour: (cidx, file_seq, line, send_ms, max_status, text,
    ability, event_class, event_type, hour_start, time_quality)."""
    midnight = int((np.datetime64(day.isoformat(), "ms") - np.datetime64("1970-01-01", "ms")).astype(np.int64))
    parts = []
    for ability, code, cls, per_day in OTHER_EVENTS:
        cidx = np.repeat(np.arange(c0, c1), per_day)
        ts = midnight + (rng.uniform(0.5, 23.5, cidx.size) * 3_600_000).astype(np.int64)
        parts.append(pl.DataFrame({"cidx": cidx, "ts_ms": ts, "ability": ability, "event_type": code,
                                   "event_class": cls, "u": rng.integers(0, 1 << 62, cidx.size)}))
    ot = pl.concat(parts).with_columns(send_ms=pl.col("ts_ms") + 900)
    # ISC's own sample of a video-loss event carries the sentinel happenTime (and no data block at all)
    sentinel = pl.col("event_class") == "video_loss"
    happen = pl.when(sentinel).then(pl.lit(SENTINEL)).otherwise(_iso(pl.col("ts_ms")))
    data = pl.when(pl.col("ability") == "event_rule").then(_fmt(
        ',"data":{"dataType":"behavioralAnalysis","recvTime":"{}","eventType":"fielddetection",'
        '"fielddetection":[{"imageUrl":"http://10.3.{}.{}:8080/pic/{}.jpg","detectionTarget":1}]}',
        _iso(pl.col("ts_ms") + 400), pl.col("cidx") % 250, pl.col("u") % 250, pl.col("u") % 99991)).when(sentinel).then(
        pl.lit("")).otherwise(_fmt(',"data":{"ExtReceiveTime":"{}"}', ((pl.col("ts_ms") + 400 - SHANGHAI_MS) * 1000)))
    src = _fmt("{}", pl.col("u").hash(7).cast(pl.String).str.zfill(20).str.slice(0, 20))
    ot = ot.with_columns(
        file_seq=((pl.col("send_ms") - midnight) // 3_600_000).clip(0, 23),
        text=_fmt('{"method":"OnEventNotify","params":{"ability":"{}","events":[{"eventId":"{}","eventType":{},'
                  '"happenTime":"{}","srcIndex":"{}","srcName":"","srcParentIndex":"","srcType":"camera",'
                  '"status":0,"timeout":0{}}],"sendTime":"{}"}}',
                  pl.col("ability"), _fmt("oth{}", pl.col("u")), pl.col("event_type"), happen, src, data,
                  _iso(pl.col("send_ms"))),
        hour_start=pl.when(sentinel).then(None).otherwise(pl.col("ts_ms") // 3_600_000 * 3_600_000)
        .cast(pl.Datetime("ms")),
        time_quality=pl.when(sentinel).then(pl.lit("missing")).otherwise(pl.lit("ok")),
        max_status=pl.lit(0),
    )
    last = door_env.group_by("cidx", "file_seq").agg(last=pl.col("line").max())
    ot = ot.sort("cidx", "file_seq", "send_ms", "u").join(last, on=["cidx", "file_seq"], how="left")
    ot = ot.with_columns(line=pl.col("last").fill_null(0) + pl.int_range(pl.len()).over("cidx", "file_seq") + 1)
    return ot.select(*(pl.col(c).cast(door_env.schema[c]) for c in door_env.columns), "ability", "event_class",
                     "event_type", "hour_start", "time_quality")


def _deliver(rng: np.random.Generator, landing: Path, day: date, communities: pl.DataFrame, d: pl.DataFrame,
             ev: pl.DataFrame, faults: bool, truth: _Truth, pool: ThreadPoolExecutor, clock_off_row: int = -1,
             chunk: tuple[int, int] | None = None) -> None:
    """Faults, deliveries, envelopes and files of one chunk's events (door events, then the chunk's
    other-ability events appended to their files), reduced into the truth."""
    ev = _faults(rng, ev, faults, clock_off_row)
    dl = _deliveries(rng, ev)
    env = _render(rng, ev, dl, d)
    c0, c1 = chunk if chunk else (int(ev["cidx"].min()), int(ev["cidx"].max()) + 1)
    other = _other_events(rng, c0, c1, day, env)
    env = pl.concat([env.with_columns(other=pl.lit(False)),
                     other.select(env.columns).with_columns(other=pl.lit(True))]).sort("cidx", "file_seq", "line")
    truncated = np.zeros(env.height, dtype=bool)
    bad_send = np.zeros(env.height, dtype=bool)
    if faults:
        truncated = rng.random(env.height) < 0.002
        # an unparseable sendTime, only on envelopes of first deliveries and re-sends (status 0): an update
        # without a usable send time cannot be ordered by anyone, so the pipeline dates it earliest
        bad_send = (rng.random(env.height) < 0.003) & (env["max_status"] == 0).to_numpy()
        env = env.with_columns(text=pl.when(pl.Series(bad_send)).then(
            pl.col("text").str.replace(r'"sendTime":"[^"]*"', f'"sendTime":"{SENTINEL}"')).otherwise(pl.col("text")))
        env = env.with_columns(text=pl.when(pl.Series(truncated)).then(
            pl.col("text").str.slice(0, pl.col("text").str.len_chars() // 2)).otherwise(pl.col("text")))
    files = _write(landing, day, communities, env, pool)
    marks = env.select("cidx", "file_seq", "line", "other", truncated=pl.Series(truncated),
                       bad_send=pl.Series(bad_send))
    truth.add(ev, dl, marks.filter(~pl.col("other")), files)
    truth.add_other(other.join(marks.filter(pl.col("other")).select("cidx", "file_seq", "line", "truncated",
                                                                    "bad_send"), on=["cidx", "file_seq", "line"]))


class _Truth:
    """Record accounting, gate-hour counts and security events as the pipeline must find them, chunk by chunk.

    Every truth table is grouped by community, so the per-chunk tables concatenate to the district's.
    """

    def __init__(self, comms: pl.DataFrame, d: pl.DataFrame) -> None:
        self.ids = comms.with_row_index("cidx").select(pl.col("cidx").cast(pl.Int64), "community_id")
        self.d = d.select("door_row", "door_id", "kind", "building_id")
        self.tables: dict[str, list[pl.DataFrame]] = {"gate_hour": [], "access_daily": [], "security_events": []}
        self.counts = dict.fromkeys(("files", "lines", "landed", "accepted", "malformed_json", "unknown_door",
                                     "duplicates_in_file", "duplicates_cross_file", "time_repaired",
                                     "time_from_receive", "clock_skew", "bad_send_time", "stale_resends",
                                     "routed_non_door", "stranger_person_zero"), 0)
        self.final_status: dict[int, int] = {}
        self.other: list[pl.DataFrame] = []

    def add_other(self, other: pl.DataFrame) -> None:
        """Other-ability events (one a line): landed and routed unless their line was truncated."""
        kept = other.filter(~pl.col("truncated"))
        self.counts["lines"] += other.height
        self.counts["landed"] += kept.height
        self.counts["accepted"] += kept.height
        self.counts["routed_non_door"] += kept.height
        # a truncated line is one malformed_json record (counted with the door lines' truncations)
        n_trunc = int(other["truncated"].sum())
        self.counts["landed"] += n_trunc
        self.counts["malformed_json"] += n_trunc
        self.other.append(kept.group_by("ability", "event_class").agg(events=pl.len()))

    def add(self, ev: pl.DataFrame, dl: pl.DataFrame, env: pl.DataFrame, files: int) -> None:
        """Reduce one chunk's events, deliveries and envelopes (cidx, file_seq, line, truncated) to truth."""
        dl = dl.join(env.select("cidx", "file_seq", "line", "truncated"), on=["cidx", "file_seq", "line"])
        rec_events = dl.filter(~pl.col("truncated")).join(ev.select("seq", "time_fault", "unknown_door"), on="seq")
        ok = rec_events.filter(~pl.col("unknown_door"))
        ok = ok.with_columns(dup_in=pl.int_range(pl.len()).over("cidx", "file_seq", "seq", "status") > 0)
        bronze = ok.filter(~pl.col("dup_in"))
        # the vendor's statuses only progress (0, then 1/2, then 4/5): the highest status received is the event's
        # final one, whatever order the copies were delivered in
        final = bronze.group_by("seq").agg(status=pl.col("status").max(), versions=pl.len())
        trunc_lines = int(env["truncated"].sum())
        acc = ev.select(_TRUTH_COLUMNS).join(final, on="seq").join(self.d, on="door_row").join(self.ids, on="cidx")
        # what the pipeline reads as the event time: the receive time when happenTime is unusable or the clock is
        # off; a local "yyyy-MM-dd HH:mm:ss" happenTime is whole seconds
        whole_s = pl.col("local_form") & (pl.col("time_fault").is_null() | pl.col("time_fault").is_in(
            ["space_colon", "space_t"]))
        from_receive = pl.col("time_fault").is_in(["sentinel", "missing_time"]).fill_null(False) | pl.col("clock_off")
        acc = acc.with_columns(
            eff_ms=pl.when(from_receive).then(pl.col("recv_ms")).when(whole_s).then(pl.col("ts_ms") // 1000 * 1000)
            .otherwise(pl.col("ts_ms")),
            # a platform feed has no UserType: who passed is unknown unless nobody was matched (a stranger)
            user_type=pl.when(pl.col("platform") & (pl.col("user_type") != "stranger")).then(pl.lit("unknown"))
            .otherwise(pl.col("user_type")))
        flows = acc.filter(pl.col("event_kind") != "door_forced").with_columns(
            hour_start=(pl.col("eff_ms") // 3_600_000 * 3_600_000).cast(pl.Datetime("ms")))
        self.tables["gate_hour"].append(flows.group_by(
            "community_id", "door_id", "kind", "hour_start", "direction", "mode").agg(
            passes=(pl.col("event_kind") == "pass").sum(),
            visitors=((pl.col("event_kind") == "pass") & (pl.col("user_type") == "visitor")).sum(),
            strangers=(pl.col("user_type") == "stranger").sum(),
            denied=(pl.col("event_kind") == "denied").sum(),
        ).rename({"door_id": "gate_id", "mode": "verify_mode"}).sort(pl.all()))
        self.tables["access_daily"].append(acc.group_by("community_id").agg(
            passes=(pl.col("event_kind") == "pass").sum(),
            residents=((pl.col("event_kind") == "pass") & (pl.col("user_type") == "resident")).sum(),
            visitors=((pl.col("event_kind") == "pass") & (pl.col("user_type") == "visitor")).sum(),
            strangers=(pl.col("user_type") == "stranger").sum(),
            denied=(pl.col("event_kind") == "denied").sum(),
            persons=pl.col("person_no").filter(pl.col("event_kind") == "pass").drop_nulls().n_unique(),
        ))
        self.tables["security_events"].append(_security_truth(acc))
        c = self.counts
        c["files"] += files
        c["lines"] += env.height
        c["landed"] += rec_events.height + trunc_lines
        c["accepted"] += final.height
        c["malformed_json"] += trunc_lines
        c["unknown_door"] += rec_events.height - ok.height
        c["duplicates_in_file"] += int(ok["dup_in"].sum())
        c["duplicates_cross_file"] += bronze.height - final.height
        receive = acc["time_fault"].is_in(["sentinel", "missing_time"]).fill_null(False)
        c["time_repaired"] += int((acc["time_fault"].is_in(["space_colon", "space_t", "glued"]).fill_null(False)
                                   & ~acc["clock_off"]).sum())
        c["time_from_receive"] += int(receive.sum())
        c["clock_skew"] += int((acc["clock_off"] & ~receive).sum())
        c["stranger_person_zero"] += int((acc["platform"] & (acc["user_type"] == "stranger")).sum())
        c["bad_send_time"] += int((env["bad_send"] & ~env["truncated"]).sum())
        # accepted copies that re-send an older status after a newer one was sent
        stale = bronze.join(final.select("seq", final_status="status"), on="seq").filter(
            pl.col("status") < pl.col("final_status"), pl.col("env_send_ms") > pl.col("env_send_ms").filter(
                pl.col("status") == pl.col("final_status")).min().over("seq"))
        c["stale_resends"] += stale.height
        for status, n in acc.group_by("status").len().iter_rows():
            self.final_status[int(status)] = self.final_status.get(int(status), 0) + int(n)

    def write(self, landing: Path, day: date, doors: pl.DataFrame) -> dict:
        """Write the truth tables and summary.json under landing/_truth/access/<day>/; returns the summary."""
        # a community's rows all come from one chunk, sorted there: a stable sort by community is the full sort
        frames = {name: pl.concat(parts).sort("community_id", maintain_order=True).rechunk()
                  for name, parts in self.tables.items() if name != "security_events"}
        frames["security_events"] = pl.concat(self.tables["security_events"]).sort(pl.all())
        out = landing / "_truth" / "access" / day.isoformat()
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            frame.write_parquet(out / f"{name}.parquet.part")
            (out / f"{name}.parquet.part").rename(out / f"{name}.parquet")
        c = self.counts
        quarantine = {k: c[k] for k in ("malformed_json", "unknown_door") if c[k]}
        security = frames["security_events"]
        other = (pl.concat(self.other).group_by("ability", "event_class").agg(pl.col("events").sum())
                 .sort("ability", "event_class") if self.other else pl.DataFrame())
        summary = {
            "day": day.isoformat(), "files": c["files"], "lines": c["lines"], "landed": c["landed"],
            "accepted": c["accepted"], "door_events": c["accepted"] - c["routed_non_door"],
            "quarantined": sum(quarantine.values()),
            "duplicates_in_file": c["duplicates_in_file"], "duplicates_cross_file": c["duplicates_cross_file"],
            "quarantine_by_reason": quarantine,
            "routed_non_door": c["routed_non_door"],
            "routed_by_class": {f"{a}/{k}": int(n) for a, k, n in other.iter_rows()},
            "time_repaired": c["time_repaired"], "time_from_receive": c["time_from_receive"],
            "clock_skew": c["clock_skew"], "stranger_person_zero": c["stranger_person_zero"],
            "bad_send_time": c["bad_send_time"], "stale_resends": c["stale_resends"],
            "final_status": {str(k): v for k, v in sorted(self.final_status.items())},
            "security_events": {str(k): int(v) for k, v in security.group_by("event_type").agg(
                pl.col("events").sum()).sort("event_type").iter_rows()},
            "conventions": sorted(doors["vendor_convention"].unique().to_list()),
        }
        tmp = out / "summary.json.part"
        tmp.write_text(json.dumps(summary, indent=1), encoding="utf-8")
        tmp.rename(out / "summary.json")
        return summary


__all__ = ["CHUNK_COMMUNITIES", "simulate"]
