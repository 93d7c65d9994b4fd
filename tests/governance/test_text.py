"""Notice text cleaning and file decoding, on small inputs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from assets.governance.parse import clean_text, read_lines
from quality.pii_scan import Canary, scan_text
from simulator.canaries import canary_residents
from simulator.governance import simulate
from simulator.registry import communities


def test_html_is_stripped_and_contacts_redacted():
    raw = ("<div><h3>停水通知</h3><p>定于本周六&nbsp;9:00停水&amp;检修，&lt;请储水&gt;&#12290;</p>"
           "<p>联系人：<b>王伟</b>，电话：138 1234 5678</p></div>")
    text, n = clean_text(raw, [])
    assert text == ("停水通知 定于本周六 9:00停水&检修，<请储水>。 联系人： [REDACTED:name] ，"
                    "电话：[REDACTED:phone]")
    assert n == 2


def test_canary_names_and_ids_in_notices_never_pass():
    c = canary_residents(5)[0]
    raw = f"<p>{c.name}业主（身份证{c.id_card}）反映：请联系{c.phone}</p>"
    text, n = clean_text(raw, [Canary("name", c.name)])
    assert c.name not in text and c.id_card not in text and c.phone not in text
    assert n == 3
    assert scan_text(text, [Canary("name", c.name)]) == []


def test_an_undecodable_sign_in_sheet_is_one_quarantined_record(tmp_path: Path):
    day = date(2026, 11, 2)
    comms = communities(2, 3)
    simulate(tmp_path, day, comms, None, 3, canary_residents(3), faults=False)
    sheets = sorted((tmp_path / "governance" / day.isoformat()).glob("*/app_signin.csv"))
    sheets[0].write_bytes(sheets[0].read_bytes() + b"\xff\xfe\x80broken\r\n")
    lines, bad, stats = read_lines(tmp_path, day.isoformat())
    assert bad.rows() == [("participation", str(sheets[0].relative_to(tmp_path)), sheets[0].parent.name)]
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
    assert bad.height == 0 or "participation" in bad["source"].to_list()
    assert lines.filter(lines["kind"] == "paper")["line"].str.contains("同意|反对|弃权").any()
