"""The ``neuron`` command: simulate a day, run the demo through Dagster, and the operational helpers."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


class CliError(Exception):
    """A bad argument or setting, answered with one line on stderr (exit 2) before anything is written."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _date_arg(text: str) -> str:
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"must be a date as YYYY-MM-DD (e.g. 2026-11-20), got {text!r}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 1 to 65535, got {text!r}")
    return value


def _closed_day(day: str | None, settings) -> str:
    """``day`` (default yesterday), checked to be a closed daily partition: from the first partition to yesterday."""
    yesterday = _yesterday(settings.timezone)
    day = day or yesterday
    if day < settings.partitions_start or day > yesterday:
        raise CliError(f"--day {day} is not a closed day: days run from {settings.partitions_start} "
                       f"(NEURON_PARTITIONS_START) to {yesterday} (yesterday, {settings.timezone})")
    return day


def _district_settings(args: argparse.Namespace):
    """The settings of the district the command names (``Settings.for_named_district``)."""
    from kernel.settings import load_settings

    return load_settings().for_named_district(getattr(args, "district", None))


def _yesterday(tz: str) -> str:
    return (datetime.now(ZoneInfo(tz)).date() - timedelta(days=1)).isoformat()


def prepare_dagster_home(home: Path) -> Path:
    """``home`` with the local instance config (copied once from deploy/dagster.local.yaml) and its storage
    created, under a file lock: two runs starting together on a fresh instance would otherwise race on the
    storage migration (``UNIQUE constraint failed: alembic_version``). Each call also gives Neuron's pools their
    limits (``pipelines.pools``: one warehouse writer, ``NEURON_INGEST_SLOTS`` parses) unless an operator set them."""
    import fcntl

    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".init.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cfg = home / "dagster.yaml"
        if not cfg.exists():
            tmp = home / f".dagster.yaml.{os.getpid()}"
            shutil.copy(DEPLOY / "dagster.local.yaml", tmp)
            os.replace(tmp, cfg)
        import dagster as dg

        from kernel.settings import load_settings
        from pipelines.pools import apply_pool_limits

        with dg.DagsterInstance.from_config(str(home)) as instance:
            if not (home / ".initialised").exists():
                instance.get_runs(limit=1)  # creates run, event-log and schedule storage
                instance.all_instigator_state()
                (home / ".initialised").touch()
            apply_pool_limits(instance, load_settings())
    return home


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulator.district import simulate_day
    from simulator.telemetry import FaultRates

    s = _district_settings(args)
    day = _closed_day(args.day, s)
    t0 = time.monotonic()
    res = simulate_day(s.landing_dir, date.fromisoformat(day), args.communities, args.seed,
                       FaultRates.none() if args.no_faults else FaultRates())
    t = res.telemetry
    print(f"simulated {day}: {t.communities} communities, {t.devices} devices, {t.files} files, {t.lines} lines, "
          f"{t.readings} readings in {time.monotonic() - t0:.1f}s -> {s.landing_dir}")
    return 0


def run_day(day: str, progress: bool = False, district: str = "") -> object:
    """Materialise every asset for ``day`` (of ``district`` when the deployment has districts) in a real Dagster
    run recorded in $DAGSTER_HOME's instance.

    First the instance is cleared of what a killed run left (a run still STARTED, pool slots it held), then
    the run waits while another live run holds the day: runs of one day are serialised for every entry point.
    """
    import dagster as dg

    from kernel.partitions import partition_key, partitions_def
    from kernel.runs import bury, wait_for_day
    from kernel.settings import load_settings
    from pipelines.definitions import build_definitions, defs
    from pipelines.progress import RunProgress

    root = load_settings()
    key = partition_key(root, day, district)
    with dg.DagsterInstance.get() as instance:
        burial = bury(instance)
        if burial.runs_failed or burial.slots_freed:
            print(f"marked {len(burial.runs_failed)} dead run(s) failed, freed {burial.slots_freed} pool slot(s)")
        wait_for_day(instance, day, root.for_district(district).leases_dir, district=district)
        job = defs.resolve_job_def("daily_job")
        if job.partitions_def != partitions_def(root):  # built at import under other settings (NEURON_DISTRICTS)
            job = build_definitions(root).resolve_job_def("daily_job")
        run_id = str(uuid.uuid4())
        # console logging at ERROR keeps the terminal readable (progress names failures); every event is still
        # in the instance (UI)
        with RunProgress(instance, run_id) if progress else nullcontext():
            return job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False, run_id=run_id,
                                          run_config={"loggers": {"console": {"config": {
                                              "log_level": "ERROR" if progress else "WARNING"}}}})


