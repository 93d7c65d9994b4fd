"""Registry snapshots (devices, doors, tollgates, car parks): the latest landing CSV on or before the day.

Vendors deliver their registries as whole snapshots; a day's partition is the newest one delivered by then,
kept as text (the declaration types it when the partition is written).
"""

from __future__ import annotations

import dagster as dg

from kernel.dataset import Dataset
from kernel.lake_asset import LakeAsset, Step, lake_asset


def registry_snapshot(ds: Dataset, source: str, filename: str, *, name: str,
                      count_by: tuple[str, str] | None = None) -> LakeAsset:
    """A lake step writing ``ds`` from ``landing/<source>/<yyyy-mm-dd>/<filename>`` (newest on or before the day).

    ``count_by=(column, label)`` adds ``<label>/<value>`` counts to the metadata (e.g. door conventions).
    """

    def snapshot(step: Step) -> dict:
        root = step.landing_dir / source
        snaps = sorted(p for p in root.glob(f"*/{filename}") if p.parent.name <= step.day)
        if not snaps:
            raise dg.Failure(f"no {filename} snapshot on or before {step.day} under {root}")
        relation = f"read_csv('{snaps[-1]}', header=true, all_varchar=true)"
        step.write(f"SELECT * FROM {relation}")
        metadata: dict[str, object] = {"snapshot": snaps[-1].parent.name}
        if count_by:
            column, label = count_by
            metadata.update({f"{label}/{v}": n for v, n in step.con.execute(
                f"SELECT {column}, count(*) FROM {relation} GROUP BY 1 ORDER BY 1").fetchall()})
        return metadata

    snapshot.__name__ = snapshot.__qualname__ = name
    snapshot.__doc__ = f"{ds.name}: the newest {source}/{filename} snapshot delivered on or before the day."
    return lake_asset(ds, landing=[source])(snapshot)
