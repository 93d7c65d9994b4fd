"""Simulated governance exports: e-voting platform (votes, e-ballots), paper-ballot entry sheets and the
community app (notices, activities, sign-in sheets), per community-day, with the month-to-date ground truth.

Landing layout (``landing/governance/<day>/<community_id>/``):
  evote_votes.ndjson      snapshot of every vote open that day (a vote runs several days and closes on its end day)
  evote_ballots.ndjson    e-ballots cast that day (app / WeChat; ID or face check, face snapshot URL included)
  paper_ballots.csv       GB18030 CSV, Chinese headers: paper ballots entered at the count on a vote's end day
  app_notices.ndjson      notices with HTML bodies (tags, entities, sometimes a contact name and phone)
Names in free text: labelled (联系人/负责人/经办人：name) in notice bodies, vote subjects and activity
locations, which the pipeline must redact by its label rule; and sometimes BARE (感谢<name>等热心居民), which no
rule can detect: bare names are always random residents, never a canary, so the canary scan stays meaningful.
Canary names appear only labelled, or in name fields the pipeline never reads.
  app_activities.ndjson   activities held that day
  app_signin.csv          UTF-8-BOM CSV sign-in sheet (name, phone, sign-up, QR check-in, volunteer hours)
A vote line: {"voteId", "subject", "matterCategory", "matterType", "beginTime", "endTime", "ownerTotal",
"areaTotal", "status"}. ``matterCategory`` is the vendor's field for the kind of matter (表决事项类别), a label
from the platform's dictionary: the wording of the Civil Code art. 278 item (current release) or a short label
(older release), see ITEMS. ``matterType`` is the platform's own ordinary | major label, from a dictionary
that predates the Civil Code (every maintenance-fund matter is "major"); the pipeline does not read it.
Quirks (faults=True): co-owners and a transferred unit's new owner voting for the same room, paper ballots
for rooms that also voted electronically, reused QR check-ins, exact duplicate lines, unknown votes and
activities, ballots after the close, unreadable paper choices, bad hours, missing titles, a vote whose matter
category maps to no art. 278 item (the 2007 Property Law's joint "raising and using the fund", a bare "fund"
or "other", or none: the vote and its ballots are quarantined), and now and then a sign-in sheet with bytes
that are neither UTF-8 nor GB18030 (the whole file is one quarantined record).
The month plan (register, votes, ballots) is a function of (seed, month); day-level records of (seed, day),
so the truth for day D is recomputed from days 1..D without reading files.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from simulator.canaries import Canary, id_check_char

_SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文斌玉萍红春鹏飞"
# Civil Code art. 278 items: (share of votes, the platform's category label in its current dictionary (the
# article's wording), the short label of its older release, subjects). Shares are a guess at what Shanghai
# estates vote on: using the maintenance fund (lifts, roofs, walls, the smart-community retrofit: Putuo's
# founding case spent about 1.06 million yuan of the fund on smart-community works) is the commonest matter,
# hiring the property company next; rules of procedure and raising the fund are rare.
ITEMS: dict[int, tuple[float, str, str, tuple[str, ...]]] = {
    1: (0.04, "制定和修改业主大会议事规则", "议事规则", ("关于修订《业主大会议事规则》的表决",)),
    2: (0.06, "制定和修改管理规约", "管理规约", ("关于修订管理规约的表决", "关于调整停车管理规约的表决")),
    3: (0.10, "选举业主委员会或者更换业主委员会成员", "业委会选举",
        ("关于业主委员会换届选举的表决", "关于增补业主委员会委员的表决")),
    4: (0.14, "选聘和解聘物业服务企业或者其他管理人", "选聘解聘物业",
        ("关于选聘物业服务企业的表决", "关于续聘物业服务企业的表决", "关于解聘物业服务企业的表决")),
    5: (0.30, "使用建筑物及其附属设施的维修资金", "维修资金使用",
        ("关于使用专项维修资金更换电梯的表决", "关于使用专项维修资金维修屋面防水的表决",
         "关于使用专项维修资金实施智慧社区改造（约106万元）的表决", "关于使用专项维修资金修缮外墙的表决")),
    6: (0.06, "筹集建筑物及其附属设施的维修资金", "维修资金筹集", ("关于续筹住宅专项维修资金的表决",)),
    7: (0.08, "改建、重建建筑物及其附属设施", "改建重建",
        ("关于外墙及屋面改建工程的表决", "关于小区出入口及围墙改建工程的表决")),
    8: (0.10, "改变共有部分的用途或者利用共有部分从事经营活动", "共有部分改变用途或经营",
        ("关于改变共有部分用途增设充电车位的表决", "关于利用共有部分设置广告位的表决")),
    9: (0.12, "有关共有和共同管理权利的其他重大事项", "其他重大事项",
        ("关于公共收益使用方案的表决", "关于共有部分经营收益分配的表决")),
}
THREE_QUARTER_ITEMS = (6, 7, 8)  # raising the fund, altering or rebuilding, changing the use of common parts
# The platform's own two-way label (matterType), which the pipeline does not read: its dictionary predates the
# Civil Code and still calls every maintenance-fund matter (using it included) major.
LEGACY_MAJOR_ITEMS = (5, 6, 7, 8)
# Categories the pipeline cannot map to one item (faults): the 2007 Property Law's joint item "raising and
# using the fund" (two items with different majorities under the Civil Code), a bare "fund" or "other", none.
UNMAPPABLE = ("筹集和使用建筑物及其附属设施的维修资金", "维修资金", "其他", None)
_NOTICE_TITLES = {
    "property": ("停水通知", "电梯维保通知", "物业费缴纳提醒", "消防演练通知"),
    "owners_committee": ("业主大会会议公告", "表决结果公示", "维修资金使用公示"),
    "residents_committee": ("垃圾分类宣传", "老年人体检通知", "社区议事会通知"),
    "street": ("防汛防台提示", "人口普查告知"),
    "party_branch": ("主题党日活动通知", "党员志愿服务招募"),
}
_CATEGORY = {"property": "service", "owners_committee": "vote", "residents_committee": "community",
             "street": "government", "party_branch": "party_building"}
_ACT_TITLES = {"volunteer": "楼道清洁志愿服务", "party_building": "党员学习日", "culture": "社区合唱团排练",
               "sport": "健步走活动", "service": "便民理发服务"}
_KINDS = tuple(_ACT_TITLES)
_PUBLISHERS = tuple(_NOTICE_TITLES)
_LOCATIONS = ("社区活动室", "小区广场", "党群服务站", "3号楼架空层")
_CHOICE_ZH = {"agree": "同意", "oppose": "反对", "abstain": "弃权"}
PAPER_HEADER = ("投票编号", "选票编号", "房号", "业主姓名", "证件号码", "建筑面积(㎡)", "表决意见", "录入时间")
SIGNIN_HEADER = ("活动编号", "姓名", "手机号", "报名时间", "签到时间", "志愿时长(小时)")
ROOMS_PER_BUILDING = 24  # 2 units x 6 floors x 2 rooms
VOTE_OPEN, VOTE_CLOSE = 8 * 3600, 20 * 3600  # a vote opens 08:00 on its first day, closes 20:00 on its last


# ---- identities -------------------------------------------------------------------------------------------
def _names(rng: np.random.Generator, n: int) -> pl.Series:
    if n == 0:
        return pl.Series([], dtype=pl.String)
    s = np.array(list(_SURNAMES))[rng.integers(0, len(_SURNAMES), n)]
    g1 = np.array(list(_GIVEN))[rng.integers(0, len(_GIVEN), n)]
    g2 = np.where(rng.random(n) < 0.7, np.array(list(_GIVEN))[rng.integers(0, len(_GIVEN), n)], "")
    return pl.Series(np.char.add(np.char.add(s, g1), g2))


def _id_numbers(rng: np.random.Generator, n: int) -> pl.Series:
    year = rng.integers(1940, 2000, n)
    body = [f"310107{y}{m:02d}{d:02d}{s:03d}" for y, m, d, s in
            zip(year, rng.integers(1, 13, n), rng.integers(1, 29, n), rng.integers(0, 1000, n), strict=True)]
    return pl.Series([b + id_check_char(b) for b in body])


def _phones(rng: np.random.Generator, n: int) -> pl.Series:
    if n == 0:
        return pl.Series([], dtype=pl.String)
    pre = np.array(["139", "138", "137", "136", "135", "158", "186", "177", "199"])[rng.integers(0, 9, n)]
    return pl.Series(np.char.add(pre, np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8)))


def register(comms: pl.DataFrame, seed: int, canaries: list[Canary]) -> pl.DataFrame:
    """Owners' register: one row per unit with its area, owner and (for ~20 %) a co-owner. Stable over time.

    Canary k owns unit k of community k mod n, so every canary votes and takes part.
    """
    rng = np.random.default_rng([seed, 7000])
    per = comms["buildings"].to_numpy().astype(np.int64) * ROOMS_PER_BUILDING
    n = int(per.sum())
    cidx = np.repeat(np.arange(comms.height), per)
    seq = np.arange(n) - np.repeat(np.cumsum(per) - per, per)
    b, rest = seq // ROOMS_PER_BUILDING + 1, seq % ROOMS_PER_BUILDING
    room = [f"{x}-{u}-{f:02d}{r:02d}" for x, u, f, r in
            zip(b, rest // 12 + 1, (rest % 12) // 2 + 1, rest % 2 + 1, strict=True)]
    co = rng.random(n) < 0.2
    reg = pl.DataFrame({
        "community_id": comms["community_id"].to_numpy()[cidx], "seq": seq, "room_id": room,
        "area_m2": rng.uniform(45, 140, n).round(2),
        "owner_name": _names(rng, n), "owner_id": _id_numbers(rng, n), "owner_phone": _phones(rng, n),
        "has_co": co, "co_name": _names(rng, n), "co_id": _id_numbers(rng, n), "co_phone": _phones(rng, n),
        "canary": np.zeros(n, dtype=bool),
    })
    for k, c in enumerate(canaries):
        cid = comms["community_id"][k % comms.height]
        hit = (pl.col("community_id") == cid) & (pl.col("seq") == k)
        reg = reg.with_columns(
            owner_name=pl.when(hit).then(pl.lit(c.name)).otherwise("owner_name"),
            owner_id=pl.when(hit).then(pl.lit(c.id_card)).otherwise("owner_id"),
            owner_phone=pl.when(hit).then(pl.lit(c.phone)).otherwise("owner_phone"),
            canary=hit | pl.col("canary"),
        )
    return reg


# ---- the month plan: votes and every ballot ---------------------------------------------------------------
def _ts(d: pl.Expr, secs: pl.Expr) -> pl.Expr:
    return (d.cast(pl.Datetime("ms")) + pl.duration(seconds=secs)).dt.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class MonthPlan:
    votes: pl.DataFrame    # one row per vote
    ballots: pl.DataFrame  # every ballot of the month with cast_day and fate (counted / duplicate kind)


def month_plan(comms: pl.DataFrame, reg: pl.DataFrame, first: date, seed: int, faults: bool) -> MonthPlan:
    """Votes start and end within the month (simplification: see docs) and run 3-10 days."""
    rng = np.random.default_rng([seed, first.toordinal(), 7100])
    ndays = calendar.monthrange(first.year, first.month)[1]
    nv = rng.choice([0, 1, 1, 2], comms.height)
    cidx = np.repeat(np.arange(comms.height), nv)
    m = cidx.size
    dur = rng.integers(3, 11, m)
    start = 1 + (rng.random(m) * (ndays - dur + 1)).astype(np.int64)
    # the matter: its art. 278 item, subject and the category label the platform exports (own stream)
    ir = np.random.default_rng([seed, first.toordinal(), 7103])
    items = np.array(list(ITEMS))
    item = ir.choice(items, m, p=np.array([ITEMS[i][0] for i in items]))
    title = [ITEMS[i][3][int(u * len(ITEMS[i][3]))] for i, u in zip(item, ir.random(m), strict=True)]
    # a community's platform runs the current dictionary (the article's wording) or the older one (short)
    short = np.random.default_rng([seed, 7104]).random(comms.height) < 0.25
    category = [ITEMS[i][2] if short[c] else ITEMS[i][1] for i, c in zip(item, cidx, strict=True)]
    unmapped = (ir.random(m) < 0.05) & faults
    bad = ir.integers(0, len(UNMAPPABLE), m)
    category = [UNMAPPABLE[b] if u else c for c, u, b in zip(category, unmapped, bad, strict=True)]
    cids = comms["community_id"].to_numpy()[cidx]
    j = np.concatenate([np.arange(k) for k in nv]) if m else np.zeros(0, np.int64)
    sizes = reg.group_by("community_id").agg(pl.len().alias("eligible_owners"),
                                             pl.col("area_m2").sum().round(2).alias("eligible_area_m2"))
    votes = pl.DataFrame({
        "community_id": cids.astype(str),
        "vote_id": [f"TP{c[-6:]}{first:%Y%m}{k + 1:02d}" for c, k in zip(cids, j, strict=True)],
        "title": title, "art278_item": item.astype(np.int64), "matter_category": category,
        "mapped": ~unmapped,
        "start_day": [first + timedelta(days=int(s) - 1) for s in start],
        "end_day": [first + timedelta(days=int(s + d) - 2) for s, d in zip(start, dur, strict=True)],
        # turnout propensity spread so that some votes miss the quorum
        "p_turn": rng.uniform(0.5, 0.95, m), "p_agree": rng.uniform(0.45, 0.95, m),
    }, schema_overrides={"start_day": pl.Date, "end_day": pl.Date, "p_turn": pl.Float64, "p_agree": pl.Float64,
                         "art278_item": pl.Int64, "mapped": pl.Boolean,
                         **{c: pl.String for c in ("community_id", "vote_id", "title", "matter_category")}},
    ).join(sizes, on="community_id", how="left")

    cand = votes.join(reg, on="community_id").sort("vote_id", "seq")
    r = np.random.default_rng([seed, first.toordinal(), 7101])
    h = cand.height
    u_turn, u_choice, u_paper = r.random(h), r.random(h), r.random(h)
    span = (cand["end_day"] - cand["start_day"]).dt.total_days().to_numpy() + 1
    e_day_off = (r.random(h) ** 1.5 * span).astype(np.int64)  # e-ballots come early
    e_secs = r.integers(VOTE_OPEN, 18 * 3600, h)
    p_secs = r.integers(VOTE_OPEN + 3600, 19 * 3600, h)
    p_oppose = (1 - cand["p_agree"].to_numpy()) * 0.7
    choice = np.where(u_choice < cand["p_agree"].to_numpy(), "agree",
                      np.where(u_choice < cand["p_agree"].to_numpy() + p_oppose, "oppose", "abstain"))
    canary = cand["canary"].to_numpy()
    votes_mask = (u_turn < cand["p_turn"].to_numpy()) | canary
    paper = (u_paper < 0.25) & ~canary
    auth = np.where(r.random(h) < 0.6, "id_property_cert", "face")
    wechat = r.random(h) < 0.35
    phone_only = wechat & ~paper & (r.random(h) < 0.5)
    base = cand.with_columns(
        choice=pl.Series(choice), auth_method=pl.Series(np.where(paper, "paper", auth)),
        channel=pl.Series(np.where(paper, "paper", np.where(wechat, "wechat", "app"))),
        cast_day=pl.when(pl.Series(paper)).then(pl.col("end_day"))
        .otherwise(pl.col("start_day") + pl.duration(days=pl.Series(e_day_off))),
        secs=pl.Series(np.where(paper, p_secs, e_secs)),
        voter_name=pl.col("owner_name"), voter_id=pl.when(pl.Series(phone_only)).then(None).otherwise("owner_id"),
        voter_phone=pl.col("owner_phone"), fate=pl.lit("counted"),
    ).filter(pl.Series(votes_mask))
    extras = []
    if faults:
        e = base.filter(pl.col("channel") != "paper")
        x = np.random.default_rng([seed, first.toordinal(), 7102]).random((4, e.height))
        e = e.with_columns(u0=pl.Series(x[0]), u1=pl.Series(x[1]), u2=pl.Series(x[2]),
                           jit=pl.Series(x[3] * 4000).cast(pl.Int64))
        later = pl.col("secs") + 600 + pl.col("jit")
        # a co-owner votes again for the same room, later the same day
        extras.append(e.filter(pl.col("has_co") & (pl.col("u0") < 0.35)).with_columns(
            voter_name=pl.col("co_name"), voter_id=pl.col("co_id"), voter_phone=pl.col("co_phone"),
            secs=later, fate=pl.lit("dup_co_owner")))
        # the unit was sold during the vote; the new owner votes as well
        extras.append(e.filter((pl.col("u1") < 0.01) & ~pl.col("canary")).with_columns(
            voter_name=pl.lit("新业主"), voter_id=pl.lit("310107198001010000"), voter_phone=pl.lit("13900000000"),
            secs=later, fate=pl.lit("dup_transfer")))
        # the owner also dropped a paper ballot in the box: entered at the count on the end day
        extras.append(e.filter(pl.col("u2") < 0.05).with_columns(
            channel=pl.lit("paper"), auth_method=pl.lit("paper"), cast_day=pl.col("end_day"), voter_id=pl.col("owner_id"),
            secs=pl.lit(19 * 3600 + 1800, pl.Int64), fate=pl.lit("dup_paper_overlap")))
    cols = ["community_id", "vote_id", "room_id", "area_m2", "choice", "auth_method", "channel", "cast_day", "secs",
            "voter_name", "voter_id", "voter_phone", "fate", "canary"]
    ballots = pl.concat([base.select(cols), *[x.select(cols) for x in extras]]).with_columns(
        secs=pl.col("secs").cast(pl.Int64)).sort("vote_id", "room_id", "cast_day", "secs", "fate")
    ballots = ballots.with_columns(
        ballot_id=pl.format("B{}{}", pl.col("vote_id").str.slice(2),
                            (pl.int_range(pl.len()).over("vote_id") + 1).cast(pl.String).str.zfill(5)),
        cast_ts=_ts(pl.col("cast_day"), pl.col("secs")))
    # a vote quarantined for its matter category takes every ballot cast in it along (the pipeline cannot
    # count them until the vote is fixed)
    quarantined = votes.filter(~pl.col("mapped"))["vote_id"]
    ballots = ballots.with_columns(fate=pl.when(pl.col("vote_id").is_in(quarantined.implode()))
                                   .then(pl.lit("q:vote_quarantined")).otherwise("fate"))
    return MonthPlan(votes.drop("p_turn", "p_agree"), ballots)


# ---- vote outcome rule (independent of the pipeline's SQL on purpose: a second implementation) -----------
def outcomes(votes: pl.DataFrame, ballots: pl.DataFrame) -> pl.DataFrame:
    """Civil Code art. 278: quorum 2/3 of area and of owners taking part (以上 includes the bound, art. 1259);
    items 6-8 (raising the maintenance fund, altering or rebuilding, changing the use of common parts) need at
    least 3/4 of participating area and owners to agree (three_quarter); every other item, using the fund
    included, more than half of both (ordinary)."""
    counted = ballots.filter(pl.col("fate") == "counted").with_columns(
        cents=(pl.col("area_m2") * 100).round(0).cast(pl.Int64))
    agg = counted.group_by("vote_id").agg(
        participating_owners=pl.len(), part_c=pl.col("cents").sum(),
        agree_owners=(pl.col("choice") == "agree").sum(),
        agree_c=pl.col("cents").filter(pl.col("choice") == "agree").sum())
    out = votes.join(agg, on="vote_id", how="left").with_columns(
        pl.col("participating_owners", "part_c", "agree_owners", "agree_c").fill_null(0).cast(pl.Int64),
        elig_c=(pl.col("eligible_area_m2") * 100).round(0).cast(pl.Int64))
    quorum = ((3 * pl.col("part_c") >= 2 * pl.col("elig_c"))
              & (3 * pl.col("participating_owners") >= 2 * pl.col("eligible_owners"))
              & (pl.col("participating_owners") > 0))
    ordinary = (2 * pl.col("agree_c") > pl.col("part_c")) & (2 * pl.col("agree_owners") > pl.col("participating_owners"))
    three_quarter = ((4 * pl.col("agree_c") >= 3 * pl.col("part_c"))
                     & (4 * pl.col("agree_owners") >= 3 * pl.col("participating_owners")))
    return out.with_columns(
        matter_class=pl.when(pl.col("art278_item").is_in(THREE_QUARTER_ITEMS)).then(pl.lit("three_quarter"))
        .when(pl.col("art278_item").is_between(1, 9)).then(pl.lit("ordinary")),
        quorum_met=quorum,
        passed=quorum & pl.when(pl.col("art278_item").is_in(THREE_QUARTER_ITEMS)).then(three_quarter)
        .when(pl.col("art278_item").is_between(1, 9)).then(ordinary),
        participating_area_m2=pl.col("part_c") / 100, agree_area_m2=pl.col("agree_c") / 100,
    ).drop("part_c", "agree_c", "elig_c")


# ---- day records ------------------------------------------------------------------------------------------
@dataclass
class DayRecords:
    notices: pl.DataFrame       # fate: accepted | q:<reason> | dup_in_file
    activities: pl.DataFrame
    signin: pl.DataFrame        # fate: accepted | dup_reused_qr | q:<reason> | dup_in_file (whole-file: undecodable)
    undecodable: set[str]       # community ids whose sign-in sheet is written with broken bytes


def day_records(comms: pl.DataFrame, reg: pl.DataFrame, day: date, seed: int, faults: bool) -> DayRecords:
    o = day.toordinal()
    n = comms.height
    cids = comms["community_id"].to_numpy().astype(str)
    size = comms["size_factor"].to_numpy()
    # notices
    r = np.random.default_rng([seed, o, 7400])
    cnt = r.poisson(1.2 * size)
    ci = np.repeat(np.arange(n), cnt)
    k = ci.size
    pub = np.array(_PUBLISHERS)[r.integers(0, len(_PUBLISHERS), k)]
    titles = [_NOTICE_TITLES[p][int(i) % len(_NOTICE_TITLES[p])] for p, i in zip(pub, r.integers(0, 10, k), strict=True)]
    contact = r.random(k) < 0.4
    names, phones = _names(r, k).to_list(), _phones(r, k).to_list()
    secs = r.integers(7 * 3600, 21 * 3600, k)
    seqn = np.concatenate([np.arange(c) for c in cnt]) if k else np.zeros(0, np.int64)
    notices = pl.DataFrame({
        "community_id": cids[ci], "notice_id": [f"N{c[-6:]}{day:%Y%m%d}{s + 1:03d}" for c, s in zip(cids[ci], seqn, strict=True)],
        "title": titles, "publisher_type": pub.astype(str), "category": [_CATEGORY[p] for p in pub],
        "secs": secs, "reads": r.integers(0, 800, k), "contact": contact, "contact_name": names,
        "contact_phone": phones, "fate": ["accepted"] * k,
    }, schema_overrides={"secs": pl.Int64, "reads": pl.Int64, "contact": pl.Boolean, "fate": pl.String,
                         **{c: pl.String for c in ("community_id", "notice_id", "title", "publisher_type", "category",
                                                   "contact_name", "contact_phone")}})
    # activities
    r = np.random.default_rng([seed, o, 7500])
    cnt = r.poisson(0.8 * size)
    ci = np.repeat(np.arange(n), cnt)
    k = ci.size
    kinds = np.array(_KINDS)[r.integers(0, len(_KINDS), k)]
    seqn = np.concatenate([np.arange(c) for c in cnt]) if k else np.zeros(0, np.int64)
    start = r.integers(8, 19, k) * 3600
    acts = pl.DataFrame({
        "community_id": cids[ci], "activity_id": [f"A{c[-6:]}{day:%Y%m%d}{s + 1:02d}" for c, s in zip(cids[ci], seqn, strict=True)],
        "kind": kinds.astype(str), "title": [_ACT_TITLES[x] for x in kinds],
        "organiser": np.where(kinds == "party_building", "party_branch", "residents_committee").astype(str),
        "start_secs": start, "end_secs": start + r.integers(1, 4, k) * 3600,
        "location": np.array(_LOCATIONS)[r.integers(0, len(_LOCATIONS), k)].astype(str),
        "volunteer_hours": np.where(kinds == "volunteer", r.integers(2, 8, k) / 2, np.nan),
        "size": r.integers(3, 35, k), "fate": ["accepted"] * k,
    }, schema_overrides={"start_secs": pl.Int64, "end_secs": pl.Int64, "size": pl.Int64, "volunteer_hours": pl.Float64,
                         **{c: pl.String for c in ("community_id", "activity_id", "kind", "title", "organiser",
                                                   "location", "fate")}})
    # sign-in sheets: participants drawn from the community's owners (canaries always join)
    r = np.random.default_rng([seed, o, 7501])
    pool = reg.select("community_id", "seq", "owner_name", "owner_phone", "canary")
    pool_n = dict(pool.group_by("community_id").len().iter_rows())
    a_rep = acts.select("community_id", "activity_id", "size").with_columns(
        pool_n=pl.col("community_id").replace_strict(pool_n, return_dtype=pl.Int64))
    rep = a_rep.select(pl.all().repeat_by(pl.col("size"))).explode(pl.all()) if acts.height else a_rep
    draw = (r.random(rep.height) * rep["pool_n"].to_numpy()).astype(np.int64)
    canary_rows = pool.filter("canary").select("community_id", "seq").join(
        acts.select("community_id", "activity_id"), on="community_id")
    picks = pl.concat([rep.select("community_id", "activity_id").with_columns(seq=pl.Series(draw)),
                       canary_rows.select("community_id", "activity_id", "seq")]).unique(maintain_order=True)
    signin = picks.join(pool, on=["community_id", "seq"]).join(
        acts.select("activity_id", "kind", "start_secs", "volunteer_hours"), on="activity_id").sort("activity_id", "seq")
    h = signin.height
    came = (r.random(h) < 0.85) | signin["canary"].to_numpy()
    signin = signin.with_columns(
        signup=_ts(pl.lit(day) - pl.duration(days=pl.Series(r.integers(1, 6, h))), pl.Series(r.integers(8 * 3600, 22 * 3600, h))),
        checkin_secs=pl.when(pl.Series(came)).then(pl.col("start_secs") + pl.Series(r.integers(-900, 1800, h))),
        fate=pl.lit("accepted"))
    signin = signin.with_columns(hours=pl.when(pl.col("checkin_secs").is_not_null()).then(pl.col("volunteer_hours")))
    undecodable: set[str] = set()
    if faults:
        f = np.random.default_rng([seed, o, 7600])
        qr = signin.filter(pl.col("checkin_secs").is_not_null() & pl.Series(f.random(h) < 0.06)).with_columns(
            checkin_secs=pl.col("checkin_secs") + 120, fate=pl.lit("dup_reused_qr"))
        bad_act = signin.filter(pl.Series(f.random(h) < 0.01)).with_columns(
            activity_id=pl.col("activity_id") + "X", fate=pl.lit("q:unknown_activity"))
        bad_hours = signin.filter(pl.Series(f.random(h) < 0.01) & pl.col("hours").is_not_null()).with_columns(
            hours=pl.lit(36.0), fate=pl.lit("q:invalid_hours"))
        signin = pl.concat([signin, qr, bad_act, bad_hours])
        undecodable = {c for c, u in zip(cids, f.random(n) < 0.04, strict=True) if u}
        acts = pl.concat([acts, acts.filter(pl.Series(f.random(acts.height) < 0.03)).with_columns(
            activity_id=pl.col("activity_id") + "K", kind=pl.lit("公益"), fate=pl.lit("q:invalid_kind"))])
        notices = pl.concat([notices, notices.filter(pl.Series(f.random(notices.height) < 0.05)).with_columns(
            notice_id=pl.col("notice_id") + "T", title=pl.lit(""), fate=pl.lit("q:missing_title"))])
    signin = signin.with_columns(checkin=pl.when(pl.col("checkin_secs").is_not_null())
                                 .then(_ts(pl.lit(day), pl.col("checkin_secs"))))
    return DayRecords(notices, acts, signin, undecodable)


# ---- writing ------------------------------------------------------------------------------------------------
def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.rename(path)


def _ndjson(rows: list[dict], dup_rng: np.random.Generator | None) -> tuple[bytes, int]:
    lines = [json.dumps(x, ensure_ascii=False) for x in rows]
    dups = 0
    if dup_rng is not None and lines:
        for i in np.flatnonzero(dup_rng.random(len(lines)) < 0.02)[::-1]:
            lines.insert(int(i) + 1, lines[int(i)])
            dups += 1
    return ("\n".join(lines) + "\n").encode("utf-8"), dups


def _csv(header: tuple[str, ...], rows: list[tuple], encoding: str, bom: bool,
         dup_rng: np.random.Generator | None) -> tuple[bytes, int]:
    lines = [",".join("" if v is None else str(v) for v in row) for row in rows]
    dups = 0
    if dup_rng is not None and lines:
        for i in np.flatnonzero(dup_rng.random(len(lines)) < 0.02)[::-1]:
            lines.insert(int(i) + 1, lines[int(i)])
            dups += 1
    text = "\r\n".join([",".join(header), *lines]) + "\r\n"
    return (("\ufeff" if bom else "") + text).encode(encoding), dups


def _html(title: str, name: str | None, phone: str | None, label: str = "联系人", thanks: str | None = None) -> str:
    body = (f"<div class=\"notice\"><h3>{title}</h3><p>各位业主、住户：</p>"
            "<p>根据工作安排，定于本周六&nbsp;上午9:00在社区活动室召开说明会，请相互转告&amp;准时参加。</p>"
            "<p>温馨提示：&lt;请勿&gt;在楼道堆放杂物。</p>")
    if thanks:  # a bare name: undetectable by design (never a canary, see the module docstring)
        body += f"<p>感谢{thanks}等热心居民的支持。</p>"
    if name:
        body += f"<p>{label}：<b>{name}</b>，联系电话：{phone}</p>"
    return body + "<p style=\"text-align:right\">特此通知&#12290;</p></div>"


def simulate(landing: Path, day: date, communities: pl.DataFrame, devices: pl.DataFrame, seed: int,
             canaries: list[Canary], faults: bool = True) -> dict:
    """Write the day's governance exports and the month-to-date truth; return the truth summary."""
    landing = Path(landing)
    first = day.replace(day=1)
    reg = register(communities, seed, canaries)
    plan = month_plan(communities, reg, first, seed, faults)
    recs = day_records(communities, reg, day, seed, faults)
    d_iso = day.isoformat()
    root = landing / "governance" / d_iso
    fr = np.random.default_rng([seed, day.toordinal(), 7700])
    acct = {s: {"landed": 0, "accepted": 0, "quarantined": {}, "duplicates_in_file": 0, "duplicates_silver": 0}
            for s in ("votes", "ballots", "announcements", "activities", "participation")}

    def tally(source: str, fates: pl.Series) -> None:
        a = acct[source]
        for fate, c in pl.DataFrame({"f": fates}).group_by("f").len().iter_rows():
            a["landed"] += c
            if fate in ("accepted", "counted"):
                a["accepted"] += c
            elif fate.startswith("q:"):
                a["quarantined"][fate[2:]] = a["quarantined"].get(fate[2:], 0) + c
            else:
                a["duplicates_silver"] += c

    def dup_in_file(source: str, n: int) -> None:
        acct[source]["landed"] += n
        acct[source]["duplicates_in_file"] += n

    open_votes = plan.votes.filter((pl.col("start_day") <= day) & (pl.col("end_day") >= day))
    ballots = plan.ballots.filter(pl.col("cast_day") == day)
    if faults:  # ballots that must be quarantined: unknown vote, cast after the close, no room, bad paper choice
        e = ballots.filter(pl.col("fate") == "counted")
        x = fr.random((4, e.height))
        ends = dict(plan.votes.select("vote_id", "end_day").iter_rows())
        e = e.with_columns(u0=pl.Series(x[0]), u1=pl.Series(x[1]), u2=pl.Series(x[2]), u3=pl.Series(x[3]),
                           closing=pl.col("cast_day") == pl.col("vote_id").replace_strict(ends, default=None))
        ecols = ballots.columns
        injected = pl.concat([
            e.filter(pl.col("u0") < 0.01).with_columns(vote_id=pl.lit("TP000000000000"), fate=pl.lit("q:unknown_vote"))
            .select(ecols),
            e.filter((pl.col("u1") < 0.01) & pl.col("closing") & (pl.col("channel") != "paper"))
            .with_columns(cast_ts=_ts(pl.col("cast_day"), pl.lit(21 * 3600)), fate=pl.lit("q:outside_vote_period"))
            .select(ecols),
            e.filter((pl.col("u2") < 0.005) & (pl.col("channel") != "paper")).with_columns(
                room_id=pl.lit(""), fate=pl.lit("q:missing_room")).select(ecols),
            e.filter((pl.col("u3") < 0.02) & (pl.col("channel") == "paper")).with_columns(
                choice=pl.lit("同意反对"), fate=pl.lit("q:invalid_choice")).select(ecols),
        ])  # each injected copy gets its own ballot id (the original keeps its id)
        ballots = pl.concat([ballots, injected.with_columns(
            ballot_id=pl.col("ballot_id") + pl.col("fate").str.slice(2, 3).str.to_uppercase())])
    faces = 0
    # free-text names: labelled contacts and bare thank-yous, from their own stream (the rest stays unchanged)
    tr = np.random.default_rng([seed, day.toordinal(), 7800])
    canary_names = [c.name for c in canaries]

    def contact() -> tuple[str, str]:
        return _names(tr, 1)[0], _phones(tr, 1)[0]

    def bare_name() -> str:
        n = _names(tr, 1)[0]
        return n[0] + "师傅" if any(c in n or n in c for c in canary_names) else n

    for cid in communities["community_id"].to_list():
        cdir = root / cid
        cv = open_votes.filter(pl.col("community_id") == cid)
        vrows = [{"voteId": v["vote_id"], "subject": v["title"],
                  **({} if v["matter_category"] is None else {"matterCategory": v["matter_category"]}),
                  "matterType": "major" if v["art278_item"] in LEGACY_MAJOR_ITEMS else "ordinary",
                  "beginTime": f"{v['start_day']} 08:00:00", "endTime": f"{v['end_day']} 20:00:00",
                  "ownerTotal": v["eligible_owners"], "areaTotal": f"{v['eligible_area_m2']:.2f}",
                  "status": "closing" if v["end_day"] == day else "voting"}
                 for v in cv.iter_rows(named=True)]
        for v in vrows:
            if tr.random() < 0.3:
                name, phone = contact()
                v["subject"] += f"（经办人：{name}，咨询电话：{phone}）"
        data, d = _ndjson(vrows, fr if faults else None)
        _write(cdir / "evote_votes.ndjson", data)
        tally("votes", cv.select(pl.when("mapped").then(pl.lit("accepted"))
                                 .otherwise(pl.lit("q:unmapped_matter"))).to_series())
        dup_in_file("votes", d)
        cb = ballots.filter(pl.col("community_id") == cid)
        eb = cb.filter(pl.col("channel") != "paper")
        rows = []
        for b in eb.iter_rows(named=True):
            row = {"ballotId": b["ballot_id"], "voteId": b["vote_id"], "roomNo": b["room_id"],
                   "ownerName": b["voter_name"], "idNo": b["voter_id"], "mobile": b["voter_phone"],
                   "buildArea": f"{b['area_m2']:.2f}", "option": b["choice"], "authType": b["auth_method"],
                   "channel": b["channel"], "castTime": b["cast_ts"]}
            if b["auth_method"] == "face":
                faces += 1
                row["faceCheck"] = {"score": 0.93, "snapUrl": f"http://10.32.8.15/evote/face/{b['ballot_id']}.jpg"}
            rows.append(row)
        data, d = _ndjson(rows, fr if faults else None)
        _write(cdir / "evote_ballots.ndjson", data)
        tally("ballots", eb["fate"])
        dup_in_file("ballots", d)
        pb = cb.filter(pl.col("channel") == "paper")
        if pb.height:
            prow = [(b["vote_id"], b["ballot_id"], b["room_id"], b["voter_name"], b["voter_id"] or "",
                     f"{b['area_m2']:.2f}", _CHOICE_ZH.get(b["choice"], b["choice"]), b["cast_ts"])
                    for b in pb.iter_rows(named=True)]
            data, d = _csv(PAPER_HEADER, prow, "gb18030", False, fr if faults else None)
            _write(cdir / "paper_ballots.csv", data)
            tally("ballots", pb["fate"])
            dup_in_file("ballots", d)
        cn = recs.notices.filter(pl.col("community_id") == cid)
        nrows = [{"noticeId": x["notice_id"], "title": x["title"], "publisherType": x["publisher_type"],
                  "category": x["category"], "publishTime": f"{d_iso} {x['secs'] // 3600:02d}:{x['secs'] % 3600 // 60:02d}:00",
                  "expireTime": f"{day + timedelta(days=7)} 23:59:59", "readCount": x["reads"],
                  "content": _html(x["title"], x["contact_name"] if x["contact"] else None, x["contact_phone"],
                                   "联系人" if tr.random() < 0.7 else "负责人",
                                   bare_name() if tr.random() < 0.2 else None)}
                 for x in cn.iter_rows(named=True)]
        # a canary shows up as the contact of the first notice of its community
        for k, c in enumerate(canaries):
            if nrows and communities["community_id"][k % communities.height] == cid:
                nrows[0]["content"] = _html(nrows[0]["title"], c.name, c.phone)
        data, d = _ndjson(nrows, fr if faults else None)
        _write(cdir / "app_notices.ndjson", data)
        tally("announcements", cn["fate"])
        dup_in_file("announcements", d)
        ca = recs.activities.filter(pl.col("community_id") == cid)
        arows = [{"activityId": a["activity_id"], "name": a["title"], "kind": a["kind"], "organiser": a["organiser"],
                  "startTime": f"{d_iso} {a['start_secs'] // 3600:02d}:00:00",
                  "endTime": f"{d_iso} {a['end_secs'] // 3600:02d}:00:00", "location": a["location"],
                  "volunteerHours": None if a["volunteer_hours"] != a["volunteer_hours"] else a["volunteer_hours"]}
                 for a in ca.iter_rows(named=True)]
        for a in arows:
            if tr.random() < 0.3:
                name, phone = contact()
                a["location"] += f"（负责人：{name} {phone}）"
        # a canary is the labelled contact of its community's first activity
        for k, c in enumerate(canaries):
            if arows and communities["community_id"][k % communities.height] == cid:
                arows[0]["location"] = f"{_LOCATIONS[0]}（联系人：{c.name}，电话{c.phone}）"
        data, d = _ndjson(arows, fr if faults else None)
        _write(cdir / "app_activities.ndjson", data)
        tally("activities", ca["fate"])
        dup_in_file("activities", d)
        cs = recs.signin.filter(pl.col("community_id") == cid)
        srows = [(s["activity_id"], s["owner_name"], s["owner_phone"], s["signup"], s["checkin"],
                  "" if s["hours"] is None or s["hours"] != s["hours"] else f"{s['hours']:.1f}")
                 for s in cs.iter_rows(named=True)]
        data, d = _csv(SIGNIN_HEADER, srows, "utf-8", True, fr if faults else None)
        if cid in recs.undecodable and srows:
            data = data.replace("签到".encode(), b"\xff\xfe\x80", 1)  # neither UTF-8 nor GB18030
            # the pipeline cannot count rows it cannot decode: the file is one quarantined record
            acct["participation"]["landed"] += 1
            q = acct["participation"]["quarantined"]
            q["undecodable_file"] = q.get("undecodable_file", 0) + 1
        else:
            tally("participation", cs["fate"])
            dup_in_file("participation", d)
        _write(cdir / "app_signin.csv", data)

    truth = month_truth(communities, reg, plan, day, seed, faults)
    tdir = landing / "_truth" / "governance" / d_iso
    tdir.mkdir(parents=True, exist_ok=True)
    truth["monthly"].write_parquet(tdir / "governance_monthly.parquet")
    truth["outcomes"].write_parquet(tdir / "vote_outcomes.parquet")
    summary = {"day": d_iso, "accounting": acct, "face_artefacts": faces,
               "votes_closing": truth["outcomes"].height,
               "monthly": truth["monthly"].to_dicts()}
    _write(tdir / "summary.json", json.dumps(summary, ensure_ascii=False, indent=1, default=str).encode())
    return {"day": d_iso, "accounting": {s: {k: (sum(v.values()) if isinstance(v, dict) else v) for k, v in a.items()}
                                         for s, a in acct.items()}, "votes_closing": truth["outcomes"].height}


