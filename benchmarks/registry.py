#!/usr/bin/env python
"""Registry benchmark: measured figures, each beside a baseline measured in the same run.

    .venv/bin/python benchmarks/registry.py                 # 1,000,000 residents, both backends
    .venv/bin/python benchmarks/registry.py --quick         # ~20,000 residents: a smoke run
    .venv/bin/python benchmarks/registry.py --backend sqlite --residents 200000 --runs 1

Figures (targets from the scale issue in brackets):

1. import    RegistryMigration.import_ of N synthetic residents (kiban.registry.synthetic, JSON
             Lines), validation and ledger included [>= 20,000 residents/s]. Baseline: the same
             table rows (read back from the imported database) written into a fresh database
             by raw DBAPI executemany (SQLite) or COPY (PostgreSQL, psycopg cursor.copy, as the
             table owner: PostgreSQL refuses COPY FROM under row-level security).
2. search    Registry.search(actor, lgcode, name=<kana>) over real surnames / given names /
             prefixes / full names / hiragana drawn from the data: p50/p95/p99 [p99 <= 50 ms].
             Baseline: the bare range query on the full_kana_key index (raw DBAPI, LIMIT 20).
3. cert      住民票の写し through Registry.issue_certificate, single thread, for 1- and
             4-person households [>= 30/s per core]; juminhyo.render alone (middle figure);
             baseline: the same strings, rectangles and lines drawn by ReportLab alone.
4. http      POST .../changes/move-in with 20 concurrent clients against uvicorn on 127.0.0.1
             (PostgreSQL, 1 and 2 workers): p50/p95/p99 and throughput [p99 <= 50 ms].
             Baseline: GET /healthz under the same concurrency. Three load models, reported
             side by side: 4 closed loop from 20 httpx threads (saturating); 4b open loop,
             20 clients paced at fixed total rates (--paced-rates), latency from the
             scheduled send time; 4c closed loop from wrk (C, skipped if wrk is missing).

Every run uses throw-away databases: SQLite files in a temporary directory, PostgreSQL
databases created (as the superuser of KIBAN_BENCH_POSTGRES_URL), migrated as the owner and
used as the application role kiban_app, then dropped. Results go to stdout and to
benchmarks/out/registry-<date>.json.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import hashlib
import io
import itertools
import json
import os
import platform
import pstats
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
import jaconv  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from kiban.core.clock import SystemClock, today_jst  # noqa: E402
from kiban.core.text import fold_kana  # noqa: E402
from kiban.documents import juminhyo  # noqa: E402
from kiban.platform import settings as settings_module  # noqa: E402
from kiban.platform.db import Database  # noqa: E402
from kiban.platform.migrate import upgrade  # noqa: E402
from kiban.registry import synthetic  # noqa: E402
from kiban.registry.migration import RegistryMigration  # noqa: E402
from kiban.web.context import Services  # noqa: E402

PG_URL = os.environ.get("KIBAN_BENCH_POSTGRES_URL",
                        os.environ.get("KIBAN_TEST_POSTGRES_URL",
                                       "postgresql://postgres@127.0.0.1:5432/test"))
LGCODE = "131016"  # 千代田区 (valid check digit)
PASSWORD = "bench-password-not-secret"
SEED = 20260401
OUT = ROOT / "benchmarks" / "out"
CLOCK = SystemClock()

TARGETS = {
    "import": (">=", 20_000.0, "residents/s"),
    "search": ("<=", 50.0, "ms p99"),
    "cert": (">=", 30.0, "certs/s/core"),
    "http": ("<=", 50.0, "ms p99"),
}


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {msg}",
          file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


# --- machine -------------------------------------------------------------------------------------


def machine_info(backends: list[str]) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": None,
        "platform": platform.platform(),
    }
    with contextlib.suppress(OSError):
        info["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True,
                                           check=True).stdout.strip())
    # Which code was measured: other work may change src/ while a long run goes on (the
    # HTTP server is started later than the in-process figures import their modules).
    info["sources"] = {
        str(p.relative_to(ROOT)): {
            "sha256": hashlib.sha256(p.read_bytes()).hexdigest()[:16],
            "mtime": datetime.fromtimestamp(p.stat().st_mtime, UTC).isoformat(timespec="seconds")}
        for p in sorted((ROOT / "src" / "kiban").glob("*/*.py"))
        if p.parent.name in ("registry", "platform", "documents", "web", "core")}
    if "postgresql" in backends:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    return info


# --- throw-away databases ------------------------------------------------------------------------


@dataclass
class Env:
    """One migrated database with a municipality, its 町字 master and two staff members."""

    backend: str
    settings: settings_module.Settings
    svc: Services
    supervisor: Any
    clerk: Any
    pg_name: str | None = None
    sqlite_path: Path | None = None
    town_codes: list[str] = field(default_factory=list)

    @property
    def db(self) -> Database:
        return self.svc.db

    def close(self) -> None:
        self.svc.db.dispose()
        if self.pg_name:
            drop_pg(self.pg_name)
        if self.sqlite_path:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{self.sqlite_path}{suffix}").unlink()


def pg_url(database: str, user: str = "postgres") -> str:
    base = settings_module.normalise_url(PG_URL).rsplit("/", 1)[0] + f"/{database}"
    return base.replace("://postgres@", f"://{user}@")


def libpq(url: str) -> str:
    """A SQLAlchemy URL as psycopg.connect takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def drop_pg(name: str) -> None:
    engine = create_engine(settings_module.normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def new_env(backend: str, workdir: Path, towns: list[dict[str, str]]) -> Env:
    tag = uuid.uuid4().hex[:10]
    pg_name = sqlite_path = None
    if backend == "sqlite":
        sqlite_path = workdir / f"kiban-{tag}.db"
        env = {"KIBAN_DATABASE_URL": f"sqlite:///{sqlite_path}", "KIBAN_MODE": "test"}
    else:
        pg_name = f"kiban_bench_{tag}"
        engine = create_engine(settings_module.normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        engine.dispose()
        env = {"KIBAN_DATABASE_URL": pg_url(pg_name, "kiban_app"),
               "KIBAN_DATABASE_ADMIN_URL": pg_url(pg_name), "KIBAN_MODE": "test"}
    settings = settings_module.load(env)
    upgrade(settings)
    svc = Services.build(settings, CLOCK)
    now = CLOCK.now()
    svc.municipalities.create(LGCODE, "千代田区", "東京都", now)
    svc.municipalities.set_towns(LGCODE, towns, now, "bench")
    supervisor = svc.accounts.create("bench-supervisor", PASSWORD, "計測 責任者",
                                     ["registry_supervisor"], LGCODE, now)
    clerk = svc.accounts.create("bench-clerk", PASSWORD, "計測 窓口", ["counter_clerk"],
                                LGCODE, now)
    return Env(backend, settings, svc, supervisor, clerk, pg_name, sqlite_path,
               [t["code"] for t in towns])


# --- 1. import -----------------------------------------------------------------------------------


def generate(path: Path, residents: int, town_codes: list[str]) -> float:
    started = time.perf_counter()
    with path.open("w", encoding="utf-8") as out:
        written = synthetic.write_jsonl(
            synthetic.population(LGCODE, town_codes, residents, seed=SEED,
                                 as_of=today_jst(CLOCK)), out)
    assert written == residents, (written, residents)
    return time.perf_counter() - started


LAST_CPU: dict[str, float] = {}  # process CPU seconds of the last timed section, by name


def kiban_import(env: Env, path: Path, residents: int) -> float:
    migration = RegistryMigration(env.db, CLOCK)
    with path.open(encoding="utf-8") as src:
        cpu = time.process_time()
        started = time.perf_counter()
        report = migration.import_(env.supervisor, LGCODE, src, "jsonl")
        seconds = time.perf_counter() - started
        LAST_CPU["import"] = time.process_time() - cpu
    if not report.ok or report.imported_residents != residents:
        raise RuntimeError("import failed: " + "\n".join(report.lines()[:20]))
    return seconds


@dataclass
class RawRows:
    """The imported tables' rows, in column order, as each backend stores them."""

    households: list[tuple[Any, ...]]
    residents: list[tuple[Any, ...]]
    hh_columns: list[str]
    res_columns: list[str]


def read_back(env: Env) -> RawRows:
    if env.backend == "sqlite":
        conn = sqlite3.connect(str(env.sqlite_path))
        try:
            out = []
            for table in ("households", "residents"):
                cur = conn.execute(f"SELECT * FROM {table} WHERE lgcode = ?", (LGCODE,))
                out.append(([d[0] for d in cur.description], cur.fetchall()))
        finally:
            conn.close()
    else:
        out = []
        with psycopg.connect(libpq(pg_url(env.pg_name or ""))) as conn:
            for table in ("households", "residents"):
                cols = [r[0] for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                    "ORDER BY ordinal_position", (table,))]
                rows: list[tuple[Any, ...]] = []
                with conn.cursor().copy(
                        f"COPY (SELECT * FROM {table} WHERE lgcode = '{LGCODE}') TO STDOUT") as cp:
                    rows.extend(cp.rows())  # text values, as COPY reads them back
                out.append((cols, rows))
    (hh_cols, hh), (res_cols, res) = out
    return RawRows(hh, res, hh_cols, res_cols)


def quoted(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def baseline_import(env: Env, raw: RawRows) -> float:
    """The same rows, no validation, no ledger: the storage engine's floor."""
    if env.backend == "sqlite":
        conn = sqlite3.connect(str(env.sqlite_path), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-262144")  # as store.BulkWrites gives the import
            hh_sql = (f"INSERT INTO households ({quoted(raw.hh_columns)}) VALUES "
                      f"({', '.join('?' * len(raw.hh_columns))})")
            res_sql = (f"INSERT INTO residents ({quoted(raw.res_columns)}) VALUES "
                       f"({', '.join('?' * len(raw.res_columns))})")
            started = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany(hh_sql, raw.households)
            conn.executemany(res_sql, raw.residents)
            conn.execute("COMMIT")
            return time.perf_counter() - started
        finally:
            conn.close()
    with psycopg.connect(libpq(pg_url(env.pg_name or ""))) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur:
            for table, cols, rows in (("households", raw.hh_columns, raw.households),
                                      ("residents", raw.res_columns, raw.residents)):
                with cur.copy(f"COPY {table} ({quoted(cols)}) FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row(row)
        conn.commit()
        return time.perf_counter() - started


# --- 2. search -----------------------------------------------------------------------------------


def sample_people(path: Path, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """Reservoir sample of (family_kana, given_kana) of active residents in the file."""
    sample: list[tuple[str, str]] = []
    seen = 0
    with path.open(encoding="utf-8") as src:
        for line in src:
            if '"type":"resident"' not in line:
                continue
            r = json.loads(line)
            if r["status"] != "active":
                continue
            seen += 1
            item = (r["family_kana"], r["given_kana"])
            if len(sample) < count:
                sample.append(item)
            else:
                j = rng.randrange(seen)
                if j < count:
                    sample[j] = item
    return sample


def make_queries(people: list[tuple[str, str]], count: int, seed: int) -> list[tuple[str, str]]:
    """(kind, query) pairs: 2-4 kana prefixes of family names, whole family names, given-name
    prefixes, full names with a space, and the same in hiragana."""
    rng = random.Random(seed)
    kinds = (("family-2", 20), ("family-3", 15), ("family-4", 10), ("family-full", 10),
             ("given-2", 10), ("given-3", 5), ("full-name", 15), ("hiragana", 15))
    names, weights = zip(*kinds, strict=True)
    queries = []
    for _ in range(count):
        family, given = rng.choice(people)
        kind = rng.choices(names, weights)[0]
        if kind == "hiragana":
            base = rng.choice((family[:2], family[:3], family, f"{family} {given}"))
            queries.append((kind, jaconv.kata2hira(base)))
        elif kind.startswith("family-") and kind != "family-full":
            queries.append((kind, family[: int(kind[-1])]))
        elif kind == "family-full":
            queries.append((kind, family))
        elif kind.startswith("given-"):
            queries.append((kind, given[: int(kind[-1])]))
        else:
            queries.append((kind, f"{family} {given}"))
    return queries


def kiban_search(env: Env, queries: list[tuple[str, str]], budget: float = float("inf")
                 ) -> tuple[list[float], list[int]]:
    """Runs the queries in order until `budget` seconds have passed (the queries are in
    random order, so a cut-short run is still a random sample)."""
    registry = env.svc.registry
    latencies, totals = [], []
    deadline = time.perf_counter() + budget
    for _, q in queries:
        started = time.perf_counter()
        result = registry.search(env.clerk, LGCODE, name=q)
        latencies.append(time.perf_counter() - started)
        totals.append(result["total"])
        if started > deadline:
            break
    return latencies, totals


def baseline_search(env: Env, queries: list[tuple[str, str]]) -> list[float]:
    """The bare prefix range on (lgcode, full_kana_key), first page, raw DBAPI."""
    keys = [fold_kana(q) for _, q in queries]
    latencies = []
    if env.backend == "sqlite":
        conn = sqlite3.connect(str(env.sqlite_path))
        sql = ("SELECT * FROM residents WHERE lgcode = ? AND full_kana_key >= ? "
               "AND full_kana_key < ? ORDER BY full_kana_key LIMIT 20")
        try:
            for key in keys:
                started = time.perf_counter()
                conn.execute(sql, (LGCODE, key, key + "\U0010ffff")).fetchall()
                latencies.append(time.perf_counter() - started)
        finally:
            conn.close()
        return latencies
    with psycopg.connect(libpq(pg_url(env.pg_name or "", "kiban_app")), autocommit=True) as conn:
        conn.execute("SELECT set_config('kiban.lgcode', %s, false)", (LGCODE,))
        sql = ("SELECT * FROM residents WHERE lgcode = %s AND full_kana_key >= %s "
               "AND full_kana_key < %s ORDER BY full_kana_key LIMIT 20")
        for key in keys:
            started = time.perf_counter()
            conn.execute(sql, (LGCODE, key, key + "\U0010ffff"), prepare=True).fetchall()
            latencies.append(time.perf_counter() - started)
    return latencies


# --- 3. certificates -----------------------------------------------------------------------------


def households_of_size(env: Env, size: int, limit: int) -> list[list[str]]:
    sql = text("""
        SELECT r.household_id, r.id FROM residents r
        WHERE r.lgcode = :lg AND r.status = 'active' AND r.household_id IN (
            SELECT household_id FROM residents
            WHERE lgcode = :lg AND status = 'active'
            GROUP BY household_id HAVING count(*) = :n LIMIT :limit)
        ORDER BY r.household_id, r.id""")
    groups: dict[str, list[str]] = collections.defaultdict(list)
    with env.db.tenant(LGCODE) as conn:
        for hid, rid in conn.execute(sql, {"lg": LGCODE, "n": size, "limit": limit}):
            groups[hid].append(rid)
    return [ids for ids in groups.values() if len(ids) == size]


@contextlib.contextmanager
def capture_cert() -> Iterator[list[dict[str, Any]]]:
    """Records the cert dict the service hands to juminhyo.render."""
    captured: list[dict[str, Any]] = []
    original = juminhyo.render

    def spy(cert: Any) -> bytes:
        captured.append(cert)
        return original(cert)

    juminhyo.render = spy  # type: ignore[assignment]
    try:
        yield captured
    finally:
        juminhyo.render = original  # type: ignore[assignment]


@dataclass
class Drawing:
    pages: list[list[tuple[str, tuple[Any, ...]]]]


def record_drawing(cert: dict[str, Any]) -> Drawing:
    """The canvas operations render() performs for `cert` (strings with their font size and
    position, rectangles, lines), to replay on a bare ReportLab canvas."""
    from reportlab.pdfgen.canvas import Canvas

    pages: list[list[tuple[str, tuple[Any, ...]]]] = [[]]
    names = ("setFont", "drawString", "drawCentredString", "drawRightString", "rect", "line",
             "setFillGray", "setLineWidth", "showPage")
    originals = {n: getattr(Canvas, n) for n in names}

    def wrap(name: str) -> Callable[..., Any]:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            if name == "showPage":
                pages.append([])
            elif kwargs:
                pages[-1].append((name, (*args, tuple(sorted(kwargs.items())))))
            else:
                pages[-1].append((name, args))
            return originals[name](self, *args, **kwargs)
        return method

    for n in names:
        setattr(Canvas, n, wrap(n))
    try:
        juminhyo.render(cert)
    finally:
        for n, m in originals.items():
            setattr(Canvas, n, m)
    return Drawing([p for p in pages if p])


def reportlab_only(drawing: Drawing) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    out = io.BytesIO()
    c = Canvas(out, pagesize=A4, pageCompression=1, initialFontName=juminhyo.FONT_NAME)
    for page in drawing.pages:
        for name, args in page:
            if args and isinstance(args[-1], tuple):  # keyword arguments were recorded
                *positional, kwargs = args
                getattr(c, name)(*positional, **dict(kwargs))
            else:
                getattr(c, name)(*args)
        c.showPage()
    c.save()
    return out.getvalue()


def rate(fn: Callable[[], Any], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        fn()
    return count / (time.perf_counter() - started)


# --- 4. HTTP -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVER_PID = [0]


@contextlib.contextmanager
def server(env: Env, workers: int) -> Iterator[str]:
    port = free_port()
    child_env = {**os.environ, "KIBAN_DATABASE_URL": env.settings.database_url,
                 "KIBAN_DATABASE_ADMIN_URL": env.settings.admin_database_url,
                 "KIBAN_MODE": "test", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "kiban.web.app:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=child_env, cwd=str(ROOT))
    base = f"http://127.0.0.1:{port}"
    SERVER_PID[0] = proc.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start in 60 s")
            time.sleep(0.2)
        if workers > 1:  # let every worker come up before the measurement
            time.sleep(2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children (uvicorn's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


@dataclass
class Load:
    latencies: list[float]
    statuses: dict[int, int]
    errors: int
    seconds: float
    server_cpu: float = 0.0  # CPU seconds the server's processes used meanwhile

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def load(base: str, request: Callable[[httpx.Client, int], httpx.Response], total: int,
         concurrency: int, time_limit: float) -> Load:
    """`total` requests (at most `time_limit` seconds) from `concurrency` threads, each with
    its own keep-alive connection."""
    counter = itertools.count()
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + time_limit
    barrier = threading.Barrier(concurrency + 1)

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            client.get("/healthz")  # open the connection before the clock starts
            barrier.wait()
            while True:
                i = next(counter)
                if i >= total or time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                try:
                    response = request(client, i)
                except httpx.HTTPError:
                    with lock:
                        errors[0] += 1
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status_code] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return Load(latencies, dict(statuses), errors[0], time.perf_counter() - started)


def paced(base: str, request: Callable[[httpx.Client, int], httpx.Response], rate: float,
          concurrency: int, seconds: float) -> Load:
    """Open loop: `concurrency` clients, each with one keep-alive connection and at most one
    request in flight, together sending `rate` requests per second on a fixed schedule
    (client k sends at t0 + (k + j * concurrency) / rate). Between its requests a client
    waits ("thinks"). Latency is counted from the scheduled send time, so a request that
    had to wait for its client's previous one is charged the wait (no coordinated omission).
    Unlike `load`, this does not saturate the server unless `rate` exceeds its capacity."""
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    errors = [0]
    lock = threading.Lock()
    ready, go = threading.Barrier(concurrency + 1), threading.Barrier(concurrency + 1)
    interval = concurrency / rate
    per_client = max(1, int(seconds * rate / concurrency))
    t0 = [0.0]

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            c.get("/healthz")  # open the connection before the clock starts
            ready.wait()
            go.wait()  # t0 is set now
            for j in range(per_client):
                scheduled = t0[0] + k / rate + j * interval
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                try:
                    response = request(c, k + j * concurrency)
                except httpx.HTTPError:
                    with lock:
                        errors[0] += 1
                    continue
                elapsed = time.perf_counter() - scheduled
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status_code] += 1

    threads = [threading.Thread(target=client, args=(k,), daemon=True)
               for k in range(concurrency)]
    for t in threads:
        t.start()
    ready.wait()  # every client connected (creating 20 clients takes a while)
    t0[0] = time.perf_counter() + 0.05
    go.wait()
    for t in threads:
        t.join()
    return Load(latencies, dict(statuses), errors[0], time.perf_counter() - t0[0])


WRK_SCRIPT = r"""
-- Each request a new move-in: unique Idempotency-Key (a tag per run, one wrk thread),
-- varied address. Prints one JSON line.
local counter, tag = 0, "x"
local path, token, template = "", "", ""
function init(args)
  path, token, tag = args[1], args[2], args[3]
  local f = io.open(args[4], "r"); template = f:read("*a"); f:close()
  math.randomseed(os.time())
end
function request()
  counter = counter + 1
  local body = template:gsub("__BANCHI__", tostring(counter % 40 + 1) .. "番地" ..
                             tostring(math.random(1, 30)))
  if path == "/healthz" then return wrk.format("GET", path) end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = tag .. "-" .. tostring(counter)}, body)
end
function done(summary, latency, requests)
  io.write(string.format(
    '{"p50":%f,"p95":%f,"p99":%f,"requests":%d,"seconds":%f,"non2xx":%d,"errors":%d}\n',
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, summary.requests, summary.duration / 1e6,
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


@dataclass
class WrkResult:
    p50: float  # ms
    p95: float
    p99: float
    requests: int
    seconds: float
    non2xx: int
    errors: int
    server_cpu: float = 0.0

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk(base: str, path: str, token: str, body: dict[str, Any], concurrency: int,
        seconds: float, workdir: Path) -> WrkResult | None:
    """Closed loop like `load`, but from wrk (C, one thread): the load generator then takes
    far less of the CPU the server shares. None when wrk is not installed."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    script = workdir / "move_in.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    template = workdir / "move_in.json"
    template.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    cmd = [exe, "-t", "1", "-c", str(concurrency), "-d", f"{seconds:.0f}s", "--timeout", "30s",
           "-s", str(script), base + path, "--", path, token, uuid.uuid4().hex[:8],
           str(template)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = [x for x in out.stdout.splitlines() if x.startswith("{")][-1]
    return WrkResult(**json.loads(line))


def move_in_body(i: int, town_codes: list[str], today: Any) -> dict[str, Any]:
    rng = random.Random(i)
    family, family_kana = rng.choice(synthetic.SURNAMES)
    return {
        "origin": "domestic",
        "occurred_on": (today - timedelta(days=3)).isoformat(),
        "notified_on": today.isoformat(),
        "previous_address": "大阪府大阪市北区梅田一丁目1番1号",
        "address": {"town_code": rng.choice(town_codes), "banchi": f"{rng.randint(1, 40)}番地"
                    f"{rng.randint(1, 30)}", "katagaki": ""},
        "members": [
            {"family_name": family, "given_name": "太郎", "family_kana": family_kana,
             "given_kana": "タロウ", "birth_date": "1985-05-05", "sex": "1",
             "relationship": "世帯主"},
            {"family_name": family, "given_name": "花子", "family_kana": family_kana,
             "given_kana": "ハナコ", "birth_date": "1987-07-07", "sex": "2",
             "relationship": "妻"},
        ],
    }


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Figure:
    figure: str
    backend: str
    metric: str
    unit: str
    kiban: list[float]
    baseline: list[float]
    target: str = ""
    met: bool | None = None
    middle: list[float] | None = None  # juminhyo.render alone (certificates)
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kiban_median(self) -> float:
        return median(self.kiban)

    @property
    def baseline_median(self) -> float:
        return median(self.baseline)

    @property
    def ratio(self) -> float:
        b = self.baseline_median
        return self.kiban_median / b if b else float("nan")


def judge(fig: Figure, key: str) -> None:
    op, value, unit = TARGETS[key]
    fig.target = f"{op} {value:,.0f} {unit}"
    m = fig.kiban_median
    fig.met = m >= value if op == ">=" else m <= value


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.figures: list[Figure] = []
        self.info: dict[str, Any] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="kiban-bench-"))
        self.towns = synthetic.town_master(SEED)
        self.data = self.workdir / "population.jsonl"
        self.profiles: dict[str, str] = {}

    def add(self, fig: Figure) -> None:
        self.figures.append(fig)
        log(f"{fig.figure} {fig.backend} {fig.metric}: kiban {fig.kiban_median:,.2f} "
            f"baseline {fig.baseline_median:,.2f} {fig.unit}")

    def profile(self, name: str, fn: Callable[[], Any]) -> Any:
        if not self.args.profile:
            return fn()
        prof = cProfile.Profile()
        result = prof.runcall(fn)
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"registry-{name}.prof"
        prof.dump_stats(str(path))
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
        self.profiles[name] = str(path)
        log(f"profile {name} -> {path}")
        return result

    # ---------------------------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        self.info = machine_info(backends)
        self.info.update({"residents": args.residents, "runs": args.runs,
                          "queries": args.queries, "certificates": args.certs,
                          "requests": args.requests, "concurrency": args.concurrency,
                          "search_budget_s": args.search_budget,
                          "command": " ".join([Path(sys.executable).name, *sys.argv])})
        log(f"generating {args.residents:,} residents -> {self.data}")
        gen_s = generate(self.data, args.residents, [t["code"] for t in self.towns])
        self.info["generate_seconds"] = gen_s
        self.info["data_bytes"] = self.data.stat().st_size
        log(f"generated in {gen_s:.1f} s ({args.residents / gen_s:,.0f} residents/s)")
        try:
            for backend in backends:
                self.backend(backend)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def backend(self, backend: str) -> None:
        args = self.args
        n = args.residents
        only = set(args.only.split(",")) if args.only else {"import", "search", "cert", "http"}
        kiban_s: list[float] = []
        kiban_cpu: list[float] = []
        keep: Env | None = None
        try:
            runs = args.runs if "import" in only else 1
            if args.profile and "import" in only:  # an extra run, not counted
                env = new_env(backend, self.workdir, self.towns)
                try:
                    self.profile(f"import-{backend}", lambda: kiban_import(env, self.data, n))
                finally:
                    env.close()
            for run in range(runs):
                env = new_env(backend, self.workdir, self.towns)
                log(f"{backend}: import run {run + 1}/{runs}")
                try:
                    seconds = kiban_import(env, self.data, n)
                except BaseException:
                    env.close()  # a failed or interrupted run leaves no database behind
                    raise
                kiban_s.append(seconds)
                kiban_cpu.append(LAST_CPU["import"])
                log(f"{backend}: imported {n:,} in {seconds:.1f} s ({n / seconds:,.0f}/s; "
                    f"{LAST_CPU['import']:.1f} s of this process's CPU)")
                if keep is not None:
                    keep.close()
                keep = env
            assert keep is not None
            if "import" in only:
                raw = read_back(keep)
                base_s = []
                for run in range(args.runs):
                    env = new_env(backend, self.workdir, self.towns)
                    try:
                        seconds = baseline_import(env, raw)
                    finally:
                        env.close()
                    base_s.append(seconds)
                    log(f"{backend}: baseline run {run + 1}: {n / seconds:,.0f}/s")
                del raw
                fig = Figure("1 import", backend, f"import {n:,} residents", "residents/s",
                             [n / s for s in kiban_s], [n / s for s in base_s],
                             notes="baseline: " + ("executemany, one transaction"
                                                   if backend == "sqlite" else
                                                   "COPY as table owner, one transaction"),
                             extra={"kiban_seconds": kiban_s, "baseline_seconds": base_s,
                                    "kiban_process_cpu_seconds": kiban_cpu,
                                    "kiban_residents_per_cpu_second":
                                        [n / c for c in kiban_cpu if c]})
                judge(fig, "import")
                self.add(fig)
            if backend == "postgresql":
                with psycopg.connect(libpq(pg_url(keep.pg_name or "")), autocommit=True) as conn:
                    conn.execute("ANALYZE")  # what autovacuum does within a minute anyway
            if "search" in only:
                self.search(keep)
            if "cert" in only:
                self.certificates(keep)
            if "http" in only and backend == "postgresql":
                self.http(keep)
        finally:
            if keep is not None:
                keep.close()

    def search(self, env: Env) -> None:
        args = self.args
        rng = random.Random(SEED)
        people = sample_people(self.data, 5000, rng)
        queries = make_queries(people, args.queries, SEED)
        warm = make_queries(people, 30, SEED + 1)
        kiban_search(env, warm, budget=20)
        baseline_search(env, warm)
        if args.profile:  # an extra run, not counted
            self.profile(f"search-{env.backend}", lambda: kiban_search(env, queries))
        p = {"p50": ([], []), "p95": ([], []), "p99": ([], [])}
        totals: list[int] = []
        by_kind: dict[str, list[float]] = collections.defaultdict(list)
        measured: list[int] = []
        for run in range(args.runs):
            lat, totals = kiban_search(env, queries, args.search_budget)
            measured.append(len(lat))
            base = baseline_search(env, queries[: len(lat)])
            for (kind, _), value in zip(queries, lat, strict=False):
                by_kind[kind].append(value * 1000)
            for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
                p[name][0].append(percentile(lat, q) * 1000)
                p[name][1].append(percentile(base, q) * 1000)
            log(f"{env.backend}: search run {run + 1} ({len(lat)} queries): "
                f"p50 {p['p50'][0][-1]:.1f} "
                f"p99 {p['p99'][0][-1]:.1f} ms (baseline p99 {p['p99'][1][-1]:.2f} ms)")
        kinds = {k: {"p50": percentile(v, 50), "p99": percentile(v, 99), "n": len(v)}
                 for k, v in sorted(by_kind.items())}
        hits = {"median_total": median([float(t) for t in totals]),
                "max_total": max(totals), "share_capped": sum(t >= 10_000 for t in totals)
                / len(totals)}
        for name in ("p50", "p95", "p99"):
            fig = Figure("2 search", env.backend,
                         f"search by kana, {name} (n={'/'.join(map(str, measured))})", "ms",
                         p[name][0], p[name][1],
                         notes="baseline: bare range on (lgcode, full_kana_key) LIMIT 20",
                         extra={"by_kind": kinds, "matches": hits, "queries_measured": measured}
                         if name == "p99" else {})
            if name == "p99":
                judge(fig, "search")
            self.add(fig)

    def certificates(self, env: Env) -> None:
        args = self.args
        registry = env.svc.registry
        for size in (1, 4):
            groups = households_of_size(env, size, max(args.certs, 10))
            if not groups:
                log(f"{env.backend}: no household of {size}")
                continue
            cycle = itertools.cycle(groups)
            data = {"form": "household", "kind": "juminhyo"}
            with capture_cert() as captured:
                registry.issue_certificate(env.clerk, LGCODE, {**data, "resident_ids": groups[0]})
            cert = captured[0]
            drawing = record_drawing(cert)
            assert reportlab_only(drawing).startswith(b"%PDF")
            for _ in range(3):  # warm up
                registry.issue_certificate(env.clerk, LGCODE, {**data, "resident_ids": next(cycle)})

            def issue() -> None:
                registry.issue_certificate(env.clerk, LGCODE,
                                           {**data, "resident_ids": next(cycle)})  # noqa: B023

            kiban, middle, base = [], [], []
            if args.profile:  # an extra run, not counted
                self.profile(f"cert{size}-{env.backend}", lambda: rate(issue, args.certs))
            for _run in range(args.runs):
                kiban.append(rate(issue, args.certs))
                middle.append(rate(lambda: juminhyo.render(cert), args.certs))  # noqa: B023
                base.append(rate(lambda: reportlab_only(drawing), args.certs))  # noqa: B023
            strings = sum(1 for page in drawing.pages for op, _ in page if op.startswith("draw"))
            fig = Figure("3 certificate", env.backend, f"住民票の写し, {size}-person household",
                         "certs/s/core", kiban, base, middle=middle,
                         notes="single thread; middle: juminhyo.render alone; baseline: "
                               "the same canvas operations on a bare ReportLab canvas",
                         extra={"pages": len(drawing.pages), "strings": strings,
                                "pdf_bytes": len(juminhyo.render(cert))})
            judge(fig, "cert")
            self.add(fig)

    def http(self, env: Env) -> None:
        args = self.args
        today = today_jst(CLOCK)
        towns = env.town_codes
        for workers in (1, 2):
            with server(env, workers) as base:
                token = httpx.post(base + "/api/v1/tokens", json={
                    "username": "bench-clerk", "password": PASSWORD}, timeout=30).json()["token"]
                headers = {"Authorization": f"Bearer {token}"}
                path = f"/api/v1/municipalities/{LGCODE}/changes/move-in"
                offset = itertools.count(workers * 10_000_000)
                check = httpx.post(base + path, json=move_in_body(0, towns, today),
                                   headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                                   timeout=30)
                if check.status_code != 201:
                    raise RuntimeError(f"move-in refused: {check.status_code} {check.text}")

                def health(client: httpx.Client, _i: int) -> httpx.Response:
                    return client.get("/healthz")

                def move_in(client: httpx.Client, _i: int) -> httpx.Response:
                    return client.post(path, json=move_in_body(next(offset), towns, today),  # noqa: B023
                                       headers={**headers,  # noqa: B023
                                                "Idempotency-Key": uuid.uuid4().hex})

                warm = max(args.concurrency * 3, 60)
                load(base, health, warm, args.concurrency, 60)
                load(base, move_in, warm, args.concurrency, 60)
                self.wrk_runs(base, path, token, workers, towns, today)
                self.paced_runs(base, health, move_in, workers)
                runs: dict[str, list[Load]] = {"move-in": [], "healthz": []}
                for run in range(args.runs):
                    for name, fn in (("healthz", health), ("move-in", move_in)):
                        cpu = tree_cpu(SERVER_PID[0])
                        result = load(base, fn, args.requests, args.concurrency,
                                      args.time_limit)
                        result.server_cpu = tree_cpu(SERVER_PID[0]) - cpu
                        runs[name].append(result)
                        bad = {s: c for s, c in result.statuses.items() if s >= 300}
                        log(f"postgresql: http {workers}w {name} run {run + 1}: "
                            f"{len(result.latencies)} in {result.seconds:.1f} s, "
                            f"p99 {percentile(result.latencies, 99) * 1000:.1f} ms, "
                            f"{result.throughput:.0f}/s, server CPU "
                            f"{result.server_cpu / max(len(result.latencies), 1) * 1000:.1f} "
                            f"ms/request, errors {result.errors} {bad or ''}")
            label = (f"{workers} worker{'s' if workers > 1 else ''}, {args.concurrency} clients, "
                     "closed loop (httpx)")
            statuses = {name: [r.statuses for r in rs] for name, rs in runs.items()}
            for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
                fig = Figure("4 http", "postgresql", f"move-in, {label}, {name}", "ms",
                             [percentile(r.latencies, q) * 1000 for r in runs["move-in"]],
                             [percentile(r.latencies, q) * 1000 for r in runs["healthz"]],
                             notes="baseline: GET /healthz, same concurrency",
                             extra={"statuses": statuses, "server_cpu_ms_per_request": {
                                 k: [r.server_cpu / max(len(r.latencies), 1) * 1000 for r in rs]
                                 for k, rs in runs.items()}} if name == "p99" else {})
                if name == "p99":
                    judge(fig, "http")
                self.add(fig)
            self.add(Figure("4 http", "postgresql", f"move-in, {label}, throughput", "req/s",
                            [r.throughput for r in runs["move-in"]],
                            [r.throughput for r in runs["healthz"]],
                            extra={"errors": [r.errors for r in runs["move-in"]]}))

    def paced_runs(self, base: str, health: Callable[[httpx.Client, int], httpx.Response],
                   move_in: Callable[[httpx.Client, int], httpx.Response], workers: int) -> None:
        """Figure 4b: the same clients at fixed arrival rates (open loop), below saturation."""
        args = self.args
        for rate in [float(r) for r in args.paced_rates.split(",") if r.strip()]:
            runs: dict[str, list[Load]] = {"move-in": [], "healthz": []}
            for run in range(args.runs):
                for name, fn in (("healthz", health), ("move-in", move_in)):
                    cpu = tree_cpu(SERVER_PID[0])
                    result = paced(base, fn, rate, args.concurrency, args.paced_seconds)
                    result.server_cpu = tree_cpu(SERVER_PID[0]) - cpu
                    runs[name].append(result)
                    bad = {s: c for s, c in result.statuses.items() if s >= 300}
                    log(f"postgresql: paced {rate:g}/s {workers}w {name} run {run + 1}: "
                        f"{len(result.latencies)} at {result.throughput:.1f}/s, p50 "
                        f"{percentile(result.latencies, 50) * 1000:.1f} p99 "
                        f"{percentile(result.latencies, 99) * 1000:.1f} ms, server CPU "
                        f"{result.server_cpu / max(len(result.latencies), 1) * 1000:.1f} "
                        f"ms/request, errors {result.errors} {bad or ''}")
            label = (f"{workers} worker{'s' if workers > 1 else ''}, {args.concurrency} clients, "
                     f"paced {rate:g} req/s (open loop)")
            for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
                fig = Figure("4b http", "postgresql", f"move-in, {label}, {name}", "ms",
                             [percentile(r.latencies, q) * 1000 for r in runs["move-in"]],
                             [percentile(r.latencies, q) * 1000 for r in runs["healthz"]],
                             notes="baseline: GET /healthz at the same rate; latency from the "
                                   "scheduled send time",
                             extra={"statuses": {k: [r.statuses for r in rs]
                                                 for k, rs in runs.items()},
                                    "achieved_rate": {k: [r.throughput for r in rs]
                                                      for k, rs in runs.items()},
                                    "server_cpu_ms_per_request": {
                                        k: [r.server_cpu / max(len(r.latencies), 1) * 1000
                                            for r in rs] for k, rs in runs.items()}}
                             if name == "p99" else {})
                if name == "p99":
                    judge(fig, "http")
                self.add(fig)

    def wrk_runs(self, base: str, path: str, token: str, workers: int, towns: list[str],
                 today: Any) -> None:
        """Figure 4c: closed loop from wrk, when installed (`make bench` installs it)."""
        args = self.args
        if shutil.which("wrk") is None:
            log("wrk is not installed: figure 4c skipped (apt-get install wrk)")
            return
        body = move_in_body(1, towns, today)
        body["address"]["banchi"] = "__BANCHI__"
        runs: dict[str, list[WrkResult]] = {"move-in": [], "healthz": []}
        for run in range(args.runs):
            for name, target in (("healthz", "/healthz"), ("move-in", path)):
                cpu = tree_cpu(SERVER_PID[0])
                result = wrk(base, target, token, body, args.concurrency, args.wrk_seconds,
                             self.workdir)
                assert result is not None
                result.server_cpu = tree_cpu(SERVER_PID[0]) - cpu
                runs[name].append(result)
                log(f"postgresql: wrk {workers}w {name} run {run + 1}: {result.requests} in "
                    f"{result.seconds:.1f} s, p50 {result.p50:.1f} p99 {result.p99:.1f} ms, "
                    f"{result.throughput:.0f}/s, server CPU "
                    f"{result.server_cpu / max(result.requests, 1) * 1000:.1f} ms/request, "
                    f"non-2xx {result.non2xx}, errors {result.errors}")
        label = (f"{workers} worker{'s' if workers > 1 else ''}, {args.concurrency} "
                 "connections, closed loop (wrk)")
        for name in ("p50", "p95", "p99"):
            fig = Figure("4c http", "postgresql", f"move-in, {label}, {name}", "ms",
                         [getattr(r, name) for r in runs["move-in"]],
                         [getattr(r, name) for r in runs["healthz"]],
                         notes="baseline: GET /healthz from wrk, same connections",
                         extra={"non2xx": {k: [r.non2xx for r in rs] for k, rs in runs.items()},
                                "errors": {k: [r.errors for r in rs] for k, rs in runs.items()},
                                "server_cpu_ms_per_request": {
                                    k: [r.server_cpu / max(r.requests, 1) * 1000 for r in rs]
                                    for k, rs in runs.items()}} if name == "p99" else {})
            if name == "p99":
                judge(fig, "http")
            self.add(fig)
        self.add(Figure("4c http", "postgresql", f"move-in, {label}, throughput", "req/s",
                        [r.throughput for r in runs["move-in"]],
                        [r.throughput for r in runs["healthz"]]))

    # ---------------------------------------------------------------------------------------

    def table(self) -> str:
        def num(v: float | None) -> str:
            if v is None or v != v:
                return "-"
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) < 10 else f"{v:,.1f}"

        info = self.info
        head = [
            f"Kiban registry benchmark — {info['date']}",
            f"machine: nproc {info['nproc']}, {info['cpu_model']}, load at start "
            f"{' '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}",
            f"Python {info['python']}, SQLite {info['sqlite']}, PostgreSQL "
            f"{info['postgresql'] or '-'}",
            f"residents {info['residents']:,}, runs {info['runs']} (medians shown), "
            f"queries {info['queries']}, certificates/run {info['certificates']}, "
            f"HTTP requests/run {info['requests']} x {info['concurrency']} clients",
            f"command: {info['command']}",
            "",
        ]
        cols = ("figure", "backend", "metric", "kiban", "render", "baseline", "ratio", "unit",
                "target", "met")
        rows = []
        for f in self.figures:
            rows.append((f.figure, f.backend, f.metric, num(f.kiban_median),
                         num(median(f.middle)) if f.middle else "",
                         num(f.baseline_median), f"{f.ratio:.2f}x" if f.ratio == f.ratio else "-",
                         f.unit, f.target, "" if f.met is None else ("yes" if f.met else "NO")))
        widths = [max(len(str(c)) for c in col) for col in zip(cols, *rows, strict=True)]
        line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
        out = [*head, line, "-" * len(line)]
        for r in rows:
            out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
        out.append("")
        out.append("ratio = kiban / baseline (for ms: how many times slower; for rates: share "
                   "of the floor). render = juminhyo.render alone.")
        return "\n".join(out)

    def write_json(self) -> Path:
        OUT.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        path = OUT / f"registry-{stamp}.json"
        payload = {"machine": self.info, "profiles": self.profiles, "figures": [
            {"figure": f.figure, "backend": f.backend, "metric": f.metric, "unit": f.unit,
             "kiban_median": f.kiban_median, "baseline_median": f.baseline_median,
             "render_median": median(f.middle) if f.middle else None,
             "ratio": f.ratio, "target": f.target, "met": f.met, "kiban_runs": f.kiban,
             "baseline_runs": f.baseline, "render_runs": f.middle, "notes": f.notes,
             **({"extra": f.extra} if f.extra else {})} for f in self.figures]}
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n",
                        encoding="utf-8")
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20,000 residents, fewer queries and requests")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--search-budget", type=float, default=120.0,
                        help="seconds per search run at most (the rest of the queries, in "
                             "random order, are skipped; the table says how many ran)")
    parser.add_argument("--certs", type=int, default=100, help="certificates per run and size")
    parser.add_argument("--requests", type=int, default=2000, help="HTTP requests per run")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="seconds per HTTP load run at most")
    parser.add_argument("--paced-rates", default="20,50",
                        help="comma-separated total arrival rates (req/s) for the open-loop "
                             "HTTP figure 4b; empty to skip it")
    parser.add_argument("--paced-seconds", type=float, default=10.0,
                        help="seconds per open-loop run")
    parser.add_argument("--wrk-seconds", type=float, default=10.0,
                        help="seconds per wrk run (figure 4c; skipped when wrk is missing)")
    parser.add_argument("--only", default="",
                        help="comma-separated subset of import,search,cert,http (one import "
                             "run is always made to have data)")
    parser.add_argument("--profile", action="store_true",
                        help="also make one extra, uncounted run of import, search and "
                             "certificates under cProfile (benchmarks/out/registry-*.prof)")
    args = parser.parse_args(argv)
    if args.quick:
        args.residents = 20_000 if args.residents == 1_000_000 else args.residents
        args.queries = min(args.queries, 200)
        args.certs = min(args.certs, 20)
        args.requests = min(args.requests, 400)
        args.paced_seconds = min(args.paced_seconds, 5.0)
        args.wrk_seconds = min(args.wrk_seconds, 5.0)
    # A terminated run still drops its databases and reports the figures it has.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(args)
    try:
        bench.run()
    finally:
        if bench.figures:
            print(bench.table())
            path = bench.write_json()
            print(f"\nJSON: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
