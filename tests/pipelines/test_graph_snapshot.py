"""The whole graph pinned in one snapshot: every asset (group, kinds, owners, deps and their partition mapping),
every check with its blocking flag, every job's steps, every schedule and sensor. A graph change is a visible,
reviewed diff: `make snapshot` rewrites tests/pipelines/__snapshots__/ after an intended change."""

from __future__ import annotations

import dagster as dg


def graph_snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        deps = {}
        for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string()):
            mapping = graph.get_partition_mapping(key, parent)
            deps[parent.to_user_string()] = type(mapping).__name__ + (
                f"({mapping.start_offset},{mapping.end_offset})"
                if isinstance(mapping, dg.TimeWindowPartitionMapping) else "")
        assets[key.to_user_string()] = {
            "group": node.group_name, "kinds": sorted(node.kinds), "owners": list(node.owners),
            "tags": {k: v for k, v in sorted(node.tags.items()) if not k.startswith("dagster/kind/")},
            "partitioned": node.partitions_def is not None, "deps": deps,
            "checks": {ck.name: ("blocking" if graph.get_check_spec(ck).blocking else "warn")
                       for ck in sorted(graph.asset_check_keys, key=lambda c: c.name) if ck.asset_key == key},
        }
    jobs = {}
    for name in sorted(j.name for j in defs.jobs or []):
        job = defs.resolve_job_def(name)
        # each step with the concurrency pool it runs in ("" when it takes no pool slot) and its priority
        # (kernel.priorities: which ready step the executor starts first; none for the default, 0)
        jobs[name] = {n: _pool_and_priority(job.graph.node_named(n).definition) for n in sorted(job.graph.node_names())}
    schedules = {s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name,
                          "default": s.default_status.value}
                 for s in sorted(defs.schedules or [], key=lambda s: s.name)}
    sensors = {s.name: {"jobs": sorted(j.name for j in s.jobs) if s.has_jobs else [], "default": s.default_status.value}
               for s in sorted(defs.sensors or [], key=lambda s: s.name)}
    return {"assets": assets, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def _pool_and_priority(definition) -> str:
    pool = getattr(definition, "pool", None) or ""
    priority = definition.tags.get("dagster/priority")
    return f"{pool} priority {priority}".strip() if priority else pool


def test_the_whole_graph_matches_its_snapshot(snapshot):
    from pipelines.definitions import defs

    assert graph_snapshot(defs) == snapshot


def test_a_check_that_disappears_changes_the_snapshot():
    """Not a subset test: the same code location without one blocking check gives a different snapshot."""
    from pipelines.definitions import defs

    gone = dg.AssetCheckKey(dg.AssetKey(["silver", "telemetry"]), "no_personal_data")
    kept = [c for c in defs.asset_checks or [] if gone not in c.check_keys]
    assert len(kept) == len(defs.asset_checks or []) - 1
    fewer = dg.Definitions(assets=defs.assets, asset_checks=kept, jobs=defs.jobs, schedules=defs.schedules,
                           sensors=defs.sensors, resources=defs.resources)
    full, cut = graph_snapshot(defs), graph_snapshot(fewer)
    assert full["assets"]["silver/telemetry"]["checks"]["no_personal_data"] == "blocking"
    assert "no_personal_data" not in cut["assets"]["silver/telemetry"]["checks"]
    assert full != cut