def month_truth(comms: pl.DataFrame, reg: pl.DataFrame, plan: MonthPlan, day: date, seed: int,
                faults: bool) -> dict[str, pl.DataFrame]:
    """Unsuppressed month-to-date figures per community, and the outcomes of votes closing on ``day``."""
    first = day.replace(day=1)
    votes = plan.votes.filter("mapped")  # a vote quarantined for its matter category is not held, nor decided
    res = outcomes(votes, plan.ballots)
    closed = res.filter(pl.col("end_day") <= day)
    held = votes.filter(pl.col("start_day") <= day).group_by("community_id").agg(votes_held=pl.len())
    ordinary, tq = pl.col("matter_class") == "ordinary", pl.col("matter_class") == "three_quarter"
    cl = closed.group_by("community_id").agg(
        votes_closed=pl.len(), votes_quorum_met=pl.col("quorum_met").sum().cast(pl.Int64),
        votes_passed=pl.col("passed").sum().cast(pl.Int64),
        votes_closed_ordinary=ordinary.sum(), votes_passed_ordinary=(ordinary & pl.col("passed")).sum(),
        votes_closed_three_quarter=tq.sum(), votes_passed_three_quarter=(tq & pl.col("passed")).sum(),
        ballots_counted=pl.col("participating_owners").sum(), elig=pl.col("eligible_owners").sum(),
        part_area=pl.col("participating_area_m2").sum(), elig_area=pl.col("eligible_area_m2").sum())
    notices, acts, parts = [], [], []
    for i in range((day - first).days + 1):
        r = day_records(comms, reg, first + timedelta(days=i), seed, faults)
        notices.append(r.notices.filter(pl.col("fate") == "accepted").select("community_id"))
        acts.append(r.activities.filter(pl.col("fate") == "accepted").select("community_id"))
        parts.append(r.signin.filter((pl.col("fate") == "accepted") & pl.col("checkin_secs").is_not_null()
                                     & ~pl.col("community_id").is_in(list(r.undecodable)))
                     .select("community_id", "owner_phone", "hours"))
    p = pl.concat(parts)
    monthly = (comms.select("community_id")
               .join(held, on="community_id", how="left").join(cl, on="community_id", how="left")
               .join(pl.concat(acts).group_by("community_id").agg(activities=pl.len()), on="community_id", how="left")
               .join(p.group_by("community_id").agg(participants=pl.col("owner_phone").n_unique(),
                                                   volunteer_hours=pl.col("hours").fill_nan(None).sum()),
                     on="community_id", how="left")
               .join(pl.concat(notices).group_by("community_id").agg(announcements=pl.len()), on="community_id",
                     how="left"))
    by_class = ("votes_closed_ordinary", "votes_passed_ordinary", "votes_closed_three_quarter",
                "votes_passed_three_quarter")
    monthly = monthly.with_columns(
        pl.col("votes_held", "votes_closed", "votes_quorum_met", "votes_passed", *by_class, "ballots_counted",
               "activities", "participants", "announcements").fill_null(0).cast(pl.Int64),
        pl.col("volunteer_hours").fill_null(0.0).cast(pl.Float64),
        month=pl.lit(first),
        turnout_headcount_pct=(100 * pl.col("ballots_counted") / pl.col("elig")).round(2),
        turnout_area_pct=(100 * pl.col("part_area") / pl.col("elig_area")).round(2),
    ).select("community_id", "month", "votes_held", "votes_closed", "votes_quorum_met", "votes_passed",
             *by_class, "turnout_headcount_pct", "turnout_area_pct", "ballots_counted", "activities",
             "participants", "volunteer_hours", "announcements")
    out = res.filter(pl.col("end_day") == day).select(
        "community_id", "vote_id", "art278_item", "matter_class", "eligible_owners", "eligible_area_m2",
        "participating_owners", "participating_area_m2", "agree_owners", "agree_area_m2", "quorum_met",
        "passed")
    return {"monthly": monthly.sort("community_id"), "outcomes": out.sort("vote_id")}
