"""Conformance: each real-shaped vendor payload (tests/fixtures/vendors/<platform>/, sources in SOURCE.md) goes
through the real parser and yields exactly its expected canonical rows: device, metric, value, unit, event time
to the second in Asia/Shanghai, or the quarantine reason."""

from __future__ import annotations

import pytest

from tests.assets.telemetry.vendor_parse import all_fixtures, normalise, parse_fixture


@pytest.mark.parametrize(("platform", "name"), all_fixtures(), ids=lambda x: x)
def test_fixture_yields_exactly_its_canonical_rows(tmp_path, platform, name):
    parsed, expected = parse_fixture(tmp_path, platform, name)
    assert parsed.canonical() == normalise(expected["rows"])
    # every landed record is accepted, quarantined or an in-file duplicate
    s = parsed.stats
    assert s.landed == s.bronze_rows + s.quarantined + s.duplicates_in_file


def test_every_platform_has_fixtures_and_a_source_note():
    names = all_fixtures()
    from tests.assets.telemetry.vendor_parse import FIXTURES, PLATFORMS

    for platform in PLATFORMS:
        assert any(p == platform for p, _ in names), platform
        text = (FIXTURES / platform / "SOURCE.md").read_text(encoding="utf-8")
        for p, name in names:
            if p == platform:
                assert f"{name}.ndjson" in text, f"{platform}/SOURCE.md does not name {name}.ndjson"
