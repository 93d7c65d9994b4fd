"""Simulated vehicle sources: GA/T 1400 plate-camera passages and parking-cloud (4pyun-like) session pushes.

One set of true parking sessions per community-day drives both feeds, so a car appears as passages and as a
session; vendor quirks are switched on with ``faults`` and the ground truth is written next to the landing.

Sessions spanning days: a car that entered yesterday appears today only as an exit push (status exit_only,
its enter_time taken from the push); a car still parked at midnight stays ``open``. The simulator never
generates a car that is parked through a whole day (it would be invisible in that day's pushes).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from simulator import carparks
from simulator.canaries import Canary

# GA/T 1400 plate colour codes (as in assets.privacy.plates._GAT1400_COLOURS): 5 blue, 9 green, 6 yellow
_GAT_COLOUR = {1: "5", 5: "9", 2: "6"}
_OCR = {"0": "O", "1": "I"}
_FAKE_JPEG = "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/"


def _ms(ts: pl.Expr) -> pl.Expr:
    """Epoch milliseconds of a naive Asia/Shanghai local datetime."""
    return (ts.dt.replace_time_zone("Asia/Shanghai").dt.epoch("ms")).cast(pl.Int64)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.rename(path)


def _minutes(day: date, m: np.ndarray) -> pl.Series:
    base = np.datetime64(datetime.combine(day, datetime.min.time()), "s")
    return pl.Series((base + (m * 60).astype("timedelta64[s]")).astype("datetime64[ms]"))


def _sessions(sites: carparks.Sites, comms: pl.DataFrame, day: date, seed: int, canaries: list[Canary],
              faults: bool) -> pl.DataFrame:
    """True parking sessions touching ``day`` with the status the pipeline must give them."""
    rng = np.random.default_rng([seed, day.toordinal(), 7101])
    gates = sites.tollgates.select("community_id", "park_id", "gate_id")
    parks = sites.car_parks.select("park_id", "community_id")
    canary_plates = {c.plate for c in canaries}
    # residents: an exit today of last night's session, and a return (open at midnight) ---------------
    res = sites.residents
    moving = (rng.random(res.height) < 0.75) | res["plate"].is_in(list(canary_plates)).to_numpy()
    res = res.filter(pl.Series(moving))
    n = res.height
    commuter = rng.random(n) < 0.75
    out_m = np.where(commuter, rng.normal(8 * 60, 50, n), rng.uniform(9.5 * 60, 15 * 60, n)).clip(5 * 60, 20 * 60)
    back_m = np.where(commuter, np.maximum(rng.normal(18.5 * 60, 75, n), out_m + 30), out_m + rng.uniform(60, 240, n))
    prev_m = rng.normal(19 * 60, 90, n).clip(12 * 60, 24 * 60 - 1) - 24 * 60
    base = res.select("community_id", "plate", "plate_color", "car_type").with_columns(
        resident=pl.lit(True), u_park=pl.Series(rng.random(n)), u_g1=pl.Series(rng.random(n)),
        u_g2=pl.Series(rng.random(n)))
    overnight = base.with_columns(enter_ts=_minutes(day, prev_m), leave_ts=_minutes(day, out_m),
                                  status=pl.lit("exit_only"), kind=pl.lit("overnight"))
    back = base.with_columns(enter_ts=_minutes(day, back_m), leave_ts=pl.lit(None, pl.Datetime("ms")),
                             status=pl.lit("open"), kind=pl.lit("return")).filter(pl.Series(back_m < 24 * 60))
    # visitors: same-day visits (closed, or open past midnight) and a few left over from last night -----
    sizes = comms.select("community_id", "size_factor")
    n_vis = rng.poisson(78 * sizes["size_factor"].to_numpy())
    n_night = rng.poisson(4, sizes.height)
    vc = np.repeat(sizes["community_id"].to_numpy(), n_vis + n_night)
    nv = vc.size
    plates, colours = carparks.random_plates(rng, nv, local_share=0.6, nev_share=0.25)
    yellow = rng.random(nv) < 0.03
    colours = np.where(yellow & (colours == 1), 2, colours)
    no_plate = rng.random(nv) < 0.03
    plates = np.where(no_plate, "无牌车", np.array(plates, dtype=object))
    colours = np.where(no_plate, -1, colours)
    night = np.concatenate([np.r_[np.zeros(a, bool), np.ones(b, bool)] for a, b in zip(n_vis, n_night, strict=True)])
    peak = rng.choice(3, nv, p=[0.35, 0.35, 0.3])
    enter_m = np.array([10, 14.5, 19])[peak] * 60 + rng.normal(0, [90, 120, 90], (nv, 3))[np.arange(nv), peak]
    enter_m = enter_m.clip(6 * 60, 23.6 * 60)
    dur = np.maximum(rng.lognormal(np.log(80), 0.8, nv), 5)
    leave_m = enter_m + dur
    enter_m = np.where(night, rng.uniform(18 * 60, 23.9 * 60, nv) - 24 * 60, enter_m)
    leave_m = np.where(night, rng.uniform(6 * 60, 11 * 60, nv), leave_m)
    stays = leave_m >= 24 * 60
    vis = pl.DataFrame({
        "community_id": vc, "plate": plates.astype(str), "plate_color": colours.astype(np.int64),
        "car_type": np.ones(nv, np.int64), "resident": np.zeros(nv, bool),
        "u_park": rng.random(nv), "u_g1": rng.random(nv), "u_g2": rng.random(nv),
        "enter_ts": _minutes(day, enter_m), "leave_ts": _minutes(day, np.where(stays, 0, leave_m)),
        "status": np.where(night, "exit_only", np.where(stays, "open", "closed")),
        "kind": np.where(night, "overnight", "visit"),
    }).with_columns(leave_ts=pl.when(pl.Series(stays)).then(None).otherwise(pl.col("leave_ts")))
    s = pl.concat([overnight, back.select(overnight.columns), vis.select(overnight.columns)])
    # park and gates: a uniform draw over the community's parks / the park's gates
    park_list = parks.group_by("community_id", maintain_order=True).agg(pl.col("park_id"))
    s = s.join(park_list, on="community_id").with_columns(
        park_id=pl.col("park_id").list.get((pl.col("u_park") * pl.col("park_id").list.len()).cast(pl.Int64)))
    gate_list = gates.group_by("park_id", maintain_order=True).agg(pl.col("gate_id"))
    pick = (lambda u: pl.col("gate_id").list.get((pl.col(u) * pl.col("gate_id").list.len()).cast(pl.Int64)))  # noqa: E731
    s = s.join(gate_list, on="park_id").with_columns(enter_gate=pick("u_g1"), leave_gate=pick("u_g2"))
    s = s.drop("u_park", "u_g1", "u_g2", "gate_id").sort("park_id", "enter_ts", "plate")
    # car parks on the method/data cloud: no serial, no money, no enter_time on the exit (only a duration)
    vendor = sites.car_parks.select("park_id", "vendor_park_id", method=pl.col("vendor") == "method_data")
    s = s.join(vendor, on="park_id", how="left", maintain_order="left")
    s = s.with_columns(
        parking_serial=pl.concat_str(
            pl.col("enter_ts").dt.strftime("%Y%m%d"),
            (pl.int_range(pl.len()).over("park_id") + pl.when(pl.col("kind") == "overnight").then(500_000)
             .otherwise(0)).cast(pl.String).str.zfill(6)),
        dur_min=((pl.col("leave_ts") - pl.col("enter_ts")).dt.total_seconds() / 60),
    )
    # fees: temporary cars pay 5 yuan per started hour after 30 free minutes
    hours = (pl.col("dur_min") / 60).ceil().cast(pl.Int64)
    total = pl.when((pl.col("car_type") == 1) & (pl.col("dur_min") > 30)).then(hours * 500).otherwise(0)
    s = s.with_columns(total_value=pl.when(pl.col("leave_ts").is_not_null()).then(total).otherwise(0).cast(pl.Int64))
    u = rng.random((s.height, 6))
    s = s.with_columns(
        free_value=pl.when(pl.Series(u[:, 0] < 0.2) & (pl.col("total_value") > 0)).then(pl.lit(500, pl.Int64)).otherwise(pl.lit(0, pl.Int64))
        .clip(upper_bound=pl.col("total_value")),
        online=pl.Series(u[:, 1] < 0.85),
        lost_entry=pl.Series(u[:, 2] < 0.02) & (pl.col("kind") == "visit") & (pl.col("status") == "closed") & faults,
        enter_changed=pl.Series(u[:, 3] < 0.03) & (pl.col("kind") == "visit") & (pl.col("status") == "closed")
        & faults & ~pl.col("method"),
        bad_money=pl.Series(u[:, 4] < 0.012) & (pl.col("kind") == "visit") & (pl.col("status") == "closed") & faults
        & ~pl.col("method"),
        missed_exit=pl.Series(u[:, 5] < 0.012) & (pl.col("kind") == "visit") & (pl.col("status") == "closed")
        & pl.col("plate").str.starts_with("无").not_() & faults,
        shift_s=pl.Series(rng.choice([-1, 1], s.height) * rng.integers(30, 300, s.height)),
    )
    s = s.with_columns(
        lost_entry=pl.col("lost_entry") & ~pl.col("enter_changed"),
        bad_money=pl.col("bad_money") & ~pl.col("lost_entry") & ~pl.col("enter_changed"),
    ).with_columns(missed_exit=pl.col("missed_exit") & ~pl.col("lost_entry") & ~pl.col("enter_changed")
                   & ~pl.col("bad_money"))
    # a missed exit: the car came back later the same day and the cloud auto-closes the first session
    ret = s.filter(pl.col("missed_exit")).with_columns(
        enter_ts=pl.col("leave_ts") + pl.duration(minutes=pl.Series(rng.integers(30, 120, s.filter(
            pl.col("missed_exit")).height))),
        missed_exit=pl.lit(False), kind=pl.lit("visit"),
    ).filter(pl.col("enter_ts").dt.date() == day).with_columns(
        leave_ts=pl.col("enter_ts") + pl.duration(minutes=40), status=pl.lit("closed"),
        parking_serial=pl.concat_str(pl.col("enter_ts").dt.strftime("%Y%m%d"), pl.lit("7"),
                                     pl.col("parking_serial").str.slice(9, 5)),
        dur_min=pl.lit(40.0), total_value=pl.lit(500, pl.Int64), free_value=pl.lit(0, pl.Int64))
    ret = ret.filter(pl.col("leave_ts").dt.date() == day)
    s = pl.concat([s.with_columns(missed_exit=pl.col("missed_exit") & pl.col("plate").is_in(ret["plate"].to_list())),
                   ret])
    # what the cloud records: recorded enter/leave and the status the pipeline must derive
    nxt = ret.select("park_id", "plate", next_enter=pl.col("enter_ts"))
    s = s.join(nxt, on=["park_id", "plate"], how="left").with_columns(
        next_enter=pl.when(pl.col("missed_exit")).then(pl.col("next_enter")))
    s = s.unique(subset=["park_id", "parking_serial"], keep="first", maintain_order=True)
    # the method/data cloud's times: float epoch seconds to the microsecond (the fraction drawn here so pushes and
    # truth agree), the duration in hours with two decimals
    frac = np.random.default_rng([seed, day.toordinal(), 7103]).integers(0, 10**6, (s.height, 2))
    us = lambda c, k: (c.dt.replace_time_zone("Asia/Shanghai").dt.epoch("us") // 10**6 * 10**6  # noqa: E731
                       + pl.Series(frac[:, k]))
    digits = lambda e: pl.concat_str((e // 10**6).cast(pl.String), pl.lit("."),  # noqa: E731
                                     (e % 10**6).cast(pl.String).str.zfill(6))
    s = s.with_columns(in_text=digits(us(pl.col("enter_ts"), 0)), out_text=digits(us(pl.col("leave_ts"), 1)),
                       dur_text=((pl.col("leave_ts") - pl.col("enter_ts")).dt.total_seconds() / 3600)
                       .map_elements(lambda v: f"{v:.2f}", return_dtype=pl.String))
    return s.with_columns(
        rec_enter=pl.when(pl.col("enter_changed")).then(pl.col("enter_ts") + pl.duration(seconds=pl.col("shift_s")))
        .otherwise(pl.col("enter_ts")),
        rec_leave=pl.when(pl.col("missed_exit")).then(pl.col("next_enter"))
        .when(pl.col("bad_money")).then(None).otherwise(pl.col("leave_ts")),
        rec_status=pl.when(pl.col("lost_entry")).then(pl.lit("exit_only"))
        .when(pl.col("missed_exit")).then(pl.lit("auto_closed"))
        .when(pl.col("bad_money")).then(pl.lit("open")).otherwise(pl.col("status")),
    )


def _pushes(s: pl.DataFrame, sites: carparks.Sites, day: date, rng: np.random.Generator, faults: bool) -> pl.DataFrame:
    """One row per parking-cloud push: community_id, file, line (JSON text), kind of record."""
    cap = sites.car_parks.select("park_id", "capacity")
    enter = s.filter(pl.col("enter_ts").dt.date() == day, ~pl.col("lost_entry"))
    leave = s.filter(pl.col("leave_ts").is_not_null(), ~pl.col("missed_exit"))
    # a full-width plate now and then (NFKC folds it back at parse)
    fw = pl.Series(rng.random(s.height) < (0.02 if faults else 0.0))
    s = s.with_columns(plate_sent=pl.when(fw).then(pl.col("plate").str.replace_many(
        list("0123456789"), [chr(ord(c) + 0xFEE0) for c in "0123456789"])).otherwise(pl.col("plate")))
    enter = enter.join(s.select("park_id", "parking_serial", "plate_sent"), on=["park_id", "parking_serial"])
    leave = leave.join(s.select("park_id", "parking_serial", "plate_sent"), on=["park_id", "parking_serial"])
    plate = pl.col("plate_sent")
    common = dict(park_uuid=pl.col("park_id"), parking_serial=pl.col("parking_serial"), plate=plate,
                  plate_color=pl.col("plate_color"), car_type=pl.col("car_type"), vehicle_type=pl.lit(1))
    ent = enter.join(cap, on="park_id").select(
        "community_id", t=pl.col("enter_ts"), event=pl.lit("enter"),
        body=pl.struct(event_type=pl.lit("enter"), **common, enter_time=_ms(pl.col("enter_ts")),
                       enter_gate=pl.col("enter_gate"), total_parking_space=pl.col("capacity"),
                       remain_parking_space=(pl.col("capacity") - 20).clip(lower_bound=0),
                       enter_release_reason=pl.lit("auto"), is_sync=pl.lit(0)),
        # the method/data cloud (blue-bxy/park-api ParkCallbackService.php): float seconds, its own car-park id
        mline=pl.when(pl.col("method")).then(pl.concat_str(
            pl.lit('{"method":"in","data":{"inTime":'), "in_text", pl.lit(',"plateNo":"'), plate,
            pl.lit('","carType":0,"parkinglotId":"'), "vendor_park_id",
            pl.lit('","pictureIn":"https://park-img.oss-cn-shanghai.aliyuncs.com/car/'),
            pl.col("in_text").str.replace(".", "", literal=True), pl.lit('.jpg"}}'))))
    paid = pl.col("total_value") - pl.col("free_value")
    fen = lambda e: e.cast(pl.String)  # noqa: E731  (the cloud sends fen as strings)
    bad = pl.when(pl.col("u_bad") < 0.5).then(pl.lit("")).otherwise(
        (pl.col("total_value") / 100).map_elements(lambda v: f"{v:.2f}", return_dtype=pl.String))
    leave = leave.with_columns(u_bad=pl.Series(rng.random(leave.height)))
    payment = pl.struct(pay_type=pl.when(pl.col("online")).then(pl.lit("wechat")).otherwise(pl.lit("cash")),
                        pay_time=_ms(pl.col("leave_ts")) - 60_000, value=fen(paid), free_value=fen(pl.col("free_value")),
                        change_value=pl.lit("0"), parking_order=pl.col("parking_serial"))
    lv = leave.join(cap, on="park_id").select(
        "community_id", t=pl.col("leave_ts"), event=pl.lit("leave"),
        body=pl.struct(
            event_type=pl.lit("leave"), **common, enter_time=_ms(pl.col("rec_enter")),
            leave_time=_ms(pl.col("leave_ts")), enter_gate=pl.col("enter_gate"), leave_gate=pl.col("leave_gate"),
            total_value=pl.when(pl.col("bad_money")).then(bad).otherwise(fen(pl.col("total_value"))),
            free_value=fen(pl.col("free_value")),
            online_value=fen(pl.when(pl.col("online")).then(paid).otherwise(0)),
            cash_value=fen(pl.when(pl.col("online")).then(0).otherwise(paid)),
            total_parking_space=pl.col("capacity"), remain_parking_space=(pl.col("capacity") - 20).clip(lower_bound=0),
            payment_list=pl.when(paid > 0).then(pl.concat_list(payment)).otherwise(pl.concat_list(payment).list.head(0)),
            is_sync=pl.lit(0)),
        paid=pl.when(pl.col("bad_money") | pl.col("method")).then(0).otherwise(paid).cast(pl.Int64),
        bad=pl.col("bad_money"),
        n_pay=pl.when(pl.col("bad_money") | pl.col("method") | (paid <= 0)).then(0).otherwise(1).cast(pl.Int64),
        mline=pl.when(pl.col("method")).then(pl.concat_str(
            pl.lit('{"method":"out","data":{"outTime":'), "out_text", pl.lit(',"duration":'), "dur_text",
            pl.lit(',"plateNo":"'), plate, pl.lit('","parkinglotId":"'), "vendor_park_id",
            pl.lit('","pictureOut":"https://park-img.oss-cn-shanghai.aliyuncs.com/car/'),
            pl.col("out_text").str.replace(".", "", literal=True), pl.lit('.jpg"}}'))))
    ent = ent.with_columns(paid=pl.lit(0, pl.Int64), bad=pl.lit(False), n_pay=pl.lit(0, pl.Int64))
    enc = [f.with_columns(line=pl.coalesce("mline", pl.col("body").struct.json_encode())).drop("body", "mline")
           for f in (ent, lv)]
    p = pl.concat([enc[0], enc[1].select(enc[0].columns)]).sort("community_id", "t")
    n = p.height
    u = rng.random((n, 3))
    backfill = pl.Series(u[:, 0] < (0.05 if faults else 0.0))
    p = p.with_columns(
        file=pl.when(backfill).then(pl.lit("backfill.ndjson")).otherwise(pl.lit("pushes.ndjson")),
        line=pl.when(backfill).then(pl.col("line").str.replace('"is_sync":0', '"is_sync":1,"sync_time":'
                                                                 + str(int(datetime.combine(day, datetime.max.time())
                                                                           .timestamp() * 1000) - 3_600_000)))
        .otherwise(pl.col("line")),
        dup_in=pl.Series(u[:, 1] < (0.015 if faults else 0.0)),
        dup_cross=pl.Series(u[:, 2] < (0.02 if faults else 0.0)) & ~backfill,
    )
    extra_in = p.filter("dup_in").with_columns(kind=pl.lit("dup_in_file"))
    extra_cross = p.filter("dup_cross").with_columns(file=pl.lit("backfill.ndjson"), kind=pl.lit("dup_cross_file"))
    base = p.with_columns(kind=pl.lit("record"))
    return pl.concat([base, extra_in, extra_cross]).sort("community_id", "file", "t")


def _passages(s: pl.DataFrame, sites: carparks.Sites, day: date, rng: np.random.Generator, faults: bool,
              feeds: pl.DataFrame) -> pl.DataFrame:
    """One row per camera passage (the camera sees true times, and exits the cloud missed)."""
    g = sites.tollgates.select("gate_id", "tollgate_id", "device_id", "tollgate_alias",
                               gate_no=pl.col("gate_id").str.extract(r"G(\d+)$"))
    ins = s.filter(pl.col("enter_ts").dt.date() == day).select(
        "community_id", "plate", "plate_color", "resident", gate_id=pl.col("enter_gate"), ts=pl.col("enter_ts"),
        direction=pl.lit("in"))
    outs = s.filter(pl.col("leave_ts").is_not_null(), pl.col("leave_ts").dt.date() == day).select(
        "community_id", "plate", "plate_color", "resident", gate_id=pl.col("leave_gate"), ts=pl.col("leave_ts"),
        direction=pl.lit("out"))
    p = pl.concat([ins, outs]).join(g, on="gate_id").sort("gate_id", "ts", "plate")
    n = p.height
    u = rng.random((n, 8))
    travel = pl.DataFrame({"gate_mod": list(range(len(carparks.LANE_TRAVEL))),
                           "in_code": [str(a) for a, _ in carparks.LANE_TRAVEL],
                           "out_code": [str(b) for _, b in carparks.LANE_TRAVEL]})
    p = p.with_columns(
        ts=pl.col("ts").dt.truncate("1s"),
        seq=(pl.int_range(pl.len()).over("gate_id") + 1).cast(pl.String).str.zfill(5),
        lane=pl.when(pl.col("direction") == "in").then(1).otherwise(2),
        no_plate=pl.col("plate").str.starts_with("无"),
        gate_mod=pl.col("gate_no").cast(pl.Int64) % len(carparks.LANE_TRAVEL),
    ).join(travel, on="gate_mod", how="left", maintain_order="left").with_columns(
        travel=pl.when(pl.col("direction") == "in").then(pl.col("in_code")).otherwise(pl.col("out_code")),
    ).drop("gate_mod", "in_code", "out_code").join(feeds, on="community_id", how="left", maintain_order="left")
    pass_time = pl.col("ts").dt.strftime("%Y%m%d%H%M%S")
    source_id = pl.concat_str("device_id", pl.lit("02"), pass_time, "seq")
    p = p.with_columns(motor_vehicle_id=pl.concat_str(source_id, pl.lit("02"), pl.col("seq")), source_id=source_id,
                       pass_time=pass_time)
    # plate as read by the camera
    read = pl.col("plate")
    if faults:
        ocr = pl.Series(u[:, 0] < 0.03)
        fw = pl.Series(u[:, 1] < 0.02)
        sep = pl.Series(u[:, 2] < 0.02)
        serial = read.str.slice(2)
        read = (pl.when(ocr).then(pl.concat_str(read.str.slice(0, 2), serial.str.replace_many(_OCR)))
                .when(fw).then(pl.concat_str(read.str.slice(0, 1),
                                             read.str.slice(1).str.replace_many(
                                                 [chr(c) for c in range(0x21, 0x7F)],
                                                 [chr(c + 0xFEE0) for c in range(0x21, 0x7F)])))
                .when(sep).then(pl.concat_str(read.str.slice(0, 2), pl.lit("·"), serial))
                .otherwise(read))
    p = p.with_columns(
        plate_read=pl.when(pl.col("no_plate")).then(pl.when(pl.Series(u[:, 3] < 0.5)).then(pl.lit("无牌"))
                                                     .otherwise(pl.lit("未识别"))).otherwise(read),
        bad_time=pl.Series(u[:, 4] < (0.005 if faults else 0.0)),
        unknown_gate=pl.Series(u[:, 5] < (0.005 if faults else 0.0)),
        resend=pl.Series(u[:, 6] < (0.03 if faults else 0.0)),
        window=(pl.col("ts").dt.hour() // 4),
        u_img=pl.Series(u[:, 7]),
    ).with_columns(unknown_gate=pl.col("unknown_gate") & ~pl.col("bad_time"))
    return p


def _vehicle_json(p: pl.DataFrame, rng: np.random.Generator, faults: bool) -> pl.DataFrame:
    """The GA/T 1400 MotorVehicleObject JSON text per passage, in its community's feed shape, quirks applied.

    standard: 48-digit MotorVehicleID, YYYYMMDDhhmmss PassTime, 20-digit TollgateID, HasPlate "1"/"0", and on
    odd gates a Zhejiang-style explicit "InOut"; subscription: 10-digit MotorVehicleID, epoch-ms PassTime, the
    short TollgateID (alias), boolean HasPlate/IsDecked; subscription_bare: empty MotorVehicleID and TollgateID
    (the gate is its camera's), IsDecked "0". Direction is always the lane's travel direction code.
    """
    n = p.height
    u = rng.random((n, 3))
    img = lambda t: pl.struct(ImageID=pl.concat_str("source_id", pl.lit(t)), EventSort=pl.lit(10),  # noqa: E731
                              DeviceID=pl.col("device_id"), Type=pl.lit(t), FileFormat=pl.lit("Jpeg"),
                              ShotTime=pl.col("pass_time"), Width=pl.lit(1920), Height=pl.lit(1080),
                              StoragePath=pl.concat_str(pl.lit("http://10.31.7.20:8080/viid/img/"), "source_id",
                                                        pl.lit(f"_{t}.jpg")))
    sub = pl.struct(SubImageInfoObject=pl.concat_list(img("01"), img("02")))
    feed = pl.col("feed")
    # an unknown gate names neither a registered TollgateID nor a registered camera
    fake_gate = pl.concat_str(pl.lit("3101079900121"), pl.col("seq"), pl.lit("99"))
    fake_device = pl.concat_str(pl.lit("3101079900132"), pl.col("seq"), pl.lit("99"))
    tollgate = (pl.when(pl.col("unknown_gate")).then(pl.when(feed == "subscription").then(pl.col("seq").str.slice(0, 3)
                                                                                             + pl.lit("999"))
                                                     .when(feed == "subscription_bare").then(pl.lit(""))
                                                     .otherwise(fake_gate))
                .when(feed == "subscription").then(pl.col("tollgate_alias"))
                .when(feed == "subscription_bare").then(pl.lit(""))
                .otherwise(pl.col("tollgate_id")))
    device = pl.when(pl.col("unknown_gate")).then(fake_device).otherwise(pl.col("device_id"))
    pt = (pl.when(pl.col("bad_time")).then(pl.concat_str(pl.col("pass_time").str.slice(0, 4), pl.lit("1345"),
                                                         pl.col("pass_time").str.slice(8, 6)))
          .when(feed == "subscription").then(_ms(pl.col("ts")).cast(pl.String))
          .otherwise(pl.col("pass_time")))
    mvid = (pl.when(feed == "subscription").then(pl.concat_str(pl.lit("1"), pl.col("gate_no").str.zfill(4), "seq"))
            .when(feed == "subscription_bare").then(pl.lit(""))
            .otherwise(pl.col("motor_vehicle_id")))
    colour = pl.col("plate_color").replace_strict(_GAT_COLOUR, default="99", return_dtype=pl.String)
    obj = pl.struct(
        MotorVehicleID=mvid, InfoKind=pl.lit(1), SourceID=pl.col("source_id"),
        TollgateID=tollgate, DeviceID=device, StorageUrl1=pl.concat_str(
            pl.lit("http://10.31.7.20:8080/viid/img/"), "source_id", pl.lit(".jpg")),
        LaneNo=pl.col("lane"), HasPlate=pl.when(pl.col("no_plate")).then(pl.lit("0")).otherwise(pl.lit("1")),
        PlateClass=pl.when(pl.col("plate_color") == 2).then(pl.lit("01")).otherwise(pl.lit("02")),
        PlateColor=colour, PlateNo=pl.col("plate_read"),
        PlateReliability=pl.lit("9") + pl.Series((u[:, 0] * 10).astype(int).astype(str)),
        VehicleClass=pl.lit("K33"), VehicleColor=pl.Series(np.array(list("ABCJ"))[rng.integers(0, 4, n)]),
        IsDecked=pl.lit("0"), Direction=pl.col("travel"),
        PassTime=pt,
    )
    out = p.with_columns(obj=obj.struct.json_encode(), sub=sub.struct.json_encode())
    # the subscription platform sends JSON booleans where the standard sends "1"/"0"
    out = out.with_columns(obj=pl.when(feed == "subscription").then(
        pl.col("obj").str.replace('"HasPlate":"1"', '"HasPlate":true', literal=True)
        .str.replace('"HasPlate":"0"', '"HasPlate":false', literal=True)
        .str.replace('"IsDecked":"0"', '"IsDecked":false', literal=True)).otherwise(pl.col("obj")))
    if faults:
        # base64 image data in some sub-images; SubImageList sent as a JSON string in others
        out = out.with_columns(sub=pl.when(pl.Series(u[:, 2] < 0.1))
                               .then(pl.col("sub").str.replace_all('"Height":1080,', f'"Height":1080,"Data":"{_FAKE_JPEG}",',
                                                                   literal=True))
                               .otherwise(pl.col("sub")))
        out = out.with_columns(sub=pl.when(pl.Series(u[:, 1] < 0.2))
                               .then(pl.concat_str(pl.lit('"'), pl.col("sub").str.replace_all('"', '\\"', literal=True),
                                                   pl.lit('"')))
                               .otherwise(pl.col("sub")),
                               # a third of the objects carry InfoKind as a string
                               obj=pl.when(pl.Series(rng.random(n) < 0.3))
                               .then(pl.col("obj").str.replace('"InfoKind":1', '"InfoKind":"1"', literal=True))
                               .otherwise(pl.col("obj")))
    gate_no = pl.col("gate_no").cast(pl.Int64)
    # odd gates of the standard feed add the Zhejiang-style explicit "InOut"; every other object leaves in/out to
    # the registered lane
    explicit = (feed == "standard") & (gate_no % 2 == 1)
    in_out = pl.when(explicit).then(pl.concat_str(pl.lit(',"InOut":"'), "direction", pl.lit('"'))).otherwise(pl.lit(""))
    out = out.with_columns(obj=pl.concat_str(pl.col("obj").str.strip_suffix("}"), pl.lit(',"SubImageList":'),
                                             pl.col("sub"), in_out, pl.lit("}")))
    return out


def _notification(objs: list[str], cid: str, k: int, bare: bool) -> str:
    """One SubscribeNotificationObject carrying ``objs`` (its MotorVehicleObjectList a wrapper or a bare list)."""
    body = "[" + ",".join(objs) + "]"
    vehicles = body if bare else '{"MotorVehicleObject":' + body + "}"
    return ('{"NotificationID":"' + f"{cid}04{k:019d}"[:33] + '","SubscribeID":"' + f"{cid}03{0:019d}"[:33]
            + '","Title":"motor vehicles","TriggerTime":"","InfoIDs":"","ExecuteOperation":1,'
            + '"MotorVehicleObjectList":' + vehicles + "}")


def _write_passages(landing: Path, day: date, p: pl.DataFrame, rng: np.random.Generator, faults: bool) -> dict:
    """Per community and 4-hour window one JSON file in the community's feed shape; re-sent objects repeat in the
    same or the next file.

    standard: MotorVehicleListObject documents; with faults about 1 % of the objects (never re-sent ones) come
    alone, as a single-object document whose MotorVehicleObject is the bare object, every 4th file writes DeviceId
    and every 5th wraps in MotorVehicleObjectList. subscription / subscription_bare: SubscribeNotificationListObject
    documents of notifications of up to 50 objects (MotorVehicleObjectList.MotorVehicleObject, or the bare list);
    with faults, a subscription_bare community also gets watch-list alarms (DispositionNotificationListObject)
    that carry again, one object each, passages of its notifications: duplicates across files. A re-sent copy of
    a rejected object is rejected again (quarantined, not a duplicate): the counts in the summary say so.
    """
    d = day.isoformat()
    files = lines = 0
    variants = {"device_id_key": 0, "object_list_wrapper": 0, "single_object": 0, "subscription_notification": 0,
                "bare_notification_list": 0, "disposition_alarm": 0}
    resend = p.filter("resend")
    same_file = pl.Series(rng.random(resend.height) < 0.5)
    late = resend.filter(~same_file).with_columns(window=pl.col("window") + 1)
    single = (~pl.col("resend")) & (pl.col("seq").cast(pl.Int64) % 97 == 13) & faults & (pl.col("feed") == "standard")
    for row in p.filter(single).select("community_id", "source_id", "obj").iter_rows():
        # one file per object is the vendor's quirk itself; the loop is over these few files only
        doc = '{"MotorVehicleListObject":{"MotorVehicleObject":' + row[2] + "}}"
        _write(landing / "vehicle_passages" / d / str(row[0]) / f"single-{row[1]}.json", doc)
        files += 1
        lines += 1
        variants["single_object"] += 1
    bad = pl.col("bad_time") | pl.col("unknown_gate")
    # alarms: a few accepted, never re-sent passages of the bare-list communities, sent again as dispositions
    alarm = (~pl.col("resend")) & (~bad) & (pl.col("seq").cast(pl.Int64) % 61 == 7) & faults \
        & (pl.col("feed") == "subscription_bare")
    alarms = p.filter(alarm)
    copies = pl.concat([resend.filter(same_file).with_columns(kind=pl.lit("dup_in_file")),
                        late.with_columns(kind=pl.lit("dup_cross_file")),
                        alarms.with_columns(kind=pl.lit("dup_cross_file"))])
    for (cid,), grp in alarms.group_by("community_id", maintain_order=True):
        notes = ",".join('{"NotificationID":"' + f"{cid}05{i:019d}"[:33] + '","DispositionID":"'
                         + f"{cid}06{0:019d}"[:33] + '","Title":"watch list","TriggerTime":"",'
                         '"CntObjectID":"","MotorVehicleObject":' + o + "}" for i, o in enumerate(grp["obj"].to_list()))
        doc = '{"DispositionNotificationListObject":{"DispositionNotificationObject":[' + notes + "]}}"
        _write(landing / "vehicle_passages" / d / str(cid) / "zz-dispositions.json", doc)
        files += 1
        lines += grp.height
        variants["disposition_alarm"] += 1
    resent = pl.concat([resend.filter(same_file).with_columns(kind=pl.lit("dup_in_file")),
                        late.with_columns(kind=pl.lit("dup_cross_file"))])
    rows = pl.concat([p.filter(~single).with_columns(kind=pl.lit("record")), resent]).sort("community_id", "window",
                                                                                          "ts")
    for k, ((cid, window, feed), grp) in enumerate(rows.group_by("community_id", "window", "feed",
                                                                 maintain_order=True)):
        objs = grp["obj"].to_list()
        if feed == "standard":
            text = ",".join(objs)
            if faults and k % 4 == 1:
                text = text.replace('"DeviceID":', '"DeviceId":')
                variants["device_id_key"] += 1
            if faults and k % 5 == 2:
                doc = '{"MotorVehicleObjectList":{"MotorVehicleObject":[' + text + "]}}"
                variants["object_list_wrapper"] += 1
            else:
                doc = '{"MotorVehicleListObject":{"MotorVehicleObject":[' + text + "]}}"
        else:
            bare = feed == "subscription_bare"
            notes = [_notification(objs[i:i + 50], str(cid), i // 50, bare) for i in range(0, len(objs), 50)]
            doc = '{"SubscribeNotificationListObject":{"SubscribeNotificationObject":[' + ",".join(notes) + "]}}"
            variants["bare_notification_list" if bare else "subscription_notification"] += 1
        _write(landing / "vehicle_passages" / d / str(cid) / f"passages-{int(window) * 4:02d}.json", doc)
        files += 1
        lines += len(objs)
    return {"files": files, "objects": lines,
            "dup_in_file": int(copies.filter(~bad, pl.col("kind") == "dup_in_file").height),
            "dup_cross_file": int(copies.filter(~bad, pl.col("kind") == "dup_cross_file").height),
            "bad_time_copies": int(copies["bad_time"].sum()),
            "unknown_gate_copies": int(copies.filter(~pl.col("bad_time"))["unknown_gate"].sum()), **variants}


def _session_truth(s: pl.DataFrame, day: date) -> pl.DataFrame:
    """The sessions the pipeline must derive (rec_status, rec_enter, rec_leave per park and serial).

    A 4pyun car park's session is the cloud's. A method/data car park has no serial: an entry's serial is its
    time digits; an exit is paired with its plate's entry (the plate's previous push at the car park), else it is
    exit-only with its own time digits as serial and the entry derived from the exit time and the duration in
    hours (to the second, floored). A car without a plate cannot be paired: its entry stays open and its exit is
    exit-only.
    """
    has_in = (pl.col("enter_ts").dt.date() == day) & ~pl.col("lost_entry")
    has_out = pl.col("leave_ts").is_not_null() & ~pl.col("missed_exit")
    plated = ~pl.col("plate").str.starts_with("无")
    derived = (pl.col("out_text").cast(pl.Float64) - pl.col("dur_text").cast(pl.Float64) * 3600.0).floor()
    derived = pl.from_epoch(derived.cast(pl.Int64), time_unit="s").dt.replace_time_zone("UTC") \
        .dt.convert_time_zone("Asia/Shanghai").dt.replace_time_zone(None).cast(pl.Datetime("ms"))
    digits = lambda c: pl.col(c).str.replace(".", "", literal=True)  # noqa: E731
    m = s.filter("method")
    entry_side = m.filter(has_in).with_columns(
        parking_serial=digits("in_text"),
        rec_status=pl.when(has_out & ~plated).then(pl.lit("open")).otherwise(pl.col("rec_status")),
        rec_leave=pl.when(has_out & ~plated).then(None).otherwise(pl.col("rec_leave")))
    exit_only = m.filter(has_out & (~has_in | ~plated)).with_columns(
        parking_serial=digits("out_text"), rec_status=pl.lit("exit_only"), rec_enter=derived,
        rec_leave=pl.col("leave_ts"))
    cols = ["community_id", "park_id", "parking_serial", "rec_status", "rec_enter", "rec_leave"]
    return pl.concat([s.filter(~pl.col("method")).select(cols), entry_side.select(cols), exit_only.select(cols)])


def _truth_groups(frame: pl.DataFrame, residents: pl.DataFrame) -> pl.DataFrame:
    """plate_group, plate_type and residency from the true plate (what the pipeline must recover)."""
    res = residents.select("community_id", "plate", is_res=pl.lit(True))
    plate = pl.col("plate")
    return frame.join(res, on=["community_id", "plate"], how="left").with_columns(
        plate_group=pl.when(plate.str.starts_with("无")).then(pl.lit("no_plate"))
        .when(plate.str.starts_with("沪")).then(pl.lit("local")).otherwise(pl.lit("out_of_town")),
        plate_type=pl.when(plate.str.starts_with("无")).then(pl.lit("other"))
        .when(plate.str.len_chars() == 8).then(pl.lit("new_energy")).otherwise(pl.lit("fuel")),
        residency=pl.when(pl.col("is_res").fill_null(False)).then(pl.lit("resident")).otherwise(pl.lit("visitor")),
    ).drop("is_res")


def simulate(landing: Path, day: date, communities: pl.DataFrame, devices: pl.DataFrame, seed: int,
             canaries: list[Canary], faults: bool = True) -> dict:
    """Write one day of vehicle passages, parking pushes, sites registry and ground truth; return the summary."""
    landing = Path(landing)
    d = day.isoformat()
    sites = carparks.build(communities, seed, canaries)
    carparks.write(landing, day, sites)
    feeds = pl.DataFrame({"community_id": communities["community_id"],
                          "feed": [carparks.feed_of(i) for i in range(communities.height)]})
    rng = np.random.default_rng([seed, day.toordinal(), 7102])
    sessions = _sessions(sites, communities, day, seed, canaries, faults)
    # --- passages ---------------------------------------------------------------------------------------
    passages = _vehicle_json(_passages(sessions, sites, day, rng, faults, feeds), rng, faults)
    pstats = _write_passages(landing, day, passages, rng, faults)
    # --- parking pushes --------------------------------------------------------------------------------
    pushes = _pushes(sessions, sites, day, rng, faults)
    for (cid, fname), grp in pushes.group_by("community_id", "file", maintain_order=True):
        _write(landing / "parking" / d / str(cid) / str(fname), "\n".join(grp["line"].to_list()) + "\n")
    # --- truth -----------------------------------------------------------------------------------------
    truth_dir = landing / "_truth" / "vehicles" / d
    truth_dir.mkdir(parents=True, exist_ok=True)
    ok = passages.filter(~pl.col("bad_time"), ~pl.col("unknown_gate"))
    gate_hour = (_truth_groups(ok, sites.residents)
                 .group_by("community_id", "gate_id", hour_start=pl.col("ts").dt.truncate("1h"), direction="direction",
                           plate_group="plate_group", plate_type="plate_type", residency="residency")
                 .agg(vehicles=pl.len()).sort(pl.all()))
    gate_hour.write_parquet(truth_dir / "gate_hour.parquet")
    rec = _session_truth(sessions, day)
    rec.select("community_id", "park_id", "parking_serial", "rec_status", "rec_enter", "rec_leave").rename(
        {"rec_status": "status", "rec_enter": "enter_ts", "rec_leave": "leave_ts"}).write_parquet(
        truth_dir / "sessions.parquet")
    slots = pl.DataFrame({"slot_end": pl.datetime_range(datetime.combine(day, datetime.min.time()) + timedelta(minutes=15),
                                                        datetime.combine(day + timedelta(days=1), datetime.min.time()),
                                                        "15m", eager=True, time_unit="ms")})
    occ = (sites.car_parks.select("park_id", "capacity").join(slots, how="cross")
           .join(rec.select("park_id", "rec_enter", "rec_leave"), on="park_id", how="left")
           .group_by("park_id", "slot_end", "capacity")
           .agg(occupied=((pl.col("rec_enter") < pl.col("slot_end"))
                          & (pl.col("rec_leave").is_null() | (pl.col("rec_leave") >= pl.col("slot_end")))).sum(),
                entries=((pl.col("rec_enter") >= pl.col("slot_end") - pl.duration(minutes=15))
                         & (pl.col("rec_enter") < pl.col("slot_end"))).sum(),
                exits=((pl.col("rec_leave") >= pl.col("slot_end") - pl.duration(minutes=15))
                       & (pl.col("rec_leave") < pl.col("slot_end"))).sum())
           .with_columns(slot_start=pl.col("slot_end") - pl.duration(minutes=15)).sort("park_id", "slot_start"))
    occ.write_parquet(truth_dir / "occupancy_15min.parquet")
    rec_pushes = pushes.filter(pl.col("kind") == "record")
    bad_money = int(sessions.filter("bad_money").height)
    # a re-sent copy of a rejected push is rejected again: quarantined, not a duplicate
    bad_copies = int(pushes.filter(pl.col("bad"), pl.col("kind") != "record").height)
    summary = {
        "day": d, "communities": communities.height, "tollgates": sites.tollgates.height,
        "car_parks": sites.car_parks.height, "registered_vehicles": sites.residents.height,
        "vehicle_passages": {
            "files": pstats["files"], "landed": pstats["objects"], "distinct": passages.height,
            "accepted": ok.height, "duplicates_in_file": pstats["dup_in_file"],
            "duplicates_cross_file": pstats["dup_cross_file"],
            "quarantined": {"bad_pass_time": int(passages["bad_time"].sum()) + pstats["bad_time_copies"],
                            "unknown_tollgate": int(passages["unknown_gate"].sum()) + pstats["unknown_gate_copies"]},
            "visitor_share": round(float((_truth_groups(ok, sites.residents)["residency"] == "visitor").mean() or 0), 4),
            "variants": {k: v for k, v in pstats.items()
                         if k in ("device_id_key", "object_list_wrapper", "single_object", "subscription_notification",
                                  "bare_notification_list", "disposition_alarm")},
        },
        "parking": {
            "files": int(pushes.select("community_id", "file").unique().height), "landed": pushes.height,
            "records": rec_pushes.height,
            "duplicates_in_file": int(pushes.filter(~pl.col("bad"), pl.col("kind") == "dup_in_file").height),
            "duplicates_cross_file": int(pushes.filter(~pl.col("bad"), pl.col("kind") == "dup_cross_file").height),
            "quarantined": {"bad_money": bad_money + bad_copies},
            "accepted": rec_pushes.height - bad_money,
            "sessions_by_status": dict(sorted(rec.group_by("rec_status").len().iter_rows())),
            "payments": int(rec_pushes["n_pay"].sum()), "payments_fen": int(rec_pushes["paid"].sum()),
            "enter_time_changed": int(sessions["enter_changed"].sum()),
        },
    }
    tmp = truth_dir / "summary.json.part"
    tmp.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.rename(truth_dir / "summary.json")
    return summary
