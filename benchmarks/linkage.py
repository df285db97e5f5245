"""Benchmark of the exchange hub (issue 6): exchanges per second and p50/p99 latency over
loopback, with the hub (`kiban linkage serve`, one uvicorn worker, SQLite WAL) and an outside
agency's provider (`python -m kiban.linkage.provider`) as separate processes, and this process
as the requester; every exchange signed by the requester, verified by the hub, authorised
against the permission table, its code translated, forwarded signed to the provider, the
provider's signed reply verified, appended to the Merkle log and answered signed (the client
checks the hub's and the provider's signatures). Baseline in the same run: the same requests
sent to the provider directly (signed, verified, answered signed; no hub).
Targets: at least 1,000 exchanges/s and p99 at most 50 ms on this 2-core machine. The server
processes' CPU time per exchange (from /proc) is printed too: on a shared, busy machine it is
steadier than wall-clock rates.

    .venv/bin/python benchmarks/linkage.py [--requests 2000] [--concurrency 16] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kiban.core.clock import SystemClock
from kiban.identity import testca
from kiban.linkage import model, protocol
from kiban.platform import settings as settings_module
from kiban.platform.db import Database
from kiban.platform.migrate import upgrade
from kiban.web.context import Services

SECRET = "linkage-benchmark-secret-0123456789abcdef"
LG = "131016"
REQUESTER = "JP/GOV/kyokai-kenpo/kyufu"
PROVIDER = "JP/GOV/nenkin/kiroku"
ITEM = "nenkin/kanyu-kiroku"
PROCEDURE = "kenpo-fuyo-nintei"
PEOPLE = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"no answer from {url}")


def prepare(tmp: Path) -> dict[str, Any]:
    """A SQLite database with one municipality, PEOPLE residents, the requester and the provider
    as members, a permission table and every code enrolled."""
    env = {"KIBAN_DATABASE_URL": f"sqlite:///{tmp / 'kiban.db'}", "KIBAN_MODE": "test",
           "KIBAN_TEST_CA_DIR": str(tmp / "ca"), "KIBAN_LINKAGE_SECRET": SECRET}
    os.environ.update(env)
    settings = settings_module.load(env)
    upgrade(settings)
    clock = SystemClock()
    svc = Services.build(settings, clock, Database(settings))
    svc.municipalities.create(LG, "千代田区", "東京都", clock.now())
    svc.municipalities.set_towns(LG, [{"code": "0001001", "name": "本町一丁目"}], clock.now(), "bench")
    clerk = svc.accounts.create("bench-clerk", "bench-password-123", "窓口", ["counter_clerk"], LG, clock.now())
    admin = svc.accounts.create("bench-admin", "bench-password-123", "基盤", ["platform_admin"], None, clock.now())
    residents = []
    for i in range(PEOPLE // 2):
        moved = svc.registry.move_in(clerk, LG, {
            "origin": "domestic", "occurred_on": clock.now().date().isoformat(),
            "notified_on": clock.now().date().isoformat(), "previous_address": "大阪府大阪市北区梅田1-1",
            "address": {"town_code": "0001001", "banchi": f"{i + 1}番地"},
            "members": [{"family_name": "山田", "given_name": "太郎", "family_kana": "ヤマダ", "given_kana": "タロウ",
                         "birth_date": "1980-05-05", "sex": "1", "relationship": "世帯主"},
                        {"family_name": "山田", "given_name": "花子", "family_kana": "ヤマダ", "given_kana": "ハナコ",
                         "birth_date": "1982-07-07", "sex": "2", "relationship": "妻"}]})
        residents += moved["resident_ids"]
    hub = svc.linkage
    hub.register_municipality(LG, "千代田区")  # also creates the test CA
    ca = testca.TestCA(tmp / "ca")
    keys = {}
    for member in (REQUESTER, PROVIDER):
        key = ed25519.Ed25519PrivateKey.generate()
        cert = ca.issue_agency_certificate(member, member, key.public_key(), clock.now())
        keys[member] = (key, cert.public_bytes(serialization.Encoding.PEM).decode())
    hub.register_member(REQUESTER, "agency", "全国健康保険協会", certificate=keys[REQUESTER][1])
    hub.register_member(PROVIDER, "agency", "日本年金機構", certificate=keys[PROVIDER][1],
                        endpoint="http://127.0.0.1:9/exchange", items={ITEM: "年金加入記録"})
    hub.publish_permissions(admin, [{"requester": REQUESTER, "provider": PROVIDER, "item": ITEM,
                                     "procedure": PROCEDURE, "legal_basis": "番号法 第19条第8号"}])
    requester_codes = [hub.enrol(REQUESTER, LG, r) for r in residents]
    provider_codes = [hub.enrol(PROVIDER, LG, r) for r in residents]
    hub_certificate = hub.hub_certificate
    svc.db.dispose()
    return {"env": env, "keys": keys, "requester_codes": requester_codes, "provider_codes": provider_codes,
            "hub_certificate": hub_certificate}


async def load(send: Any, total: int, concurrency: int) -> tuple[float, list[float]]:
    """Closed loop: `concurrency` workers, each sending its next request when the last is answered."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            started = time.perf_counter()
            await send(n)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), steadier than wall time on a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_hub(base: str, data: dict[str, Any], total: int, concurrency: int) -> tuple[float, list[float]]:
    key = data["keys"][REQUESTER][0]
    hub_key = protocol.certificate_key(data["hub_certificate"])
    provider_key = protocol.certificate_key(data["keys"][PROVIDER][1])
    codes = data["requester_codes"]
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:
        async def send(n: int) -> None:
            out = protocol.build_request(REQUESTER, key, PROVIDER, ITEM, PROCEDURE, codes[n % len(codes)],
                                         datetime.now(UTC))
            response = await client.post(f"{base}/api/v1/linkage/exchange", content=out.body, headers=out.headers)
            answer = protocol.open_response(response.content, dict(response.headers), hub_key, out.body)
            if answer["status"] != "ok" or not protocol.verify(
                    provider_key, answer["provider_response"].encode(), answer["provider_signature"]):
                raise SystemExit(f"exchange failed: {answer}")
        return await load(send, total, concurrency)


