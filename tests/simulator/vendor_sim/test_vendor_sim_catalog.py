"""The catalog and ledger of a staged day agree with the files the simulator wrote, and ``landed_records`` reads
a landing zone (Neuron's layout and the simulator's own) by the same key rule."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl

from connectors.protocols import parking
from simulator.vendor_sim.catalog import Credentials, VendorPlatform
from simulator.vendor_sim.ledger import landed_records, record_key, vehicle_objects

DAY = date(2026, 11, 20)  # the day conftest stages
D = DAY.isoformat()
SOURCES = ("telemetry", "access_events", "vehicle_passages", "parking")


def test_every_staged_record_is_in_the_ledger_once_per_key(platform: VendorPlatform) -> None:
    ledger = platform.ledger
    assert ledger.select("source", "community_id", "platform", "key").is_duplicated().sum() == 0
    for source in SOURCES:
        staged = landed_records(platform.store, D, source)
        mine = ledger.filter(pl.col("source") == source)
        assert staged.height > 0
        assert set(staged["key"]) == set(mine["key"]), source
        counts = staged.group_by("key").agg(n=pl.len()).join(mine.select("key", "pushed", "in_history"), on="key")
        if source == "parking":  # backfill.ndjson is history only: a record there may never be pushed
            assert counts.filter(pl.col("n") < pl.col("pushed")).height == 0
            only_backfill = set(staged.filter(pl.col("file").str.ends_with("backfill.ndjson"))["key"]) - set(
                staged.filter(pl.col("file").str.ends_with("pushes.ndjson"))["key"])
            assert set(mine.filter(pl.col("pushed") == 0)["key"]) == only_backfill
            assert only_backfill
        else:  # every occurrence in a push file is one push
            assert counts.filter(pl.col("n") != pl.col("pushed")).height == 0, source
    # what the simulator planted shows: duplicates pushed twice, malformed lines only on the push channel
    assert ledger.filter(pl.col("pushed") > 1).height > 0
    bad = ledger.filter(~pl.col("in_history"))
    assert bad.height > 0 and bad["source"].is_in(["telemetry", "access_events"]).all()
    assert (bad["pushed"] >= 1).all()


def test_receive_times_lie_inside_the_local_day(platform: VendorPlatform) -> None:
    ledger = platform.ledger
    assert ledger["received_ms"].null_count() == 0
    assert ledger["received_ms"].min() >= platform.day_start_ms
    assert ledger["received_ms"].max() < platform.day_end_ms
    # a CTWing message is received at its own timestamp; a ThingsBoard line at its received_ms
    store = platform.store / "telemetry" / D
    for name, field in (("ctwing", "timestamp"), ("thingsboard", "received_ms")):
        path = sorted((store / name).glob("*-0001.ndjson.gz"))[0]
        with gzip.open(path, "rt") as fh:
            line = fh.readline()
        msg = json.loads(line)
        row = ledger.filter(pl.col("key") == record_key("telemetry", msg))
        assert row["received_ms"].item() == msg[field]
    # a vehicle passage at its PassTime (YYYYMMDDhhmmss local, or epoch ms on the subscription feed)
    doc = json.loads(sorted((platform.store / "vehicle_passages" / D / platform.communities[0]).glob("passages-*"))[0]
                     .read_text())
    obj = vehicle_objects(doc)[0]
    got = ledger.filter(pl.col("key") == record_key("vehicle_passages", obj))["received_ms"].item()
    assert got // 1000 == int(pl.Series([obj["PassTime"]]).str.to_datetime(
        "%Y%m%d%H%M%S", time_zone="Asia/Shanghai").dt.epoch("s")[0])


def test_push_stream_is_in_receive_order_and_carries_every_pushed_record(platform: VendorPlatform) -> None:
    plan = platform.pushes
    assert plan["push_ms"].is_sorted()
    carried = (plan.select("source", "community_id", "platform", "keys").explode("keys").rename({"keys": "key"})
               .group_by("source", "community_id", "platform", "key").agg(n=pl.len()))
    ledger = platform.ledger.filter(pl.col("pushed") > 0)
    both = ledger.join(carried, on=["source", "community_id", "platform", "key"], how="full", nulls_equal=True)
    assert both.filter(pl.col("n") != pl.col("pushed")).height == 0
    assert both["n"].null_count() == 0 and both["pushed"].null_count() == 0
    kinds = set(plan["kind"])
    assert kinds == {"ctwing", "iotda", "thingsboard", "isc", "viid", "parking"}
    viid = plan.filter(pl.col("kind") == "viid")
    assert set(viid["target"]) == {"/VIID/MotorVehicles", "/VIID/SubscribeNotifications"}
    for row in viid.rows(named=True):  # every document parses and carries exactly its objects
        objs = vehicle_objects(json.loads(row["body"]))
        assert sorted(record_key("vehicle_passages", o) for o in objs) == sorted(row["keys"])


def test_file_ledger_matches_the_exported_files(platform: VendorPlatform) -> None:
    files = platform.files
    assert set(files["source"]) == {"device_registry", "sites", "property_services", "governance", "parking"}
    assert set(files.filter(pl.col("source").is_in(["device_registry", "sites"]))["community_id"]) == {"district"}
    assert set(files.filter(pl.col("source") == "governance")["community_id"]) == set(platform.communities)
    assert files.filter(pl.col("source") == "parking")["relpath"].str.ends_with("registered_vehicles.csv").all()
    for row in files.rows(named=True):
        data = (platform.store / row["source"] / D / row["relpath"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (row["size"], row["sha256"])


def test_credentials_are_deterministic_by_seed(platform: VendorPlatform) -> None:
    a = platform.config("http://127.0.0.1:1")
    b = Credentials.derive(7, platform.communities)
    assert a.ctwing_secret == b.ctwing_secret and a.communities[0] == b.communities[platform.communities[0]]
    assert Credentials.derive(8, platform.communities).ctwing_secret != a.ctwing_secret
    for c in a.communities:
        assert len(c.viid_device_id) == 20 and c.viid_device_id.isdigit()
    assert len({c.viid_device_id for c in a.communities}) == len(a.communities)
    assert set(a.push_tokens) == {"ctwing", "iotda", "isc"}


def test_restaging_reads_the_cached_catalog(platform: VendorPlatform, vendor_workdir: Path) -> None:
    again = VendorPlatform.stage(vendor_workdir, DAY, communities=2, seed=7)
    assert again.ledger.drop("dropped").equals(platform.ledger.drop("dropped"))
    assert again.pushes.height == platform.pushes.height


def test_worker_processes_build_the_same_catalog(platform: VendorPlatform, tmp_path: Path, monkeypatch) -> None:
    """The scan of a big day runs in worker processes, and its history is de-duplicated in buckets of keys (one
    aggregate holding every record text ran out of 10 GB at 600 communities): same ledger, history and push plan
    as in-process and in one bucket."""
    import simulator.vendor_sim.catalog as catalog

    monkeypatch.setattr(catalog, "HISTORY_BUCKET_BYTES", 64 << 10)
    assert sum(f.stat().st_size for f in (platform.catalog_dir.parent / "platform_store").rglob("*") if f.is_file()
               ) > 4 * (64 << 10)  # several buckets
    shutil.copytree(platform.store, tmp_path / "platform_store")
    other = VendorPlatform.stage(tmp_path, DAY, communities=2, seed=7, workers=2)
    assert other.ledger.drop("dropped").equals(platform.ledger.drop("dropped"))
    for name in ("history", "pushes"):
        assert pl.read_parquet(tmp_path / "catalog" / f"{name}.parquet").equals(
            pl.read_parquet(platform.catalog_dir / f"{name}.parquet")), name
    assert not (tmp_path / "catalog" / "parts").exists()


def test_record_key_rules() -> None:
    tb = {"topic": "v1/gateway/telemetry", "received_ms": 1, "payload": {"b": 1, "a": [1.5, "沪"]}}
    assert record_key("telemetry", tb) == record_key("telemetry", {"a": [1.5, "沪"], "b": 1})
    canonical = json.dumps({"a": [1.5, "沪"], "b": 1}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert record_key("telemetry", tb) == hashlib.sha256(canonical.encode()).hexdigest()
    assert record_key("parking", {"x": 1, "app_id": "a", "sign": "S"}) == record_key("parking", {"x": 1})
    assert record_key("telemetry", b'  {"trunc  \n') == hashlib.sha256(b'{"trunc').hexdigest()
    assert record_key("telemetry", '{"b":1, "a":2}') == record_key("telemetry", {"a": 2, "b": 1})


def test_landed_records_reads_neuron_layout(platform: VendorPlatform, tmp_path: Path) -> None:
    """Pulled and pushed files as docs/connectors.md lays them out: the keys are the ledger's."""
    cid = platform.communities[0]
    ledger = platform.ledger
    landing = tmp_path / "landing"

    def write(rel: str, data: bytes) -> Path:
        path = landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    # telemetry: pulled ThingsBoard lines (payload is the record), pushed CTWing lines with a malformed one
    tb = platform.history("telemetry", "thingsboard").items_at(range(3))
    write(f"telemetry/{D}/thingsboard/pull-{cid}-0000-0100.ndjson", ("\n".join(tb) + "\n").encode())
    bad = ledger.filter(pl.col("platform") == "ctwing", ~pl.col("in_history"))["key"][0]
    bad_line = next(r for r in platform.pushes.filter(pl.col("kind") == "ctwing").rows(named=True)
                    if r["keys"] == [bad])["body"]
    ct = platform.history("telemetry", "ctwing").items_at(range(2))
    write(f"telemetry/{D}/ctwing/push-202611200800-c1.ndjson.gz",
          gzip.compress(("\n".join([*ct, bad_line]) + "\n").encode()))
    # hidden, half-written and temporary files are never read
    write(f"telemetry/{D}/ctwing/.push-202611200801-c1.ndjson.part", (ct[0] + "\n").encode())
    write(f"telemetry/{D}/ctwing/.pull-x.ndjson.abc.tmp", (ct[0] + "\n").encode())
    got = landed_records(landing, D, "telemetry")
    expected = [record_key("telemetry", json.loads(x)) for x in [*tb, *ct]] + [bad]
    assert sorted(got["key"]) == sorted(expected)
    assert set(got["key"]) <= set(ledger["key"])

    # access: pulled items re-wrapped one event an envelope (the item's "ability" back into the envelope)
    items = [json.loads(x) for x in platform.history("access_events", cid).items_at(range(3))]
    lines = [json.dumps({"method": "OnEventNotify", "params": {"ability": it.pop("ability"), "events": [it]}},
                        ensure_ascii=False) for it in items]
    write(f"access_events/{D}/{cid}/pull-0800-0900.ndjson", ("\n".join(lines) + "\n").encode())
    got = landed_records(landing, D, "access_events")
    assert sorted(got["key"]) == sorted(record_key("access_events", it) for it in items)
    assert set(got["key"]) <= set(ledger.filter(pl.col("source") == "access_events")["key"])

    # vehicles: a pulled MotorVehicleListObject and a pushed SubscribeNotificationListObject (with a 0bject typo)
    objs = [json.loads(x) for x in platform.history("vehicle_passages", cid).items_at(range(4))]
    write(f"vehicle_passages/{D}/{cid}/pull-0800-0900.json",
          json.dumps({"MotorVehicleListObject": {"MotorVehicleObject": objs[:2], "TotalNum": 2}}).encode())
    note = {"SubscribeNotificationList0bject": {"SubscribeNotificationObject": [
        {"NotificationID": "1", "MotorVehicleObjectList": {"MotorVehicleObject": objs[2:]}}]}}
    write(f"vehicle_passages/{D}/{cid}/push-202611200800-c1.json", json.dumps(note, ensure_ascii=False).encode())
    got = landed_records(landing, D, "vehicle_passages")
    assert sorted(got["key"]) == sorted(record_key("vehicle_passages", o) for o in objs)

    # parking: pushed records arrive signed; the key is the record's
    c = platform.config("http://x").community(cid)
    recs = [json.loads(x) for x in platform.history("parking", cid).items_at(range(3))]
    signed = [json.dumps(parking.signed(r, c.parking_app_id, c.parking_app_secret), ensure_ascii=False)
              for r in recs]
    write(f"parking/{D}/{cid}/push-202611200800-c1.ndjson", ("\n".join(signed) + "\n").encode())
    write(f"parking/{D}/{cid}/registered_vehicles.csv", b"plate\n")
    got = landed_records(landing, D, "parking")
    assert sorted(got["key"]) == sorted(record_key("parking", r) for r in recs)
    assert set(got["key"]) <= set(ledger.filter(pl.col("source") == "parking")["key"])
