"""The protocol over real HTTP between separate processes: the hub (`kiban linkage serve`), an
outside agency's provider (`python -m kiban.linkage.provider`) and the requester (this test)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from linkage_kit import BASIS, INSURER, ITEM, JUMIN_A, PROCEDURE, build, new_agency

from kiban.core.clock import SystemClock
from kiban.linkage import merkle, protocol
from kiban.linkage.client import HttpClient
from kiban_testkit import LG_A, World

RECORDS_PROVIDER = "JP/GOV/nenkin/kiroku"  # the pension service's records subsystem, an outside provider
RECORDS_ITEM = "nenkin/kanyu-kiroku"
SECRET = "linkage-test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no answer from {url}")


@contextmanager
def running(args: list[str], env: dict[str, str], health: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(health, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"KIBAN_TEST_CA_DIR": str(tmp_path / "ca"), "KIBAN_LINKAGE_SECRET": SECRET}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def test_hub_and_provider_as_separate_processes(env: dict[str, str], sqlite_world: World,
                                                 tmp_path: Path) -> None:
    world = sqlite_world
    setup = build(world)
    hub = setup.hub
    provider = new_agency(hub, RECORDS_PROVIDER, "日本年金機構 記録")
    items = {RECORDS_ITEM: "年金加入記録"}
    hub.register_member(RECORDS_PROVIDER, "agency", "日本年金機構 記録", certificate=provider.certificate,
                        endpoint="http://127.0.0.1:9/exchange", items=items)
    hub.publish_permissions(world.platform, [
        *hub.permissions()["rules"],
        {"requester": INSURER, "provider": RECORDS_PROVIDER, "item": RECORDS_ITEM, "procedure": PROCEDURE,
         "legal_basis": BASIS}])
    provider_code = hub.enrol(RECORDS_PROVIDER, LG_A, setup.resident_id)
    hub.enrol(RECORDS_PROVIDER, LG_A, setup.spouse_id)  # known to the hub, not to the provider's records
    spouse_code = hub.enrol(INSURER, LG_A, setup.spouse_id)
    config = tmp_path / "provider.json"
    config.write_text(json.dumps({
        "member": RECORDS_PROVIDER, "key_pem": protocol.key_pem(provider.key).decode(),
        "hub_certificate": hub.hub_certificate, "port_file": str(tmp_path / "provider.port"),
        "records": {provider_code: {"periods": [{"from": "2002-04", "to": "2026-03", "kind": "厚生年金"}]}}}))
    child_env = {**os.environ, **env, "KIBAN_MODE": "test",
                 "KIBAN_DATABASE_URL": world.backend.settings.database_url}
    hub_port = free_port()
    with _provider(config, child_env, tmp_path) as provider_url:
        hub.register_member(RECORDS_PROVIDER, "agency", "日本年金機構 記録", certificate=provider.certificate,
                            endpoint=f"{provider_url}/exchange", items=items)
        kiban = str(Path(sys.executable).parent / "kiban")
        with running([kiban, "linkage", "serve", "--port", str(hub_port)], child_env,
                     f"http://127.0.0.1:{hub_port}/healthz"):
            base = f"http://127.0.0.1:{hub_port}"
            insurer = HttpClient(base, INSURER, setup.insurer.key, hub.hub_certificate, clock=SystemClock())

            # An outside provider, over HTTP, through the hub process.
            result = insurer.exchange(RECORDS_PROVIDER, RECORDS_ITEM, PROCEDURE, setup.insurer_code)
            assert result.ok, result.response
            assert result.data["periods"][0]["kind"] == "厚生年金"
            # The municipality's registry, served inside the hub process.
            household = insurer.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code)
            assert household.ok and len(household.data["members"]) == 2
            # The provider holds no data for the spouse: a signed not-found, logged.
            missing = insurer.exchange(RECORDS_PROVIDER, RECORDS_ITEM, PROCEDURE, spouse_code)
            assert (missing.status, missing.error) == (404, "not-found")

            # Refused over the wire, none reaching the provider.
            out = protocol.build_request(INSURER, setup.insurer.key, RECORDS_PROVIDER, RECORDS_ITEM, PROCEDURE,
                                         setup.insurer_code, SystemClock().now())
            forged = {**out.headers, protocol.SIGNATURE_HEADER: protocol.sign(setup.pension.key, out.body)}
            bad = httpx.post(f"{base}/api/v1/linkage/exchange", content=out.body, headers=forged)
            assert (bad.status_code, bad.headers["x-kiban-error"]) == (401, "bad-signature")
            assert httpx.post(f"{base}/api/v1/linkage/exchange", content=out.body,
                              headers=out.headers).status_code == 200
            again = httpx.post(f"{base}/api/v1/linkage/exchange", content=out.body, headers=out.headers)
            assert (again.status_code, again.headers["x-kiban-error"]) == (409, "replayed")
            other = insurer.exchange(RECORDS_PROVIDER, RECORDS_ITEM, "kenpo-other", setup.insurer_code)
            assert other.error == "not-permitted"
            unsigned = httpx.post(f"{base}/api/v1/linkage/exchange", content=out.body,
                                  headers={protocol.CLIENT_HEADER: INSURER})
            assert unsigned.headers["x-kiban-error"] == "unsigned"

            # The provider's own record: three requests reached it, each with its own code only.
            received = httpx.get(f"{provider_url}/received").json()
            assert len(received) == 3
            assert {r["subject"] for r in received} == {provider_code, hub.enrol(RECORDS_PROVIDER, LG_A,
                                                                                 setup.spouse_id)}
            assert all(r["legal_basis"] == BASIS and r["client"] == INSURER for r in received)
            assert setup.insurer_code not in json.dumps(received)

            # The hub process's log: a signed head and a proof for the first exchange.
            sth = httpx.get(f"{base}/api/v1/linkage/ct/v1/get-sth").json()
            assert protocol.verify_tree_head(protocol.certificate_key(hub.hub_certificate), sth)
            assert sth["tree_size"] == 8
            first = httpx.get(f"{base}/api/v1/linkage/ct/v1/get-entries", params={"start": result.leaf_index,
                                                                                  "end": result.leaf_index}).json()
            leaf = merkle.leaf_hash(base64.b64decode(first["entries"][0]["leaf_input"]))
            proof = httpx.get(f"{base}/api/v1/linkage/ct/v1/get-proof-by-hash", params={
                "hash": base64.b64encode(leaf).decode(), "tree_size": sth["tree_size"]}).json()
            assert merkle.verify_inclusion(proof["leaf_index"], sth["tree_size"], leaf,
                                           [base64.b64decode(p) for p in proof["audit_path"]],
                                           base64.b64decode(sth["sha256_root_hash"]))


@contextmanager
def _provider(config: Path, env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    process = subprocess.Popen([sys.executable, "-m", "kiban.linkage.provider", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port_file = tmp_path / "provider.port"
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the provider did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        wait_for(f"{url}/healthz", process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
