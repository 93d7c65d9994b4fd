"""The reference receiver conforms to its own OpenAPI document (schemathesis against loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.cli import schemathesis as schemathesis_cli

from exports.publishing.batch import Batch
from exports.publishing.http_push import HttpPushPublisher, NeuronAuth
from exports.publishing.signing import sign_request
from exports.receiver import OPENAPI_PATH, RunningReceiver, run_in_thread
from tests.exports import (
    ACCESS_KEY,
    CONSUMER,
    DATASET,
    KEYS,
    SECRET_KEY,
    device_health_frame,
    write_batch,
    write_contracts,
)

PARTITION = "2026-11-21"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    with run_in_thread(tmp_path / "store", write_contracts(tmp_path / "contracts"), KEYS) as running:
        yield running


@pytest.fixture
def published(receiver: RunningReceiver, tmp_path: Path) -> RunningReceiver:
    """A receiver holding one committed batch, so listings are not empty."""
    folder = write_batch(tmp_path / "outbox", device_health_frame(PARTITION), partition=PARTITION)
    HttpPushPublisher(receiver.base_url, ACCESS_KEY, SECRET_KEY, tmp_path / "receipts").publish(
        Batch.from_dir(folder)
    )
    return receiver


def test_openapi_document_is_served_and_covers_every_route(receiver: RunningReceiver) -> None:
    response = requests.get(f"{receiver.base_url}/openapi.yaml")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/yaml"
    assert response.content == OPENAPI_PATH.read_bytes()
    spec = yaml.safe_load(response.text)
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {
        "/healthz",
        "/openapi.yaml",
        "/contracts",
        "/contracts/{consumer}/{dataset}",
        "/contracts/{consumer}/{dataset}/schema.json",
        "/v1/batches",
        "/v1/batches/{batch_id}/files/{file_name}/chunks/{chunk_index}",
        "/v1/batches/{batch_id}/commit",
        "/v1/incidents",
    }
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/"):
                assert "401" in operation["responses"], (method, path)
    assert set(spec["components"]["securitySchemes"]) == {
        "NeuronKey",
        "NeuronDate",
        "NeuronNonce",
        "NeuronContentSha256",
        "NeuronSignature",
    }


def test_unsigned_traffic_conforms_to_the_spec_schemathesis_cli(
    published: RunningReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``schemathesis run --checks all`` (in-process CLI). It cannot sign, so every /v1 call must be a
    documented 401; it also probes undeclared methods (405 + Allow), missing headers and ignored auth."""
    monkeypatch.chdir(tmp_path)  # the CLI keeps a crash cache in ./.schemathesis
    first_request = len(published.server.requests)
    args = ["run", f"{published.base_url}/openapi.yaml", "--url", published.base_url, "--checks", "all"]
    args += ["--phases", "coverage,fuzzing", "--max-examples", "2", "--seed", "1", "--no-shrink"]
    args += ["--request-timeout", "5"]
    result = CliRunner().invoke(schemathesis_cli, args)
    assert result.exit_code == 0, result.output[-8000:]
    probed = published.server.requests[first_request:]
    assert {r.status for r in probed if r.path.startswith("/v1/") and r.method != "OPTIONS"} <= {401, 405}
    assert any(r.status == 405 for r in probed) and any(r.status == 401 for r in probed)


def _exercise(
    operation, mode: GenerationMode, base_url: str, auth: NeuronAuth, seen: dict[str, set[int]]
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=4,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        response = case.call_and_validate(base_url=base_url, auth=auth, timeout=5)
        seen.setdefault(f"{mode.value} {operation.label}", set()).add(response.status_code)

    try:
        check()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # e.g. /healthz has nothing that could be made invalid


def test_signed_traffic_conforms_to_the_spec_schemathesis_python(published: RunningReceiver) -> None:
    """Behind the signature: generated valid and invalid requests, each correctly signed, get documented
    answers. Schema-valid data may still be 404 (unknown batch) or 422 (unknown contract)."""
    raw = yaml.safe_load(requests.get(f"{published.base_url}/openapi.yaml").text)
    raw.pop("security")  # we sign every request ourselves; the CLI test covers the unsigned side
    config = schemathesis.Config.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404", "409", "422"]}}}
    )
    schema = schemathesis.openapi.from_dict(raw, config=config)
    auth = NeuronAuth(ACCESS_KEY, SECRET_KEY)
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _exercise(result.ok(), mode, published.base_url, auth, seen)
    assert seen["positive GET /v1/batches"] == {200}
    assert seen["positive GET /contracts"] == {200}
    for op in ("GET /contracts/{consumer}/{dataset}", "GET /contracts/{consumer}/{dataset}/schema.json"):
        assert seen[f"positive {op}"] <= {200, 404} and seen[f"negative {op}"] <= {400, 404}, seen
    assert seen["negative POST /v1/batches"] <= {400, 422}
    assert 401 not in set().union(*seen.values())


def test_real_protocol_exchanges_match_the_spec(receiver: RunningReceiver, tmp_path: Path) -> None:
    """Every answer of a full publish (and of typical errors) validates against its documented schema."""
    schema = schemathesis.openapi.from_path(str(OPENAPI_PATH))
    captured: list[requests.Response] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: captured.append(response))
    outbox = tmp_path / "outbox"
    publisher = HttpPushPublisher(
        receiver.base_url,
        ACCESS_KEY,
        SECRET_KEY,
        outbox / CONSUMER / "_receipts",
        chunk_bytes=2048,
        session=session,
    )
    folder = write_batch(outbox, device_health_frame(PARTITION), partition=PARTITION)
    publisher.publish(Batch.from_dir(folder))  # 201 init, 200 chunks, 201 commit
    publisher.publish(Batch.from_dir(folder))  # 200 init with the committed receipt
    folder = write_batch(outbox, device_health_frame(PARTITION, seed=2), partition=PARTITION, version=2)
    publisher.publish(Batch.from_dir(folder))  # a correction
    url = f"{receiver.base_url}/v1/batches?consumer={CONSUMER}"
    captured.append(session.get(url, auth=NeuronAuth(ACCESS_KEY, SECRET_KEY)))  # 200 listing
    captured.append(session.get(url))  # 401
    signed = sign_request("GET", url, b"", access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    captured.extend([session.get(url, headers=signed), session.get(url, headers=signed)])  # 200, 409 replay
    captured.append(session.get(url + "&partition=tomorrow", auth=NeuronAuth(ACCESS_KEY, SECRET_KEY)))  # 400
    contract = f"{receiver.base_url}/contracts/{CONSUMER}/{DATASET}"  # the contract documents, unsigned
    captured += [session.get(f"{receiver.base_url}/contracts"), session.get(contract),
                 session.get(f"{contract}/schema.json"), session.get(f"{receiver.base_url}/contracts/x/y")]  # 404

    statuses = set()
    for response in captured:
        path = requests.utils.urlparse(response.url).path
        operation = schema.find_operation_by_path(response.request.method, path)
        assert operation is not None, path
        operation.validate_response(response)
        statuses.add(response.status_code)
    assert statuses == {200, 201, 400, 401, 404, 409}
