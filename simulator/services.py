"""Simulated property-management exports (work orders, their status history, fee bills, payments) as the
desktop clients deliver them: per community-day CSV in GB18030 or UTF-8 (with or without BOM), with quirks.

Layout: ``landing/property_services/<day>/<community_id>/{work_orders,work_order_events,fee_bills,payments}_<cid>.csv``.
Day D's export is derived from orders created on D-7..D (each creation day seeded on its own), so an order
opened last week and closed today appears today exactly as it would in the vendor system: the order row is a
snapshot at the end of D (every order with any status change on D), the events file holds the changes on D.
Ground truth: ``landing/_truth/services/<day>/{community_day.parquet,summary.json}``; duplicates come from the
generated ``duplicate_of`` labels, not from the pipeline's rule.
Names appear in the reporter field, after a label (联系人/业主/住户/已联系, sometimes with a space inside the
name) and in some locations; canary names only in those positions, because a bare name without a label
cannot be detected by any pipeline (a documented limit, not a fault to simulate).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from simulator.canaries import Canary, id_check_char

SOURCES = ("work_orders", "work_order_events", "fee_bills", "payments")
CATEGORIES = ("repair", "complaint", "inquiry", "suggestion", "delivery", "alarm")
CATEGORY_ZH = {"repair": "报修", "complaint": "投诉", "inquiry": "咨询", "suggestion": "建议", "delivery": "代收快递",
               "alarm": "设备告警"}
_CATEGORY_P = (0.44, 0.15, 0.14, 0.05, 0.12, 0.10)
# hours from creation to the SLA deadline, per category (the pipeline uses the same table: sla_hours.csv)
SLA_HOURS = {"repair": 48, "complaint": 24, "inquiry": 8, "suggestion": 72, "delivery": 4, "alarm": 2}
CHANNELS = ("app", "wechat", "phone", "12345", "grid", "device")
CHANNEL_ZH = {"app": "业主APP", "wechat": "微信公众号", "phone": "物业电话", "12345": "12345热线", "grid": "网格上报",
              "device": "设备告警"}
STATUS_ZH = {"pending": "待派单", "dispatched": "已派单", "in_progress": "处理中", "completed": "已完成",
             "closed": "已关闭", "reopened": "已重开", "merged": "已合并"}
PAY_CHANNEL_ZH = {"wechat": "微信支付", "alipay": "支付宝", "bank": "银行代扣", "cash": "现金", "counter": "前台POS"}
FEE_ITEMS = ("物业管理费", "停车管理费", "公摊水电费", "垃圾清运费")
ALARMABLE = {"smoke": "smoke", "gas": "gas", "sos_button": "sos", "manhole": "manhole_open", "e_fence": "fence_intrusion"}
DUP_WINDOW_MIN = 120  # dedup rule: same community, category, location and day, each within 2 h of the previous
LIFE_MAX_MIN = int(6.9 * 1440)  # every order is closed within 7 days, so D-7..D covers day D's export

_SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何高林罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬斌宇浩凯"
_PROBLEMS = {
    "repair": ("厨房水管漏水", "卫生间下水道堵塞", "楼道灯不亮", "电梯异响", "门禁无法开门", "外墙渗水"),
    "complaint": ("楼上噪音扰民", "楼道堆放杂物", "宠物粪便未清理", "夜间装修噪音", "车辆乱停占用消防通道"),
    "inquiry": ("咨询物业费缴纳方式", "咨询停车月卡办理", "咨询装修备案流程"),
    "suggestion": ("建议增加非机动车充电桩", "建议绿化带修剪", "建议增设休息座椅"),
    "delivery": ("快递代收未通知", "大件快递需协助搬运", "快递柜故障取件失败"),
}
_ALARM_ZH = {"smoke": "烟感报警", "gas": "燃气泄漏报警", "sos": "一键求助", "manhole_open": "井盖异常开启",
             "fence_intrusion": "电子围栏入侵"}
_PLACES = ("电梯", "楼道", "地下车库", "单元门口", "绿化带", "屋顶")
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %-H:%M", "%Y%m%d%H%M%S", "%Y年%m月%d日 %H:%M")
_EPOCH = datetime(1970, 1, 1)


def _minutes(d: date) -> int:
    return int((datetime.combine(d, datetime.min.time()) - _EPOCH).total_seconds() // 60)


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    s = np.array(list(_SURNAMES))[rng.integers(0, len(_SURNAMES), n)]
    g1 = np.array(list(_GIVEN))[rng.integers(0, len(_GIVEN), n)]
    g2 = np.where(rng.random(n) < 0.7, np.array(list(_GIVEN))[rng.integers(0, len(_GIVEN), n)], "")
    return np.char.add(np.char.add(s, g1), g2)


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = np.array(["13", "15", "17", "18", "19"])[rng.integers(0, 5, n)]
    return np.array([f"{p}{v:09d}" for p, v in zip(prefix, rng.integers(0, 10**9, n), strict=True)], dtype=str)


def _id_numbers(rng: np.random.Generator, n: int) -> list[str]:
    bodies = [f"310107{1940 + y}{m:02d}{d:02d}{s:03d}" for y, m, d, s in zip(
        rng.integers(0, 60, n), rng.integers(1, 13, n), rng.integers(1, 29, n), rng.integers(0, 1000, n), strict=True)]
    return [b + id_check_char(b) for b in bodies]


def _pick(rng: np.random.Generator, options: tuple | list, n: int, p: tuple | None = None) -> np.ndarray:
    return np.array(options, dtype=object)[rng.choice(len(options), n, p=p)]


def _orders_created_on(d: date, communities: pl.DataFrame, devices: pl.DataFrame, seed: int,
                       canaries: list[Canary], export_day: date) -> pl.DataFrame:
    """Every order created on ``d`` in every community, with its whole life (times in local epoch minutes)."""
    rng = np.random.default_rng([seed, d.toordinal(), 5101])
    cids = communities["community_id"].to_numpy()
    size = communities["size_factor"].to_numpy() if "size_factor" in communities.columns else np.ones(len(cids))
    counts = rng.poisson(16 * size)
    ci = np.repeat(np.arange(len(cids)), counts)
    n = ci.size
    cat = _pick(rng, CATEGORIES, n, _CATEGORY_P)
    chan = np.where(cat == "alarm", "device", _pick(rng, CHANNELS[:5], n, (0.35, 0.2, 0.2, 0.15, 0.1)))
    # daytime-heavy creation minute
    minute = np.clip(rng.normal(14 * 60, 240, n), 0, 1439).astype(np.int64)
    created = _minutes(d) + minute
    name = _names(rng, n)
    phone = _phones(rng, n)
    bld, unit, floor, room = (rng.integers(1, 31, n), rng.integers(1, 7, n), rng.integers(1, 19, n),
                              rng.integers(1, 5, n))
    public = np.isin(cat, ["complaint", "suggestion"]) & (rng.random(n) < 0.6)
    place = _pick(rng, _PLACES, n)
    location = np.where(public, [f"{b}号楼{p}" for b, p in zip(bld, place, strict=True)],
                        [f"{b}号楼{u}单元{f}{r:02d}室" for b, u, f, r in zip(bld, unit, floor, room, strict=True)])
    # independent orders never meet the dedup rule by accident (same community, category and location on
    # one day): the truth's duplicates are exactly the generated copies (duplicate_of labels)
    location = location.astype(object)
    for _ in range(20):
        again = ~pl.DataFrame({"c": ci, "k": cat.astype(str), "l": location.astype(str)}).select(
            pl.struct(pl.all()).is_first_distinct()).to_series().to_numpy()
        if not again.any():
            break
        m_ = int(again.sum())
        location[again] = [f"{b}号楼{u}单元{f}{r:02d}室" for b, u, f, r in zip(
            rng.integers(1, 31, m_), rng.integers(1, 7, m_), rng.integers(1, 19, m_), rng.integers(1, 5, m_),
            strict=True)]
    problem = np.array([_PROBLEMS[c][i % len(_PROBLEMS[c])] if c != "alarm" else "" for c, i in
                        zip(cat, rng.integers(0, 60, n), strict=True)], dtype=object)
    with_id = rng.random(n) < 0.08
    ids = np.array(_id_numbers(rng, n), dtype=object)
    # alarm dispatches: a device of the community, the telemetry alarm id form md5(device|type|epoch_ms)
    alarm_dev = np.full(n, "", dtype=object)
    alarm_type = np.full(n, "", dtype=object)
    alarmable = devices.filter(pl.col("device_type").is_in(list(ALARMABLE))).sort("community_id", "device_id")
    for c_idx in np.unique(ci[cat == "alarm"]):
        pool = alarmable.filter(pl.col("community_id") == cids[c_idx])
        rows = np.flatnonzero((ci == c_idx) & (cat == "alarm"))
        if pool.height == 0:
            cat[rows] = "repair"
            chan[rows] = "app"
            continue
        pick = rng.integers(0, pool.height, rows.size)
        alarm_dev[rows] = pool["device_id"].to_numpy()[pick]
        alarm_type[rows] = [ALARMABLE[t] for t in pool["device_type"].to_numpy()[pick]]
    is_alarm = cat == "alarm"
    alarm_min = created - rng.integers(1, 4, n)
    alarm_id = np.array([
        hashlib.md5(f"{dv}|{t}|{(m - 480) * 60_000}".encode()).hexdigest() if dv else ""
        for dv, t, m in zip(alarm_dev, alarm_type, alarm_min, strict=True)], dtype=object)
    # names also appear where the row's reporter field does not help: another resident after a label, the
    # reporter written with a space after a label (and padded in the reporter field)
    other = _names(rng, n)
    form = rng.choice(4, n, p=(0.8, 0.1, 0.05, 0.05))  # 1: another resident, 2: spaced name, 3: name in location
    spaced = np.array([f"{nm[0]} {nm[1:]}" for nm in name], dtype=object)
    desc = np.array([
        f"设备告警自动派单：{_ALARM_ZH[t]}，设备{dv}" if a else
        (f"{loc}{p}，联系人{spaced_nm if fm == 2 else nm}，电话{ph}" + (f"，身份证{i}" if w else "")
         + (f"，住户{o}也反映此问题" if fm == 1 else ""))
        for a, t, dv, loc, p, nm, spaced_nm, ph, w, i, fm, o in zip(
            is_alarm, alarm_type, alarm_dev, location, problem, name, spaced, phone, with_id, ids, form, other,
            strict=True)], dtype=object)
    location = np.where((form == 3) & ~is_alarm & ~public, [f"{loc}（业主{o}家）" for loc, o in
                                                            zip(location, other, strict=True)], location)
    name = np.where(form == 2, np.char.add(np.char.add(" ", name.astype(str)), " "), name)
    name = np.where(is_alarm, "", name)
    phone = np.where(is_alarm, "", phone)

    # life: dispatch, accept, complete, close, optional reopen cycle (whole minutes)
    sla = np.array([SLA_HOURS[c] for c in cat]) * 60
    dispatched = created + 2 + rng.exponential(20, n).astype(np.int64)
    accepted = dispatched + rng.integers(5, 41, n)
    complete = np.maximum(accepted + 5, created + (sla * rng.lognormal(np.log(0.5), 0.8, n)).astype(np.int64))
    complete = np.minimum(complete, created + LIFE_MAX_MIN - 2000)
    closed = complete + rng.integers(10, 12 * 60, n)
    reopen = rng.random(n) < 0.06
    reopened_at = closed + rng.integers(60, 24 * 60, n)
    complete2 = reopened_at + rng.integers(60, 12 * 60, n)
    closed2 = complete2 + rng.integers(10, 4 * 60, n)
    reopen &= closed2 - created < LIFE_MAX_MIN
    rating = rng.choice([1, 2, 3, 4, 5], n, p=(0.05, 0.05, 0.15, 0.35, 0.40)).astype(np.float64)
    rating[rng.random(n) < 0.15] = np.nan
    first_rating = np.where(reopen, rng.integers(1, 3, n).astype(np.float64), rating)
    appointment = np.where((cat == "repair") & (rng.random(n) < 0.4), created + rng.integers(60, 2880, n), -1)

    # the canaries file orders in the first community on the export day (so a leak is caught)
    canary_rows = np.flatnonzero(ci == 0)[:len(canaries)] if d == export_day else np.array([], dtype=np.int64)
    for row, cn in zip(canary_rows, canaries, strict=False):
        cat[row], chan[row] = "repair", "app"
        name[row], phone[row] = cn.name, cn.phone
        desc[row] = f"{location[row]}厨房水管漏水，业主{cn.name}（身份证{cn.id_card}）请回电{cn.phone}"
        is_alarm[row] = False
        alarm_id[row] = ""

    order_id = [f"WO{d:%Y%m%d}{cids[c][-6:]}{i:04d}" for c, i in zip(ci, range(n), strict=True)]
    orders = pl.DataFrame({
        "order_id": order_id, "community_id": cids[ci], "category": cat.astype(str), "channel": chan.astype(str),
        "location": location.astype(str), "description": desc.astype(str), "reporter": name.astype(str),
        "phone": phone.astype(str), "created": created, "appointment": appointment, "dispatched": dispatched,
        "accepted": accepted, "completed": complete, "closed": closed, "reopen": reopen,
        "reopened_at": reopened_at, "completed2": complete2, "closed2": closed2, "rating": rating,
        "first_rating": first_rating, "alarm_id": alarm_id.astype(str), "duplicate_of": None,
    }, schema_overrides={"duplicate_of": pl.String})

    # the same problem filed again through another channel (12345 / grid / app) within the window, same day
    prim = np.flatnonzero(np.isin(cat, ["repair", "complaint"]) & (rng.random(n) < 0.10))
    copies = np.where(rng.random(prim.size) < 0.2, 2, 1)
    src = np.repeat(prim, copies)
    m = src.size
    dup_created = created[src] + rng.integers(5, 91, m)
    keep = dup_created < _minutes(d) + 1440 - 45
    src, dup_created = src[keep], dup_created[keep]
    m = src.size
    options = np.array(["12345", "grid", "app", "wechat"])
    r = rng.integers(0, 4, m)
    dup_chan = np.where(options[r] == chan[src], options[(r + 1) % 4], options[r])
    dname, dphone = _names(rng, m), _phones(rng, m)
    merged = dup_created + rng.integers(10, 41, m)
    dups = pl.DataFrame({
        "order_id": [f"WO{d:%Y%m%d}{cids[ci[s]][-6:]}{n + j:04d}" for j, s in enumerate(src)],
        "community_id": cids[ci[src]], "category": cat[src].astype(str), "channel": dup_chan.astype(str),
        "location": location[src].astype(str),
        "description": [f"{location[s]}{problem[s]}，{c}反映，联系人{a}，电话{b}" for s, c, a, b in
                        zip(src, dup_chan, dname, dphone, strict=True)],
        "reporter": dname.astype(str), "phone": dphone.astype(str), "created": dup_created,
        "appointment": np.full(m, -1), "dispatched": np.full(m, -1), "accepted": np.full(m, -1),
        "completed": np.full(m, -1), "closed": merged, "reopen": np.zeros(m, bool), "reopened_at": np.full(m, -1),
        "completed2": np.full(m, -1), "closed2": np.full(m, -1), "rating": np.full(m, np.nan),
        "first_rating": np.full(m, np.nan), "alarm_id": np.full(m, ""),
        "duplicate_of": [order_id[s] for s in src],
    }, schema=orders.schema)
    return pl.concat([orders, dups]).with_columns(pl.col("rating", "first_rating").fill_nan(None))


def _events(orders: pl.DataFrame) -> pl.DataFrame:
    """The status history of every order: one row per status change (ts in local epoch minutes)."""
    o = orders
    is_dup = pl.col("duplicate_of").is_not_null()
    role0 = pl.col("channel").replace_strict({"app": "业主", "wechat": "业主", "phone": "业主", "12345": "12345平台",
                                              "grid": "网格员", "device": "系统"})
    contact = pl.format("已联系{}，电话{}，约定上门时间", pl.col("reporter"), pl.col("phone"))
    parts = [
        o.select("order_id", ts="created", status=pl.lit("pending"), role=role0,
                 note=pl.format("{}报事", pl.col("channel").replace_strict(CHANNEL_ZH)), k=pl.lit(1)),
        o.filter(~is_dup).select("order_id", ts="dispatched", status=pl.lit("dispatched"), role=pl.lit("客服"),
                                 note=pl.lit("派单至维修组"), k=pl.lit(2)),
        o.filter(~is_dup).select("order_id", ts="accepted", status=pl.lit("in_progress"), role=pl.lit("维修工"),
                                 note=pl.when(pl.col("reporter") != "").then(contact).otherwise(pl.lit("已到场处置")),
                                 k=pl.lit(3)),
        o.filter(~is_dup).select("order_id", ts="completed", status=pl.lit("completed"), role=pl.lit("维修工"),
                                 note=pl.lit("处理完毕"), k=pl.lit(4)),
        o.filter(~is_dup).select("order_id", ts="closed", status=pl.lit("closed"), role=pl.lit("客服"),
                                 note=pl.format("回访完成，满意度{}", pl.col("first_rating").cast(pl.Int64)
                                                .cast(pl.String).fill_null("未评")), k=pl.lit(5)),
        o.filter(is_dup).select("order_id", ts="closed", status=pl.lit("merged"), role=pl.lit("客服"),
                                note=pl.format("与工单{}重复，已合并", pl.col("duplicate_of")), k=pl.lit(5)),
        o.filter(pl.col("reopen")).select("order_id", ts="reopened_at", status=pl.lit("reopened"), role=pl.lit("业主"),
                                          note=pl.lit("问题复现，业主要求重新处理"), k=pl.lit(6)),
        o.filter(pl.col("reopen")).select("order_id", ts="completed2", status=pl.lit("completed"),
                                          role=pl.lit("维修工"), note=pl.lit("二次处理完毕"), k=pl.lit(7)),
        o.filter(pl.col("reopen")).select("order_id", ts="closed2", status=pl.lit("closed"), role=pl.lit("客服"),
                                          note=pl.format("二次回访，满意度{}", pl.col("rating").cast(pl.Int64)
                                                         .cast(pl.String).fill_null("未评")), k=pl.lit(8)),
    ]
    ev = pl.concat(parts).sort("order_id", "k")
    return ev.with_columns(seq=pl.col("k").rank("ordinal").over("order_id").cast(pl.Int64)).drop("k")


def _snapshot(orders: pl.DataFrame, ev: pl.DataFrame, end: int) -> pl.DataFrame:
    """Each order as the vendor system shows it at minute ``end`` (the export time)."""
    seen = ev.filter(pl.col("ts") < end)
    state = seen.group_by("order_id").agg(
        status=pl.col("status").sort_by("seq").last(),
        reopened=(pl.col("status") == "reopened").sum().cast(pl.Int64),
        closed_at=pl.col("ts").filter(pl.col("status").is_in(["closed", "merged"])).max(),
        completed_at=pl.col("ts").filter(pl.col("status") == "completed").max(),
        dispatched_at=pl.col("ts").filter(pl.col("status") == "dispatched").max(),
    )
    s = orders.join(state, on="order_id")
    second_close = pl.col("reopen") & (pl.col("closed_at") == pl.col("closed2"))
    return s.with_columns(
        satisfaction=pl.when(pl.col("status") != "closed").then(None)
        .when(second_close).then(pl.col("rating")).otherwise(pl.col("first_rating")),
        closed_at=pl.when(pl.col("status").is_in(["closed", "merged"])).then(pl.col("closed_at")),
    )


def _fmt_ts(col: str, fmt_idx: pl.Expr) -> pl.Expr:
    ts = pl.from_epoch(pl.col(col) * 60, time_unit="s")
    out = pl.lit(None, pl.String)
    for i, f in reversed(list(enumerate(_TIME_FORMATS))):
        out = pl.when(fmt_idx == i).then(ts.dt.strftime(f)).otherwise(out)
    return pl.when(pl.col(col).is_null() | (pl.col(col) < 0)).then(pl.lit("")).otherwise(out)


def _yuan_text(fen: pl.Expr, variant: pl.Expr) -> pl.Expr:
    """Money as property clients print it: '128.50', '128.5', '¥128.50', '1,280.50'."""
    plain = pl.format("{}.{}", fen // 100, (fen % 100).cast(pl.String).str.zfill(2))
    short = plain.str.replace(r"0$", "").str.replace(r"\.$", "")
    comma = pl.format("{}.{}", (fen // 100).map_elements(lambda v: f"{v:,}", return_dtype=pl.String),
                      (fen % 100).cast(pl.String).str.zfill(2))
    return (pl.when(variant == 0).then(plain).when(variant == 1).then(short)
            .when(variant == 2).then(pl.format("¥{}", plain)).otherwise(comma))


def _write(path: Path, df: pl.DataFrame, encoding: str) -> None:
    text = df.write_csv(quote_style="necessary", line_terminator="\r\n" if encoding == "gb18030" else "\n")
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(text.encode(encoding))
    tmp.rename(path)


def _write_broken(path: Path, df: pl.DataFrame, how: str, rng: np.random.Generator) -> None:
    text = df.write_csv()
    if how == "utf16":
        data = text.encode("utf-16")
    elif how == "broken_gb18030":  # lead bytes followed by invalid trail bytes, scattered through the file
        raw = bytearray(text.encode("gb18030"))
        for pos in sorted(rng.integers(0, len(raw), 4), reverse=True):
            raw[pos:pos] = b"\x81\x20\xff"
        data = bytes(raw)
    else:  # random bytes
        data = b"\xff\xfe\x00" + rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.rename(path)


def _fees(day: date, communities: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bills falling due on ``day`` and the payments received on it (some for older bills)."""
    rng = np.random.default_rng([seed, day.toordinal(), 5201])
    cids = communities["community_id"].to_numpy()
    counts = rng.poisson(60, len(cids))
    ci = np.repeat(np.arange(len(cids)), counts)
    n = ci.size
    item = _pick(rng, FEE_ITEMS, n, (0.5, 0.2, 0.2, 0.1))
    base = {"物业管理费": 30000, "停车管理费": 30000, "公摊水电费": 4000, "垃圾清运费": 1500}
    due = np.array([base[i] for i in item]) + rng.integers(-1000, 20000, n) // 10 * 10
    due = np.maximum(due, 500)
    room = [f"{b}-{u}-{f}{r:02d}" for b, u, f, r in zip(rng.integers(1, 31, n), rng.integers(1, 7, n),
                                                        rng.integers(1, 19, n), rng.integers(1, 5, n), strict=True)]
    bill_id = [f"FB{day:%Y%m%d}{cids[c][-6:]}{i:05d}" for i, c in enumerate(ci)]
    period_start = day.replace(day=1) - timedelta(days=1)
    bills = pl.DataFrame({"bill_id": bill_id, "community_id": cids[ci], "room": room, "fee_item": item.astype(str),
                          "period_start": period_start.replace(day=1).isoformat(),
                          "period_end": period_start.isoformat(), "due_fen": due.astype(np.int64),
                          "due_date": day.isoformat()})
    u = rng.random(n)
    paid_full, paid_half = u < 0.55, (u >= 0.55) & (u < 0.65)
    split = paid_full & (rng.random(n) < 0.1)
    rows = np.concatenate([np.flatnonzero(paid_full & ~split), np.flatnonzero(paid_half), np.flatnonzero(split),
                           np.flatnonzero(split)])
    amount = np.concatenate([due[paid_full & ~split], due[paid_half] // 2, due[split] // 2,
                             due[split] - due[split] // 2])
    # payments for bills of earlier days (not part of today's collection rate)
    old_n = rng.poisson(8, len(cids))
    old_ci = np.repeat(np.arange(len(cids)), old_n)
    old_ids = [f"FB{day - timedelta(days=int(k)):%Y%m%d}{cids[c][-6:]}{int(j):05d}" for c, k, j in
               zip(old_ci, rng.integers(1, 30, old_ci.size), rng.integers(0, 60, old_ci.size), strict=True)]
    m = rows.size + old_ci.size
    pay = pl.DataFrame({
        "payment_id": [f"PAY{day:%Y%m%d}{seed % 100:02d}{i:06d}" for i in range(m)],
        "bill_id": [bill_id[r] for r in rows] + old_ids,
        "community_id": np.concatenate([cids[ci[rows]], cids[old_ci]]),
        "room": [room[r] for r in rows] + ["" for _ in old_ids],
        "amount_fen": np.concatenate([amount, rng.integers(1000, 60000, old_ci.size)]).astype(np.int64),
        "channel": _pick(rng, list(PAY_CHANNEL_ZH), m, (0.45, 0.25, 0.15, 0.05, 0.10)).astype(str),
        "paid_at": _minutes(day) + rng.integers(7 * 60, 22 * 60, m),
        "payer": _names(rng, m), "phone": _phones(rng, m),
    })
    return bills, pay


def community_truth(orders: pl.DataFrame, bills: pl.DataFrame, payments: pl.DataFrame, communities: list[str],
                    day_start: int) -> pl.DataFrame:
    """The per-community numbers a correct pipeline reports for the day (from the accepted records)."""
    created_today = orders.filter(pl.col("created").is_between(day_start, day_start + 1439))
    dup = _dedup(created_today)
    opened = created_today.join(dup, on="order_id", how="left").filter(pl.col("dup_of").is_null())
    closed = orders.filter((pl.col("status") == "closed") & pl.col("closed_at").is_between(day_start, day_start + 1439))
    closed = closed.with_columns(hours=(pl.col("closed_at") - pl.col("created")) / 60.0,
                                 on_time=pl.col("closed_at") <= pl.col("created")
                                 + pl.col("category").replace_strict(SLA_HOURS) * 60)
    base = pl.DataFrame({"community_id": communities})
    paid = payments.join(bills.select("bill_id"), on="bill_id", how="semi").group_by("community_id").agg(
        fee_paid_fen=pl.col("amount_fen").sum())
    return (base
            .join(opened.group_by("community_id").agg(work_orders_opened=pl.len()), on="community_id", how="left")
            .join(closed.group_by("community_id").agg(
                work_orders_closed=pl.len(), on_time_rate=pl.col("on_time").mean(),
                median_hours_to_close=pl.col("hours").quantile(0.5, "linear"),
                p90_hours_to_close=pl.col("hours").quantile(0.9, "linear"),
                satisfaction_avg=pl.col("satisfaction").mean()), on="community_id", how="left")
            .join(bills.group_by("community_id").agg(fee_due_fen=pl.col("due_fen").sum()), on="community_id",
                  how="left")
            .join(paid, on="community_id", how="left")
            .with_columns(pl.col("work_orders_opened", "work_orders_closed", "fee_due_fen", "fee_paid_fen")
                          .fill_null(0).cast(pl.Int64))
            .with_columns(fee_collection_rate=pl.when(pl.col("fee_due_fen") > 0)
                          .then(pl.col("fee_paid_fen") / pl.col("fee_due_fen")))
            .sort("community_id"))


def category_truth(orders: pl.DataFrame, communities: list[str], day_start: int) -> pl.DataFrame:
    """Opened and closed per community and category (the unsuppressed work_orders_daily counts)."""
    created_today = orders.filter(pl.col("created").is_between(day_start, day_start + 1439))
    opened = created_today.join(_dedup(created_today), on="order_id", how="left").filter(pl.col("dup_of").is_null())
    closed = orders.filter((pl.col("status") == "closed") & pl.col("closed_at").is_between(day_start, day_start + 1439))
    grid = pl.DataFrame({"community_id": communities}).join(pl.DataFrame({"category": list(CATEGORIES)}), how="cross")
    return (grid.join(opened.group_by("community_id", "category").agg(opened=pl.len()), on=["community_id", "category"],
                      how="left")
            .join(closed.group_by("community_id", "category").agg(closed=pl.len()), on=["community_id", "category"],
                  how="left")
            .with_columns(pl.col("opened", "closed").fill_null(0).cast(pl.Int64)))


def _dedup(orders: pl.DataFrame) -> pl.DataFrame:
    """Ground truth from the generated labels (NOT the pipeline's 2-hour rule): every generated copy
    (duplicate_of set) belongs to its original's issue; among the issue's accepted orders filed on the day the
    earliest is the one counted and the others are its duplicates (a copy whose original was rejected stands
    in for it). Independent orders never share community, category and location on a day (see
    _orders_created_on), so they are never duplicates."""
    o = orders.with_columns(issue=pl.coalesce("duplicate_of", "order_id")).sort("created", "order_id")
    first = pl.col("order_id").first().over("issue")
    return o.select("order_id", dup_of=pl.when(pl.col("order_id") != first).then(first))


def simulate(landing: Path, day: date, communities: pl.DataFrame, devices: pl.DataFrame, seed: int,
             canaries: list[Canary], faults: bool = True) -> dict:
    """Write day ``day``'s property-services exports for every community plus the ground truth."""
    landing = Path(landing)
    rng = np.random.default_rng([seed, day.toordinal(), 5301])
    start = _minutes(day)
    end = start + 1440
    orders = pl.concat([_orders_created_on(day - timedelta(days=k), communities, devices, seed, canaries, day)
                        for k in range(7, -1, -1)])
    ev = _events(orders)
    ev_today = ev.filter(pl.col("ts").is_between(start, end - 1))
    snap = _snapshot(orders.filter(pl.col("order_id").is_in(ev_today["order_id"].implode())), ev, end)
    bills, pays = _fees(day, communities, seed)

    # faults: rows the pipeline must quarantine (and that the truth therefore leaves out)
    def flag(n: int, p: float) -> np.ndarray:
        return (rng.random(n) < p) if faults else np.zeros(n, bool)

    snap = snap.with_columns(bad_ts=pl.Series(flag(snap.height, 0.01)),
                             fmt=pl.Series(rng.integers(0, 4, snap.height)))
    # the canaries' own rows stay clean so their free text really reaches the parser
    snap = snap.with_columns(bad_ts=pl.col("bad_ts") & ~pl.col("reporter").is_in([c.name for c in canaries]))
    bad_orders = snap.filter("bad_ts")["order_id"]
    ev_today = ev_today.with_columns(bad_status=pl.Series(flag(ev_today.height, 0.01)),
                                     fmt=pl.Series(rng.integers(0, 4, ev_today.height)))
    bills = bills.with_columns(bad_amount=pl.Series(flag(bills.height, 0.01)),
                               variant=pl.Series(rng.integers(0, 4, bills.height)))
    pays = pays.with_columns(bad_amount=pl.Series(flag(pays.height, 0.01)),
                             variant=pl.Series(rng.integers(0, 4, pays.height)),
                             dup_row=pl.Series(flag(pays.height, 0.01)),
                             fmt=pl.Series(rng.integers(0, 4, pays.height)))
    broken_cid = broken_source = None
    if faults:
        broken_cid = str(communities["community_id"][int(rng.integers(communities.height))])
        broken_source = ("payments", "work_order_events")[int(rng.integers(2))]
        how = ("utf16", "broken_gb18030", "random_bytes")[int(rng.integers(3))]
    # a part of the broken community's export lands in an undecodable second file
    split = pl.Series(rng.random(max(ev_today.height, pays.height)) < 0.3)

    out = landing / "property_services" / day.isoformat()
    encodings = ("gb18030", "utf-8-sig", "utf-8")
    counts = {s: {"files": 0, "rows": 0, "quarantined": 0, "duplicates_in_file": 0} for s in SOURCES}
    lost_payments = pl.DataFrame(schema={"payment_id": pl.String})
    lost_events = 0
    for cid in communities["community_id"].to_list():
        cdir = out / cid
        cdir.mkdir(parents=True, exist_ok=True)
        wo = snap.filter(pl.col("community_id") == cid).sort("created", "order_id")
        wo_csv = wo.select(
            工单编号="order_id", 小区编码="community_id", 报事类型=pl.col("category").replace_strict(CATEGORY_ZH),
            报事渠道=pl.col("channel").replace_strict(CHANNEL_ZH), 报事位置="location", 问题描述="description",
            报事人="reporter", 联系电话="phone",
            创建时间=pl.when(pl.col("bad_ts")).then(pl.lit("2026-13-45 25:61")).otherwise(_fmt_ts("created", pl.col("fmt"))),
            预约时间=_fmt_ts("appointment", pl.col("fmt")), 派单时间=_fmt_ts("dispatched_at", pl.col("fmt")),
            完成时间=_fmt_ts("completed_at", pl.col("fmt")), 关闭时间=_fmt_ts("closed_at", pl.col("fmt")),
            状态=pl.col("status").replace_strict(STATUS_ZH),
            满意度=pl.col("satisfaction").cast(pl.Int64).cast(pl.String).fill_null(""),
            重开次数=pl.col("reopened").cast(pl.String), 关联告警编号="alarm_id",
        )
        e = ev_today.filter(pl.col("order_id").is_in(wo["order_id"].implode())).sort("ts", "order_id", "seq")
        e_csv = e.select(工单编号="order_id", 序号=pl.col("seq").cast(pl.String),
                         状态=pl.when(pl.col("bad_status")).then(pl.lit("状态9"))
                         .otherwise(pl.col("status").replace_strict(STATUS_ZH)),
                         处理角色="role", 时间=_fmt_ts("ts", pl.col("fmt")), 备注="note")
        b = bills.filter(pl.col("community_id") == cid)
        b_csv = b.select(账单编号="bill_id", 小区编码="community_id", 房号="room", 收费项目="fee_item",
                         账期开始="period_start", 账期结束="period_end",
                         应收金额=pl.when(pl.col("bad_amount")).then(pl.lit("壹佰贰拾元"))
                         .otherwise(_yuan_text(pl.col("due_fen"), pl.col("variant"))), 应缴日期="due_date")
        p = pays.filter(pl.col("community_id") == cid)
        p = pl.concat([p, p.filter(pl.col("dup_row") & ~pl.col("bad_amount"))]).sort("paid_at", "payment_id")
        p_csv = p.select(缴费流水号="payment_id", 账单编号="bill_id", 小区编码="community_id", 房号="room",
                         实收金额=pl.when(pl.col("bad_amount")).then(pl.lit("N/A"))
                         .otherwise(_yuan_text(pl.col("amount_fen"), pl.col("variant"))),
                         支付渠道=pl.col("channel").replace_strict(PAY_CHANNEL_ZH),
                         缴费时间=_fmt_ts("paid_at", pl.col("fmt")), 缴费人="payer", 联系电话="phone")
        frames = {"work_orders": wo_csv, "work_order_events": e_csv, "fee_bills": b_csv, "payments": p_csv}
        rejected = {"work_orders": wo["bad_ts"], "fee_bills": b["bad_amount"], "payments": p["bad_amount"],
                    "work_order_events": e["bad_status"] | e["order_id"].is_in(bad_orders.implode())}
        for source, frame in frames.items():
            bad = rejected[source]
            if source == broken_source and cid == broken_cid and frame.height > 2:
                mask = split[:frame.height]
                _write_broken(cdir / f"{source}_{cid}_part2.csv", frame.filter(mask), how, rng)
                counts[source]["files"] += 1
                counts[source]["rows"] += 1  # an undecodable file is one landed record
                counts[source]["quarantined"] += 1
                if source == "payments":
                    lost_payments = p.filter(mask).select("payment_id")
                else:
                    lost_events = int(mask.sum())
                frame, bad = frame.filter(~mask), bad.filter(~mask)
            enc = encodings[int(rng.choice(3, p=(0.6, 0.25, 0.15)))]
            _write(cdir / f"{source}_{cid}.csv", frame, enc)
            counts[source]["files"] += 1
            counts[source]["rows"] += frame.height
            counts[source]["quarantined"] += int(bad.sum())
            counts[source]["duplicates_in_file"] += frame.height - frame.unique().height

    # truth: what a correct pipeline accepts
    ok_orders = snap.filter(~pl.col("bad_ts"))
    ok_bills = bills.filter(~pl.col("bad_amount"))
    ok_pays = pays.filter(~pl.col("bad_amount")).join(lost_payments, on="payment_id", how="anti")
    comm_list = communities["community_id"].to_list()
    truth = community_truth(ok_orders, ok_bills, ok_pays, comm_list, start)
    by_cat = category_truth(ok_orders, comm_list, start)
    tdir = landing / "_truth" / "services" / day.isoformat()
    tdir.mkdir(parents=True, exist_ok=True)
    truth.write_parquet(tdir / "community_day.parquet")
    by_cat.write_parquet(tdir / "category_day.parquet")
    summary = {
        "day": day.isoformat(), "communities": len(comm_list), "faults": faults,
        "sources": counts, "broken_file": {"community_id": broken_cid, "source": broken_source} if faults else None,
        "lost_event_rows_in_broken_file": lost_events,
        "work_orders_opened": int(truth["work_orders_opened"].sum()),
        "work_orders_closed": int(truth["work_orders_closed"].sum()),
        "duplicates_flagged": int(ok_orders.filter(pl.col("created").is_between(start, end - 1)).height
                                  - truth["work_orders_opened"].sum()),
        "reopened_orders": int(ok_orders.filter(pl.col("reopened") > 0).height),
        "alarm_orders": int(ok_orders.filter(pl.col("alarm_id") != "").height),
        "fee_due_fen": int(truth["fee_due_fen"].sum()), "fee_paid_fen": int(truth["fee_paid_fen"].sum()),
    }
    (tdir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return summary
