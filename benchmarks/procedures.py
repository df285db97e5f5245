"""Benchmark of online procedures (issue 7): signed applications submitted, verified and
queued per second, with p50/p99 latency, by 20 concurrent residents, against a real HTTP
server (uvicorn in a subprocess) on PostgreSQL. Each submission: the portal session resolved,
the form checked against its JSON Schema, the detached CMS signature verified (path to the
test CA, revocation by OCSP in-process), the signer matched to the resident record through the
card link, the evidence (jumin/household-composition) fetched through the exchange hub (signed
request, permission table, Merkle log), and the application, a step, a ledger entry and a
notification stored in one transaction.

Baseline in the same run and the same server: the same submissions (payloads signed alike)
without signature verification and evidence fetch, through a route only this benchmark's
server adds (`/bench/unverified`); the product has no such route.
Target: at least 200 applications/s and p99 at most 200 ms on this 2-core machine.

    .venv/bin/python benchmarks/procedures.py [--requests 600] [--runs 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
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
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import create_engine, text

from kiban.core.clock import SystemClock
from kiban.identity import jose, linking, service, testca
from kiban.platform import settings as settings_module
from kiban.platform.auth import Role, StaffMember
from kiban.platform.migrate import upgrade
from kiban.procedures.service import canonical_payload, portal_subject, procedures_member
from kiban.web.context import Services

PG_URL = os.environ.get("KIBAN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "procedures-benchmark-secret-0123456789abcdef"
LG = "131016"
RESIDENTS = 20
PROCEDURE = "kokuho-enrolment"
FORM = {"reason": "move_in", "start_date": "2026-03-25"}
PIN = "1234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cookie(secret_key: str, claims: dict[str, Any]) -> str:
    key = hashlib.sha256(b"kiban-portal-cookie:" + secret_key.encode()).digest()
    payload = jose.b64url(json.dumps({**claims, "exp": int(time.time()) + 86400}, ensure_ascii=False).encode())
    return f"{payload}.{jose.b64url(hmac.new(key, payload.encode(), hashlib.sha256).digest())}"


def prepare(env: dict[str, str], tmp: Path) -> list[dict[str, Any]]:
    """One municipality, RESIDENTS residents each with a linked virtual card, the hub with the
    procedures' permission rule. Returns each resident's cookie and card."""
    settings = settings_module.load(env)
    upgrade(settings)
    clock = SystemClock()
    svc = Services.build(settings, clock)
    now = clock.now()
    svc.municipalities.create(LG, "千代田区", "東京都", now)
    svc.municipalities.set_towns(LG, [{"code": "0001001", "name": "本町一丁目"}], now, "bench")
    clerk = StaffMember("bench", LG, "bench", "bench", "", frozenset({Role.REGISTRY_SUPERVISOR}))
    pki = service.TestPki(tmp / "ca", "test", clock)
    pki.init()
    links = linking.for_platform(svc.db, clock, svc.registry, svc.municipalities, "test")
    people = []
    for i in range(RESIDENTS):
        born = f"1980-01-{i + 1:02d}"
        moved = svc.registry.move_in(clerk, LG, {
            "origin": "domestic", "occurred_on": "2026-03-25", "notified_on": "2026-03-30",
            "previous_address": "大阪府大阪市北区梅田1-1",
            "address": {"town_code": "0001001", "banchi": f"{i + 1}番地"},
            "members": [{"family_name": "試験", "given_name": f"太郎{i}", "family_kana": "シケン",
                         "given_kana": "タロウ", "birth_date": born, "sex": "1", "relationship": "世帯主"}]})
        rid = moved["resident_ids"][0]
        record = links.resident_record(LG, svc.registry.get(clerk, LG, rid)["juminhyo_code"])
        facts = links.record_facts(LG, record)
        card = pki.issue_card(LG, rid, facts.name, facts.address, facts.birth_date, facts.sex, PIN)
        auth = card.auth_cert.public_bytes(Encoding.DER)
        assert links.link_card(LG, auth, testca.sign_detached(auth, card.signing_cert, card.signing_key)).linked
        claims = {"sub": portal_subject(settings.secret_key, LG, rid), "name": facts.name,
                  "address": {"formatted": facts.address}, "birthdate": facts.birth_date}
        people.append({"cookie": cookie(settings.secret_key, claims), "card": card})
    svc.linkage.register_municipality(LG, "千代田区")
    admin = StaffMember("platform", None, "platform", "platform", "", frozenset({Role.PLATFORM_ADMIN}))
    svc.linkage.publish_permissions(admin, [{
        "requester": procedures_member(LG), "provider": "JP/LG/*/jumin", "item": "jumin/household-composition",
        "procedure": PROCEDURE, "legal_basis": "国民健康保険法 第9条"}])
    svc.db.dispose()
    return people


def serve(port: int) -> None:
    """The server process: the application, plus the baseline route of this benchmark."""
    import uvicorn
    from starlette.concurrency import run_in_threadpool

    from kiban.procedures.access import resident
    from kiban.web.app import create_app

    app = create_app()

    @app.post("/bench/unverified")  # type: ignore[untyped-decorator, unused-ignore]
    async def unverified(request: Request) -> JSONResponse:
        body = await request.json()
        who = await run_in_threadpool(resident, request)
        procedures = request.app.state.services.procedures
        status, view = await run_in_threadpool(
            lambda: procedures.submit(who, base64.b64decode(body["payload"]), body["signature"],
                                      verify=False, fetch_evidence=False))
        return JSONResponse({"id": view["id"], "state": view["state"]}, status_code=status)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def signed_batch(people: list[dict[str, Any]], total: int) -> list[tuple[str, dict[str, str]]]:
    """Payloads signed before the clock starts (the residents' cards sign on their devices)."""
    out = []
    for n in range(total):
        person = people[n % len(people)]
        card = person["card"]
        payload = canonical_payload(LG, PROCEDURE, FORM, uuid.uuid4().hex)
        signature = testca.sign_detached(payload, card.signing_cert, card.signing_key)
        out.append((person["cookie"], {"payload": base64.b64encode(payload).decode(),
                                       "signature": base64.b64encode(signature).decode()}))
    return out


async def run(base: str, path: str, batch: list[tuple[str, dict[str, str]]], concurrency: int
              ) -> tuple[float, list[float]]:
    latencies: list[float] = []
    work = iter(batch)
    async with httpx.AsyncClient(base_url=base, timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            for portal_cookie, body in work:
                started = time.perf_counter()
                response = await client.post(path, json=body, cookies={"kiban_portal": portal_cookie})
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 201:
                    raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(batch) / (time.perf_counter() - started), latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc): steadier than wall time on a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=RESIDENTS)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    name = f"kiban_bench_proc_{uuid.uuid4().hex[:10]}"
    admin = create_engine(settings_module.normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base_url = settings_module.normalise_url(PG_URL).rsplit("/", 1)[0]
    process = None
    try:
        with tempfile.TemporaryDirectory() as directory:
            tmp = Path(directory)
            env = {"KIBAN_DATABASE_URL": f"{base_url}/{name}".replace("://postgres@", "://kiban_app@"),
                   "KIBAN_DATABASE_ADMIN_URL": f"{base_url}/{name}", "KIBAN_MODE": "test",
                   "KIBAN_SECRET_KEY": SECRET, "KIBAN_TEST_CA_DIR": str(tmp / "ca"),
                   "KIBAN_LINKAGE_SECRET": SECRET}
            os.environ.update(env)
            people = prepare(env, tmp)
            port = free_port()
            process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env={**os.environ, **env})
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            # Warm-up: first verification, hub start, member registration, codes.
            asyncio.run(run(base, "/portal/api/procedures/applications", signed_batch(people, 40), RESIDENTS))
            asyncio.run(run(base, "/bench/unverified", signed_batch(people, 40), RESIDENTS))
            results: dict[str, list[tuple[float, float, float, float]]] = {"signed": [], "baseline": []}
            for i in range(args.runs):
                for label, path in (("signed", "/portal/api/procedures/applications"),
                                    ("baseline", "/bench/unverified")):
                    batch = signed_batch(people, args.requests)
                    cpu = cpu_seconds(process.pid)
                    rate, lat = asyncio.run(run(base, path, batch, args.concurrency))
                    per = (cpu_seconds(process.pid) - cpu) / args.requests * 1000
                    results[label].append((rate, pct(lat, 0.5), pct(lat, 0.99), per))
                    print(f"run {i + 1} {label:9s}: {rate:7.1f}/s  p50 {pct(lat, 0.5):6.1f} ms  "
                          f"p99 {pct(lat, 0.99):6.1f} ms  server CPU {per:5.1f} ms/submission  "
                          f"(load {os.getloadavg()[0]:.2f})")
            print()
            print(f"{'':34s} {'per second':>11s} {'p50 ms':>8s} {'p99 ms':>8s} {'CPU ms':>7s}   "
                  f"(medians of {args.runs} runs, "
                  f"{args.requests} submissions each, {args.concurrency} concurrent residents)")
            for label, title in (("signed", "signed: verified + evidence + queued"),
                                 ("baseline", "baseline: no verification/evidence")):
                rows = results[label]
                print(f"{title:34s} {statistics.median(r[0] for r in rows):11.1f} "
                      f"{statistics.median(r[1] for r in rows):8.1f} {statistics.median(r[2] for r in rows):8.1f} "
                      f"{statistics.median(r[3] for r in rows):7.1f}")
            print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
