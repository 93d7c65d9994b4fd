"""A domain is a folder: the registry finds every one, and no module outside assets/ names a domain."""

from __future__ import annotations

import re
from pathlib import Path

from assets.registry import datasets, domains

ROOT = Path(__file__).resolve().parents[2]
CONVENTION = ("__init__.py", "datasets.py", "assets.py", "definitions.py")


def test_every_domain_folder_is_found_and_follows_the_convention():
    names = [d.name for d in domains()]
    assert names == ["access", "governance", "intake", "services", "telemetry", "vehicles"]
    for name in names:
        assert all((ROOT / "assets" / name / f).is_file() for f in CONVENTION), name
    keys = [ds.key for d in domains() for ds in d.datasets]
    assert len(keys) == len(set(keys)) == len([k for k in datasets() if not k.startswith("internal/")])


def test_no_module_outside_the_domain_folders_names_a_domain():
    """The root, kernel, quality, exports and warehouse work from the registry: adding a domain edits none."""
    names = "|".join(d.name for d in domains())
    # an import of a domain, a domain's name as a string, or one of its groups (plain words like "access key" pass)
    words = re.compile(rf"assets\.({names})\b|[\"'/]({names})[\"'/]|\b({names})_(bronze|silver|gold)\b")
    offenders = []
    for package in ("kernel", "quality", "exports", "warehouse"):
        for path in (ROOT / package).rglob("*.py"):
            offenders += [f"{path.relative_to(ROOT)}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1)
                          if words.search(line) and not line.lstrip().startswith("#")]
    for module in ("definitions.py", "jobs.py", "retention.py"):
        path = ROOT / "pipelines" / module
        offenders += [f"pipelines/{module}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1)
                      if words.search(line)]
    assert offenders == []
