"""Benchmark of the conformance kit: the full registry and tax run against a local Kiban
server finishes within 60 s.

Starts Kiban (uvicorn in this process, SQLite in a temporary directory, or PostgreSQL with
--backend postgresql), runs the kit several times, and prints the median wall time beside a
baseline measured in the same run: the same number of sequential HTTP requests to
`GET /healthz`, i.e. what the run's round trips alone cost on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine, text

from kiban.core.clock import SystemClock
from kiban.platform import settings as settings_module
from kiban.platform.db import Database
from kiban.platform.migrate import upgrade
from kiban.standard.kit.runner import run
from kiban.web.app import create_app

TARGET_SECONDS = 60.0
PG = os.environ.get("KIBAN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return super().handle_request(request)


@contextmanager
def database(backend: str) -> Iterator[settings_module.Settings]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_module.load({"KIBAN_DATABASE_URL": f"sqlite:///{tmp}/kiban.db",
                                             "KIBAN_MODE": "test"})
            upgrade(settings)
            yield settings
        return
    name = f"kiban_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(settings_module.normalise_url(PG), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    owner = settings_module.normalise_url(PG).rsplit("/", 1)[0] + f"/{name}"
    app_url = owner.replace("://postgres@", "://kiban_app@")
    try:
        settings = settings_module.load({"KIBAN_DATABASE_URL": app_url,
                                         "KIBAN_DATABASE_ADMIN_URL": owner, "KIBAN_MODE": "test"})
        upgrade(settings)
        yield settings
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def server(app: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                        access_log=False))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(500):
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                break
        except OSError:
            time.sleep(0.02)
    try:
        yield url
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with database(args.backend) as settings:
        db = Database(settings)
        app = create_app(settings, SystemClock(), db)
        svc = app.state.services
        svc.accounts.create("bench-operator", "correct-horse-battery", "運用", ["platform_admin"],
                            None, svc.clock.now())
        token = svc.accounts.issue_api_token("bench-operator", svc.clock.now())
        kit, baseline, requests, checks = [], [], [], 0
        with server(app) as url:
            for i in range(args.runs):
                transport = CountingTransport()
                started = time.perf_counter()
                report = run(url, token, ("registry", "tax"), transport=transport)
                kit.append(time.perf_counter() - started)
                requests.append(transport.count)
                checks = len(report.outcomes)
                with httpx.Client(base_url=url) as client:
                    t0 = time.perf_counter()
                    for _ in range(transport.count):
                        client.get("/healthz")
                    baseline.append(time.perf_counter() - t0)
                print(f"run {i + 1}: kit {kit[-1]:.1f} s, {transport.count} requests, "
                      f"{checks} checks, {report.counts()}; /healthz × {transport.count}: "
                      f"{baseline[-1]:.1f} s", file=sys.stderr)
        db.dispose()
    kit_median, base_median = statistics.median(kit), statistics.median(baseline)
    result = {
        "date": datetime.now(UTC).date().isoformat(), "backend": args.backend,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "checks": checks, "requests_median": statistics.median(requests), "runs": args.runs,
        "kit_seconds": [round(x, 2) for x in kit], "kit_median": round(kit_median, 2),
        "healthz_seconds_same_requests": [round(x, 2) for x in baseline],
        "baseline_median": round(base_median, 2),
        "ratio": round(kit_median / base_median, 1) if base_median else None,
        "target_seconds": TARGET_SECONDS, "met": kit_median <= TARGET_SECONDS,
    }
    print(f"\nconformance kit, full registry + tax run, {args.backend} ({result['machine']})")
    print(f"{'figure':<40} {'kit':>10} {'baseline':>10} {'ratio':>7} {'target':>10} met")
    print(f"{'wall time, median of ' + str(args.runs):<40} {kit_median:>9.1f}s "
          f"{base_median:>9.1f}s {result['ratio']:>6}× {'<= 60 s':>10} "
          f"{'yes' if result['met'] else 'no'}")
    print(f"({checks} checks, {result['requests_median']:.0f} HTTP requests per run; baseline: "
          "that many sequential GET /healthz)")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / f"standard-{args.backend}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
