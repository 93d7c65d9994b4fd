"""Free-text redaction, line splitting, whole-file refusals and decoding, on small inputs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl

from assets.governance.parse import clean_series, clean_text, read_lines, split_lines
from quality.pii_scan import Canary, scan_text
from simulator.canaries import canary_residents
from simulator.governance import simulate
from simulator.registry import communities


def _all_canaries(seed: int) -> list[Canary]:
    return [Canary(k, v) for c in canary_residents(seed) for k, v in
            (("name", c.name), ("phone", c.phone), ("resident_id", c.id_card))]


def test_html_is_stripped_and_contacts_redacted():
    raw = ("<div><h3>停水通知</h3><p>定于本周六&nbsp;9:00停水&amp;检修，&lt;请储水&gt;&#12290;</p>"
           "<p>联系人：<b>王伟</b>，电话：138 1234 5678</p></div>")
    text, n, left = clean_text(raw)
    assert text == ("停水通知 定于本周六 9:00停水&检修，<请储水>。 联系人： [REDACTED:name] ，"
                    "电话：[REDACTED:phone]")
    assert n == 2 and not left


def test_labelled_canary_names_and_ids_are_caught_without_the_canary_list():
    """The redactor is never given the canaries: the label rule and the identifier scanner alone catch them."""
    c = canary_residents(5)[0]
    for raw in (f"<p>业主：{c.name}（身份证{c.id_card}）反映：请联系{c.phone}</p>",
                f"3号楼架空层（负责人：{c.name} {c.phone}）", f"关于换届的表决（经办人：{c.name}，咨询电话：{c.phone}）"):
        text, n, left = clean_text(raw)
        assert c.name not in text and c.id_card not in text and c.phone not in text, raw
        assert n >= 2 and not left
        assert scan_text(text, _all_canaries(5)) == []


def test_a_bare_name_cannot_be_detected_and_passes():
    """Documented limitation: without a label nothing marks a name, so it is kept (the simulator therefore
    never writes a canary name bare)."""
    assert clean_text("感谢王伟芳等热心居民的支持。") == ("感谢王伟芳等热心居民的支持。", 0, False)


def test_a_label_the_rule_cannot_redact_flags_the_record():
    for raw in ("联系人：欧阳娜娜娜娜", "负责人：Wang Wei，电话见公告栏"):
        text, _, left = clean_text(raw)
        assert left, raw
    # distinct values cleaned once, mapped back in order, nulls kept
    out = clean_series(pl.Series(["联系人：李强", None, "联系人：欧阳娜娜娜娜", "联系人：李强"]))
    assert out["pii_left"].to_list() == [False, False, True, False]
    assert out["text"].to_list()[0] == "联系人：[REDACTED:name]" and out["text"][1] is None


def test_lines_split_on_lf_only_so_u2028_inside_a_json_string_keeps_the_record_whole(tmp_path: Path):
    day = date(2026, 11, 2)
    simulate(tmp_path, day, communities(2, 3), None, 3, canary_residents(3), faults=False)
    path = max((tmp_path / "governance" / day.isoformat()).glob("*/app_activities.ndjson"), key=lambda p: p.stat().st_size)
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
    rows[0]["name"] = "楼道清洁\u2028志愿服务\u2029第二场\x85"
    path.write_bytes(("\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\r\n").encode())
    assert split_lines("a\u2028b\r\nc\n").to_list() == ["a\u2028b", "c", ""]
    lines, _, _ = read_lines(tmp_path, day.isoformat())
    mine = lines.filter(pl.col("source_file") == str(path.relative_to(tmp_path)))
    assert mine.height == len(rows)
    assert [json.loads(x)["name"] for x in mine["line"]][0] == rows[0]["name"]


def test_files_with_unexpected_names_are_refused_whole_and_counted(tmp_path: Path):
    day = date(2026, 11, 2)
    simulate(tmp_path, day, communities(2, 3), None, 3, canary_residents(3), faults=False)
    ddir = tmp_path / "governance" / day.isoformat()
    cdir = sorted(p for p in ddir.iterdir() if p.is_dir())[0]
    (cdir / "evote_ballots_part2.ndjson").write_text((cdir / "evote_ballots.ndjson").read_text())
    (ddir / "readme.txt").write_text("stray")
    (cdir / "app_signin.csv.part").write_text("half-written")
    before = len([p for p in ddir.rglob("*") if p.is_file()])
    lines, bad, stats = read_lines(tmp_path, day.isoformat())
    got = sorted(bad.select("source", "reason", "community_id").rows())
    assert got == [("ballots", "unknown_file", cdir.name), ("participation", "unknown_file", cdir.name),
                   ("votes", "unknown_file", None)]
    assert not lines["source_file"].str.contains("part2|readme|\\.part$").any()
    assert sum(st.files for st in stats.values()) == before


def test_an_undecodable_sign_in_sheet_is_one_quarantined_record(tmp_path: Path):
    day = date(2026, 11, 2)
    comms = communities(2, 3)
    simulate(tmp_path, day, comms, None, 3, canary_residents(3), faults=False)
    sheets = sorted((tmp_path / "governance" / day.isoformat()).glob("*/app_signin.csv"))
    sheets[0].write_bytes(sheets[0].read_bytes() + b"\xff\xfe\x80broken\r\n")
    lines, bad, stats = read_lines(tmp_path, day.isoformat())
    assert bad.select("source", "source_file", "community_id", "reason").rows() == [
        ("participation", str(sheets[0].relative_to(tmp_path)), sheets[0].parent.name, "undecodable_file")]
    assert not lines.filter(lines["source_file"] == str(sheets[0].relative_to(tmp_path))).height
    assert stats["participation"].files == len(sheets)


def test_paper_ballots_are_gb18030_and_decoded(tmp_path: Path):
    day = date(2026, 11, 5)
    simulate(tmp_path, day, communities(3, 10), None, 10, canary_residents(10))
    paper = list((tmp_path / "governance" / day.isoformat()).glob("*/paper_ballots.csv"))
    assert paper, "seed 10 closes a vote on 2026-11-05, with paper ballots"
    raw = paper[0].read_bytes()
    try:
        raw.decode("utf-8")
        is_utf8 = True
    except UnicodeDecodeError:
        is_utf8 = False
    assert not is_utf8
    lines, bad, _ = read_lines(tmp_path, day.isoformat())
    # the only refused files are the sign-in sheets the simulator broke on purpose: every paper file decoded
    summary = json.loads((tmp_path / "_truth" / "governance" / day.isoformat() / "summary.json").read_text())
    broken = summary["accounting"]["participation"]["quarantined"].get("undecodable_file", 0)
    assert bad.height == broken and set(bad["source"]) <= {"participation"}
    assert set(lines.filter(lines["kind"] == "paper")["source_file"]) == {str(p.relative_to(tmp_path)) for p in paper}
    assert lines.filter(lines["kind"] == "paper")["line"].str.contains("同意|反对|弃权").any()