def summary(day: str, wire: bool = False) -> str:

    from kernel.lake import open_lake
    from kernel.settings import load_settings
    from warehouse.catalog import connect, day_rows

    s = load_settings()
    con = connect(s.warehouse_path, open_lake(s))
    lines = [f"Neuron demo for {day}", "", "Outputs:",
             f"  landing   {s.landing_dir}", f"  lake      {s.lake_uri or s.lake_dir}", f"  warehouse {s.warehouse_path}",
             f"  outbox    {s.outbox_dir}", f"  dagster   {s.dagster_home}", "", "Rows per layer:"]
    rows = day_rows(con, day)
    for key in sorted(k for k in rows if k.split("/")[0] in ("bronze", "quarantine", "silver", "gold", "audit")):
        lines.append(f"  {key.replace('/', '.'):<40} {rows[key]:>10,}")
    lines += ["", "Quarantined records by reason:"]
    for (view,) in con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'quarantine' "
                               "ORDER BY 1").fetchall():
        for reason, n in con.execute(f"SELECT reason, count(*) FROM quarantine.{view} WHERE date = DATE '{day}' "
                                     "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall():
            lines.append(f"  {view + ': ' + reason:<48} {n:>10,}")
    lines += ["", "Row accounting (landed = accepted + quarantined + duplicates):"]
    acc = con.execute(f"SELECT source, landed, accepted, quarantined, duplicates_in_file + duplicates_cross_file, "
                      f"balanced FROM audit.row_accounting WHERE date = DATE '{day}' ORDER BY source").fetchall()
    for source, landed, accepted, quarantined, dups, balanced in acc:
        lines.append(f"  {source:<20} {landed:>10,} = {accepted:,} + {quarantined:,} + {dups:,} "
                     f"-> {'balanced' if balanced else 'NOT BALANCED'}")
    if wire:
        from connectors.reconcile import day_reconciliations

        lines += ["", "Reconciliation (push against the platforms' history; pushed + reconciled = platform total):"]
        recs = day_reconciliations(s.landing_dir, day)
        by_source: dict[str, list] = {}
        for r in recs:
            by_source.setdefault(r.source, []).append(r)
        for source, rs in sorted(by_source.items()):
            pushed = sum(r.pushed - r.pushed_not_in_history for r in rs)
            reconciled, total = sum(r.reconciled for r in rs), sum(r.platform_total for r in rs)
            bad = [r.scope for r in rs if not r.balanced]
            lines.append(f"  {source:<20} {pushed:>10,} pushed + {reconciled:,} reconciled by pull = {total:,} "
                         f"platform total over {len(rs)} scope(s) -> "
                         + ("balanced" if not bad else f"NOT BALANCED in {', '.join(bad)}"))
        if not recs:
            lines.append("  nothing reconciled (no pull ran)")
    lines += ["", "Completeness (audit.completeness: sources short of what the registries expect):"]
    short = con.execute(f"SELECT source, community_id, status, reason FROM audit.completeness "
                        f"WHERE date = DATE '{day}' AND status IN ('missing', 'partial') ORDER BY 1, 2").fetchall()
    for source, community, status, reason in short:
        lines.append(f"  {source:<20} {community:<14} {status:<8} {reason}")
    if not short:
        lines.append("  every source complete for every community that should deliver it")
    lines += ["", "Exports written:"]
    for consumer, dataset, version, rows, path in con.execute(
            f"SELECT consumer, dataset, version, row_count, path FROM meta.exports WHERE partition = DATE '{day}' "
            "AND is_latest ORDER BY 1, 2").fetchall():
        lines.append(f"  {consumer}/{dataset} v{version}: {rows:,} rows -> {path}")
    con.close()
    # receipts straight from the outbox: pushes run after the warehouse build (which never waits on a receiver)
    receipts = [json.loads(p.read_text(encoding="utf-8")) for p in s.outbox_dir.glob(f"*/_receipts/*/{day}/v*.json")]
    for r in sorted(receipts, key=lambda r: (r["consumer"], r["dataset"], r["version"])):
        lines.append(f"  receipt {r['receipt_id']} from the {r['consumer']} receiver for {r['dataset']} "
                     f"v{r['version']} ({r['publisher']})")
    return "\n".join(lines)


@contextmanager
def demo_receiver(store: Path, consumers: tuple[str, ...] = ("zhilian_putuo", "public_security")):
    """The reference receiver on loopback, with the consumers switched to HTTPS push for this process."""
    import secrets

    from exports.contracts import CONTRACTS_DIR
    from exports.receiver import run_in_thread
    from kernel.settings import export_environment

    access, secret = "neuron-demo", secrets.token_urlsafe(24)
    with run_in_thread(store, CONTRACTS_DIR, {access: secret}) as rx:
        for consumer in consumers:
            prefix = consumer.upper()
            export_environment({f"NEURON_PUBLISHER_{prefix}": "https_push", f"NEURON_{prefix}_URL": rx.base_url,
                                f"NEURON_{prefix}_ACCESS_KEY": access, f"NEURON_{prefix}_SECRET_KEY": secret})
        print(f"reference receiver for {', '.join(consumers)} on {rx.base_url} (store {store})")
        yield rx


def _use_dagster_home(home: Path) -> None:
    from kernel.settings import export_environment

    export_environment({"DAGSTER_HOME": str(prepare_dagster_home(home))})


def cmd_demo(args: argparse.Namespace) -> int:
    from kernel.settings import export_environment, load_settings

    if "NEURON_MODE" not in os.environ:
        export_environment({"NEURON_MODE": "demo", "NEURON_MODE_SET_BY": "demo"})
    s = load_settings()
    if s.districts:
        raise CliError("`neuron demo` runs a one-district deployment: unset NEURON_DISTRICTS (a district's day runs "
                       "through Dagster: the daily job with its district-day partition)")
    day = _closed_day(args.day, s)  # before anything is written
    if s.mode != "production":
        set_by = "set by `neuron demo`" if os.environ.get("NEURON_MODE_SET_BY") == "demo" else "from the environment"
        print(f"{s.mode} mode (NEURON_MODE={s.mode}, {set_by}): simulated data; tokens and cell-key perturbation use "
              "the public demo keys unless NEURON_TOKEN_KEY / NEURON_PERTURBATION_KEY are set. Never run real data "
              "this way.")
    _use_dagster_home(s.dagster_home)
    if args.files and not args.skip_simulate:
        cmd_simulate(argparse.Namespace(day=day, communities=args.communities, seed=args.seed,
                                        no_faults=args.no_faults))
    t0 = time.monotonic()
    with ExitStack() as stack:
        if not args.files and not args.skip_simulate:
            from pipelines.wire import WireError, vendor_wire

            # the vendor config of this demo only: a later `neuron ui` must not pull from a simulator that is gone
            export_environment({"NEURON_VENDORS_FILE": str(s.connectors_dir / "vendors-demo.yaml")})
            try:
                stack.enter_context(vendor_wire(load_settings(), day, args.communities, args.seed,
                                                data_faults=not args.no_faults))
            except WireError as exc:
                raise CliError(str(exc)) from None
            t0 = time.monotonic()
        if args.receiver:
            stack.enter_context(demo_receiver(s.data_dir / "receiver"))
        result = run_day(day, progress=True)
        incidents = demo_incidents(day, publish=args.receiver) if result.success else []
    print(f"dagster run {result.run_id} for {day}: {'SUCCESS' if result.success else 'FAILURE'} "
          f"in {time.monotonic() - t0:.1f}s")
    if not result.success:
        for ev in result.all_events:
            if ev.event_type_value == "STEP_FAILURE":
                print(f"  step {ev.step_key} failed: {ev.event_specific_data.error.message.strip()}")
        return 1
    print(summary(day, wire=not args.files))
    print("\n".join(incidents))
    return 0


def demo_incidents(day: str, *, publish: bool) -> list[str]:
    """What incident_sensor and incident_job do beside the daemon, done once for the demo's day: the day's
    incidents (detected by the daily check already) pushed to the receiver; lines for the summary."""
    from assets.incidents.engine import IncidentEngine
    from exports.incidents import publish_pending
    from kernel.settings import load_settings

    s = load_settings()
    engine = IncidentEngine(s)
    engine.catch_up()
    inc = engine.day_incidents(day)
    by_type = ", ".join(f"{t} {n}" for t, n in sorted(inc.group_by("event_type").len().iter_rows())) or "none"
    lines = ["", f"Incidents for 智能公安 (docs/incidents.md): {inc.height} on {day} ({by_type}); "
                 f"{int(inc['late'].sum() or 0)} late"]
    if publish and not s.endpoint("public_security").missing():
        sent = publish_pending(engine, s, limit=100_000)
        lines.append(f"  {sent.sent} incident versions pushed to the public_security receiver, "
                     f"{sent.pending} pending" + (f" ({sent.error})" if sent.error else ""))
    return lines


def cmd_ui(args: argparse.Namespace) -> int:
    import signal
    import subprocess
    from urllib.parse import urlsplit

    from kernel.settings import load_settings
    from pipelines.docs_server import run_in_thread
    from quality.gx_checks import data_docs_site

    s = load_settings()
    docs = urlsplit(s.data_docs_url)
    if docs.port == args.port:
        raise CliError(f"--port {args.port} is the Data Docs port of NEURON_DATA_DOCS_URL ({s.data_docs_url})")
    _use_dagster_home(s.dagster_home)
    root = Path(__file__).resolve().parent.parent
    site = data_docs_site(s)
    site.mkdir(parents=True, exist_ok=True)
    dagster = Path(sys.executable).with_name("dagster")
    with run_in_thread(site, docs.hostname or "127.0.0.1", docs.port or 80) as server:
        print(f"Data Docs on {server.base_url} (the check pages link there); Dagster UI on http://127.0.0.1:{args.port}")
        proc = subprocess.Popen([str(dagster if dagster.exists() else "dagster"), "dev", "-w",
                                 str(root / "workspace.yaml"), "-p", str(args.port)])
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
        return proc.wait()


def cmd_warehouse_relink(args: argparse.Namespace) -> int:
    from warehouse.catalog import internal_path
    from warehouse.relink import RelinkError, relink

    s = _district_settings(args)
    if s.lake_uri and not args.lake:
        raise CliError(f"the lake is on object storage ({s.lake_uri}): its views name each file of the snapshot "
                       "they were built on; rebuild the warehouse (materialise warehouse/neuron_duckdb) instead")
    path = args.warehouse or s.warehouse_path
    lake = args.lake or s.lake_dir
    if not path.is_file():
        raise CliError(f"no warehouse file at {path}")
    if not lake.is_dir():
        raise CliError(f"no lake folder at {lake}")
    try:
        for target in (path, internal_path(path)):
            if target.is_file():
                views = relink(target, lake)
                print(f"relinked {len(views)} views of {target} to {lake}")
    except RelinkError as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_warehouse_sql(args: argparse.Namespace) -> int:
    """Run one query on the warehouse (read-only) and print the result: works whichever lake it reads, on disk or
    on object storage (where a plain DuckDB client cannot resolve the views' ``s3://`` files)."""
    import duckdb

    from kernel.lake import open_lake
    from warehouse.catalog import connect, internal_path

    s = _district_settings(args)
    path = internal_path(s.warehouse_path) if args.internal else s.warehouse_path
    if not path.is_file():
        raise CliError(f"no warehouse file at {path}: run the daily job (or `neuron demo`) first")
    try:
        with connect(path, open_lake(s)) as con:
            rel = con.sql(args.query)
            if rel is None:
                raise CliError("the warehouse is read-only here: give a query that returns rows")
            rel.show(max_rows=args.max_rows, max_width=200)
    except duckdb.Error as exc:
        raise CliError(f"query failed: {str(exc).splitlines()[0]}") from None
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    import dagster as dg

    from kernel.settings import load_settings
    from pipelines.doctor import diagnose, render

    s = load_settings()
    if s.mode == "production" and not (s.dagster_home / "dagster.yaml").is_file():
        # the local SQLite config would be copied in, and the doctor would report on an empty instance of its own
        raise CliError(f"no dagster.yaml in DAGSTER_HOME ({s.dagster_home}): in production the doctor reads the "
                       "deployment's instance (deploy/dagster.yaml); mount it there")
    _use_dagster_home(s.dagster_home)
    with dg.DagsterInstance.get() as instance:
        report = diagnose(instance, s, repair=args.repair)
    print(render(report, args.repair))
    return 0 if report.healthy else 1


def cmd_pools(args: argparse.Namespace) -> int:
    """Give Neuron's pools their limits on the instance in $DAGSTER_HOME (pipelines/pools.py) and print them: on
    a production instance once after a deployment or a change of NEURON_INGEST_SLOTS; local instances get it
    whenever ``neuron`` prepares them."""
    import dagster as dg

    from kernel.settings import load_settings
    from pipelines.pools import apply_pool_limits, wanted_limits

    s = load_settings()
    if s.mode == "production" and not (s.dagster_home / "dagster.yaml").is_file():
        raise CliError(f"no dagster.yaml in DAGSTER_HOME ({s.dagster_home}): in production the pools are the "
                       "deployment's instance's (deploy/dagster.yaml); mount it there")
    _use_dagster_home(s.dagster_home)  # prepares the instance, which applies the limits
    with dg.DagsterInstance.get() as instance:
        report = apply_pool_limits(instance, s)  # again: idempotent, and says whose each limit is
    for pool, wanted in wanted_limits(s).items():
        if pool in report.kept:
            print(f"{pool}: {report.kept[pool]} (set by an operator; Neuron's would be {wanted})")
        else:
            print(f"{pool}: {wanted}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from pipelines.retention import purge_landing

    s = _district_settings(args)
    today = datetime.now(ZoneInfo(s.timezone)).date()
    report = purge_landing(s.landing_dir, s.outbox_dir, today, args.days or s.landing_retention_days, args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(report.removed)} landing folders ({report.bytes_freed / 2**20:.1f} MiB); "
          f"{len(report.kept_unpublished)} past retention but unpublished (kept)")
    for item in report.removed:
        print(f"  {verb}: {item}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="neuron", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write one simulated district-day into the landing zone")
    demo = sub.add_parser("demo", help="simulate a day on the vendor platforms, receive it by push and pull, and "
                                       "materialise every asset for it through Dagster")
    for p in (sim, demo):
        p.add_argument("--day", type=_date_arg, help="YYYY-MM-DD, a closed day (default: yesterday, local time)")
        p.add_argument("--communities", type=_positive_int, default=6)
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--no-faults", action="store_true", help="simulate clean vendor data")
    sim.set_defaults(func=cmd_simulate)
    district_help = "the district (one of NEURON_DISTRICTS; required when it is set)"
    sim.add_argument("--district", help=district_help)
    demo.add_argument("--skip-simulate", action="store_true", help="run on what is already in the landing zone")
    demo.add_argument("--files", action="store_true",
                      help="write the day's files straight into the landing zone (as `neuron simulate`) instead "
                           "of serving it on the vendor-platform simulator and receiving it by push and pull")
    demo.add_argument("--no-receiver", dest="receiver", action="store_false",
                      help="do not push the batches to a loopback reference receiver")
    demo.set_defaults(func=cmd_demo)

    ui = sub.add_parser("ui", help="start dagster dev on workspace.yaml with $DAGSTER_HOME under the data dir")
    ui.add_argument("--port", type=_port, default=3000)
    ui.set_defaults(func=cmd_ui)

    doctor = sub.add_parser("doctor", help="list what a killed run left behind (dead runs, held pool slots, "
                                           "temporary files); --repair clears it")
    doctor.add_argument("--repair", action="store_true")
    doctor.set_defaults(func=cmd_doctor)

    pools = sub.add_parser("pools", help="give Neuron's concurrency pools their limits on the instance (one "
                                         "warehouse writer, NEURON_INGEST_SLOTS parses) unless an operator set them")
    pools.set_defaults(func=cmd_pools)

    purge = sub.add_parser("purge-landing", help="delete published landing day folders past retention")
    purge.add_argument("--days", type=_positive_int, help="retention window (default NEURON_LANDING_RETENTION_DAYS or 30)")
    purge.add_argument("--dry-run", action="store_true")
    purge.add_argument("--district", help=district_help)
    purge.set_defaults(func=cmd_purge)

    wh = sub.add_parser("warehouse", help="warehouse maintenance: `relink` points a copied or moved warehouse "
                                          "(and its internal twin) at a lake folder")
    wh_sub = wh.add_subparsers(dest="action", required=True)
    relink = wh_sub.add_parser("relink", help="rewrite the warehouse's views to read LAKE_DIR (default: the lake "
                                              "of the settings)")
    relink.add_argument("--warehouse", type=Path, help="the .duckdb file (default NEURON_WAREHOUSE_PATH)")
    relink.add_argument("--lake", type=Path, help="the lake folder (default NEURON_LAKE_DIR)")
    relink.add_argument("--district", help=district_help)
    relink.set_defaults(func=cmd_warehouse_relink)
    whsql = wh_sub.add_parser("sql", help="run one read-only query on the warehouse and print the rows (on either "
                                          "lake: on object storage a plain DuckDB client cannot read the views)")
    whsql.add_argument("query", help="SQL, e.g. \"SELECT count(*) FROM gold.access_daily\"")
    whsql.add_argument("--internal", action="store_true", help="the data team's file (neuron_internal.duckdb)")
    whsql.add_argument("--max-rows", type=_positive_int, default=40)
    whsql.add_argument("--district", help=district_help)
    whsql.set_defaults(func=cmd_warehouse_sql)

    rx = sub.add_parser("receiver", add_help=False,
                        help="run the reference receiver (the district side of HTTPS push); --help for options")
    rx.set_defaults(func=None)
    collect = sub.add_parser("collect", add_help=False,
                             help="run the push collector (vendor webhooks, GA/T 1400, MQTT); --help for options")
    collect.set_defaults(func=None)
    vsim = sub.add_parser("vendor-sim", add_help=False,
                          help="serve a simulated district-day through the vendors' protocols on loopback (pull "
                               "endpoints, pushes to a collector); --help for options")
    vsim.set_defaults(func=None)

    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "receiver":
        from exports.receiver import main as receiver_main

        return receiver_main(argv[1:])
    if argv and argv[0] == "collect":
        from connectors.collector.cli import main as collect_main

        return collect_main(argv[1:])
    if argv and argv[0] == "vendor-sim":
        from simulator.vendor_sim.cli import main as vendor_sim_main

        return vendor_sim_main(argv[1:])
    args = parser.parse_args(argv)
    from kernel.settings import SettingsError

    try:
        code = args.func(args)
    except (CliError, SettingsError) as exc:
        sys.stderr.write(f"neuron {args.command}: error: {exc}\n")
        return 2
    if args.command == "demo":
        # skip interpreter teardown: duckdb's nanobind bindings print "leaked" noise under the summary
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