async def run_direct(url: str, data: dict[str, Any], total: int, concurrency: int) -> tuple[float, list[float]]:
    """The same request, signed by the sender, to the provider itself; its signed reply checked."""
    hub_key = protocol.derived_key(SECRET.encode(), protocol.HUB_MEMBER)  # the sender the provider trusts
    provider_key = protocol.certificate_key(data["keys"][PROVIDER][1])
    codes = data["provider_codes"]
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:
        async def send(n: int) -> None:
            request = model.Request(str(uuid.uuid4()), datetime.now(UTC), REQUESTER, PROVIDER, ITEM, PROCEDURE,
                                    "A" * 24, {})
            body = protocol.forwarded_body(request, "番号法 第19条第8号", codes[n % len(codes)], datetime.now(UTC))
            response = await client.post(url, content=body, headers={
                protocol.CLIENT_HEADER: protocol.HUB_MEMBER, protocol.SIGNATURE_HEADER: protocol.sign(hub_key, body),
                "Content-Type": "application/json"})
            if not protocol.verify(provider_key, response.content,
                                   response.headers.get(protocol.SIGNATURE_HEADER, "")):
                raise SystemExit("provider reply does not verify")
            if json.loads(response.content)["status"] != "ok":
                raise SystemExit("provider has no data")
        return await load(send, total, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        data = prepare(tmp)
        env = {**os.environ, **data["env"]}
        config = tmp / "provider.json"
        config.write_text(json.dumps({
            "member": PROVIDER, "key_pem": protocol.key_pem(data["keys"][PROVIDER][0]).decode(),
            "hub_certificate": data["hub_certificate"], "port_file": str(tmp / "provider.port"),
            "records": {c: {"periods": [{"from": "2002-04", "to": "2026-03", "kind": "厚生年金"}]}
                        for c in data["provider_codes"]}}))
        provider = subprocess.Popen([sys.executable, "-m", "kiban.linkage.provider", str(config)], env=env,
                                    stderr=subprocess.PIPE)
        hub_process = None
        try:
            while not (tmp / "provider.port").exists() or not (tmp / "provider.port").read_text():
                time.sleep(0.05)
            provider_url = f"http://127.0.0.1:{(tmp / 'provider.port').read_text()}"
            wait_for(f"{provider_url}/healthz", provider)
            # The provider's real endpoint, now that its port is known.
            svc = Services.build(settings_module.load(data["env"]), SystemClock())
            svc.linkage.register_member(PROVIDER, "agency", "日本年金機構", certificate=data["keys"][PROVIDER][1],
                                        endpoint=f"{provider_url}/exchange", items={ITEM: "年金加入記録"})
            svc.db.dispose()
            port = free_port()
            kiban = str(Path(sys.executable).parent / "kiban")
            hub_process = subprocess.Popen([kiban, "linkage", "serve", "--port", str(port)], env=env,
                                           stderr=subprocess.PIPE)
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/healthz", hub_process)
            asyncio.run(run_hub(base, data, 200, args.concurrency))  # warm-up
            asyncio.run(run_direct(f"{provider_url}/exchange", data, 200, args.concurrency))
            results: dict[str, list[tuple[float, float, float, float]]] = {"hub": [], "direct": []}
            servers = (hub_process.pid, provider.pid)
            for run in range(args.runs):
                for name in ("direct", "hub"):
                    cpu_before = sum(cpu_seconds(pid) for pid in servers)
                    hub_before = cpu_seconds(hub_process.pid)
                    if name == "hub":
                        rate, lat = asyncio.run(run_hub(base, data, args.requests, args.concurrency))
                    else:
                        rate, lat = asyncio.run(run_direct(f"{provider_url}/exchange", data, args.requests,
                                                           args.concurrency))
                    # Server-side CPU per exchange: the hub and the provider (direct: the provider only).
                    cpu_ms = (sum(cpu_seconds(pid) for pid in servers) - cpu_before) * 1000 / args.requests
                    hub_ms = (cpu_seconds(hub_process.pid) - hub_before) * 1000 / args.requests
                    results[name].append((rate, pct(lat, 0.5), pct(lat, 0.99), cpu_ms))
                    print(f"run {run + 1} {name:6}: {rate:8.0f} /s  p50 {pct(lat, 0.5):6.1f} ms  "
                          f"p99 {pct(lat, 0.99):6.1f} ms  server CPU {cpu_ms:5.2f} ms/exchange "
                          f"(hub process {hub_ms:5.2f})")
            sth = httpx.get(f"{base}/api/v1/linkage/ct/v1/get-sth").json()
        finally:
            for process in (hub_process, provider):
                if process is not None:
                    if process.poll() is not None and process.stderr is not None:  # it died: say why
                        print(f"{process.args!r} exited {process.returncode}: "
                              f"{process.stderr.read().decode()[-2000:]}", file=sys.stderr)
                    process.terminate()
                    process.wait(timeout=10)
    med = {name: tuple(statistics.median(r[i] for r in rows) for i in range(4)) for name, rows in results.items()}
    print()
    print(f"{args.requests} requests per run, {args.concurrency} concurrent, {args.runs} runs, medians; "
          f"log size at the end {sth['tree_size']}")
    print(f"{'figure':44} {'hub':>10} {'direct':>10} {'ratio':>7} {'target':>12}")
    labels = (("exchanges per second", 0, ">= 1,000 /s"), ("p50 latency (ms)", 1, ""),
              ("p99 latency (ms)", 2, "<= 50 ms"), ("server CPU ms per exchange", 3, ""))
    for label, i, target in labels:
        hub_value, direct_value = med["hub"][i], med["direct"][i]
        print(f"{label:44} {hub_value:10.1f} {direct_value:10.1f} {hub_value / direct_value:7.2f} {target:>12}")
    for name in ("hub", "direct"):
        print(f"{name}: {1000 / med[name][3]:.0f} exchanges per CPU-second of the server processes "
              f"(what 2 idle cores could serve: about {2000 / med[name][3]:.0f}/s)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "linkage.json").write_text(json.dumps({"results": results, "medians": med, "args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
