#!/usr/bin/env python
"""Annual assessment benchmark: `kiban tax assess` end to end, from and to the database, beside
a baseline measured in the same run.

    .venv/bin/python benchmarks/tax_assess.py                        # 1,000,000 taxpayers, both
    .venv/bin/python benchmarks/tax_assess.py --residents 200000 --backend sqlite
    .venv/bin/python benchmarks/tax_assess.py --quick                # 20,000: a smoke run

Set up (not timed as the figure): a throw-away database, N synthetic residents imported
through the registry's migration (kiban.registry.synthetic), their synthetic income data
(kiban.tax.batch_synthetic) imported with `kiban tax import`.

Figures, each the median of --runs runs on a database restored to the same state:
1. assess     `kiban tax assess --lgcode … --year 2026` as a subprocess (the CLI, its start-up
              included), every taxpayer new: read residents and income records, compute, write
              one assessment and one version per taxpayer [target: 1,000,000 in <= 60 s].
2. unchanged  the same command again: every input hash unchanged, nothing written.
Baseline: the bare work of 1 without any rule — read the same resident rows and income
records with the raw driver, and bulk-write the same number of rows of the same width
(executemany on SQLite; COPY as the table owner on PostgreSQL) into a scratch table.

Results go to stdout and to benchmarks/out/tax-assess-<date>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import psycopg  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from kiban.core.clock import FixedClock  # noqa: E402
from kiban.platform import settings as settings_module  # noqa: E402
from kiban.platform.migrate import upgrade  # noqa: E402
from kiban.registry import synthetic  # noqa: E402
from kiban.registry.migration import RegistryMigration  # noqa: E402
from kiban.tax.batch_synthetic import income_csv  # noqa: E402
from kiban.web.context import Services  # noqa: E402

PG_URL = os.environ.get("KIBAN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
LGCODE = "131016"
FY = 2026
CLOCK = FixedClock(datetime(2026, 4, 1, 1, 0, tzinfo=UTC))
KIBAN = str(Path(sys.executable).parent / "kiban")
TARGET_SECONDS = 60.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pg_url(database: str, user: str = "postgres") -> str:
    base = settings_module.normalise_url(PG_URL).rsplit("/", 1)[0] + f"/{database}"
    return base.replace("://postgres@", f"://{user}@")


def admin(sql: str) -> None:
    engine = create_engine(settings_module.normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def environment(backend: str, workdir: Path, name: str) -> dict[str, str]:
    if backend == "sqlite":
        return {"KIBAN_DATABASE_URL": f"sqlite:///{workdir / name}.db", "KIBAN_MODE": "test"}
    return {"KIBAN_DATABASE_URL": pg_url(name, "kiban_app"),
            "KIBAN_DATABASE_ADMIN_URL": pg_url(name), "KIBAN_MODE": "test"}


def prepare(backend: str, workdir: Path, residents: int) -> tuple[str, dict[str, str]]:
    """A database with the residents and their income data; returns (name, environment)."""
    name = f"kiban_taxbench_{uuid.uuid4().hex[:8]}"
    if backend == "postgresql":
        admin(f'CREATE DATABASE "{name}"')
    env = environment(backend, workdir, name)
    settings = settings_module.load(env)
    upgrade(settings)
    svc = Services.build(settings, CLOCK)
    now = CLOCK.now()
    towns = synthetic.town_master(7)
    svc.municipalities.create(LGCODE, "千代田区", "東京都", now)
    svc.municipalities.set_towns(LGCODE, towns, now, "bench")
    supervisor = svc.accounts.create("bench-sup", "correct-horse-battery", "計測", [
        "registry_supervisor"], LGCODE, now)
    started = time.perf_counter()
    out = io.StringIO()
    synthetic.write_jsonl(synthetic.population(LGCODE, [t["code"] for t in towns], residents,
                                               seed=11, as_of=date(2025, 12, 1)), out)
    report = RegistryMigration(svc.db, CLOCK).import_(supervisor, LGCODE,
                                                      io.StringIO(out.getvalue()))
    assert report.ok, report.lines()[:5]
    del out
    log(f"{backend}: {residents:,} residents imported in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    csv_path = workdir / f"{name}-income.csv"
    csv_path.write_text(income_csv(svc.registry.taxpayers_on(LGCODE, date(FY, 1, 1)), FY, 3),
                        encoding="utf-8")
    done = subprocess.run([KIBAN, "tax", "import", "--lgcode", LGCODE, "--year", str(FY),
                           str(csv_path)], env={**os.environ, **env}, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    log(f"{backend}: income data imported in {time.perf_counter() - started:.1f} s "
        f"({json.loads(done.stdout)['added']:,} records)")
    svc.db.dispose()
    return name, env


def snapshot(backend: str, env: dict[str, str], workdir: Path, name: str) -> Any:
    """A copy of the prepared database, to restore before each timed run."""
    if backend == "sqlite":
        path = Path(env["KIBAN_DATABASE_URL"].split("///", 1)[1])
        copy = workdir / f"{name}-snapshot.db"
        shutil.copyfile(path, copy)
        return copy
    template = f"{name}_tpl"
    admin(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
    return template


def restore(backend: str, env: dict[str, str], name: str, saved: Any) -> None:
    if backend == "sqlite":
        path = Path(env["KIBAN_DATABASE_URL"].split("///", 1)[1])
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(saved, path)
        return
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}" TEMPLATE "{saved}"')


def assess(env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run([KIBAN, "tax", "assess", "--lgcode", LGCODE, "--year", str(FY),
                           "--quiet"], env={**os.environ, **env}, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return seconds, json.loads(done.stdout)


def baseline(backend: str, env: dict[str, str], rows: int) -> float:
    """Read the residents (joined to their households) and the income records with the raw
    driver; write `rows` rows as wide as an assessment version into a scratch table."""
    width = "x" * 420  # about the size of a stored request
    started = time.perf_counter()
    read = ("SELECT r.id, r.juminhyo_code, r.my_number, r.family_name, r.given_name, "
            "r.birth_date, r.sex, h.town_code, h.banchi, h.katagaki FROM residents r "
            "LEFT JOIN households h ON h.lgcode = r.lgcode AND h.id = r.household_id "
            "WHERE r.lgcode = '131016' ORDER BY r.id")
    records = "SELECT resident_id, data, content_hash FROM tax_income_records ORDER BY resident_id"
    if backend == "sqlite":
        import sqlite3
        path = env["KIBAN_DATABASE_URL"].split("///", 1)[1]
        conn = sqlite3.connect(path)
        people = conn.execute(read).fetchall()
        income = conn.execute(records).fetchall()
        conn.execute("CREATE TABLE scratch (lgcode TEXT, id TEXT, version INT, input TEXT, "
                     "total INT, hash TEXT, created_at TEXT, PRIMARY KEY (lgcode, id, version))")
        conn.executemany("INSERT INTO scratch VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (("131016", f"{i:032d}", 1, width, i, "h" * 64, "2026-04-01")
                          for i in range(rows)))
        conn.commit()
        conn.close()
    else:
        owner = settings_module.normalise_url(env["KIBAN_DATABASE_ADMIN_URL"]).replace(
            "postgresql+psycopg://", "postgresql://")
        with psycopg.connect(owner) as conn:
            people = conn.execute(read).fetchall()
            income = conn.execute(records).fetchall()
            conn.execute("CREATE TABLE scratch (lgcode text, id text, version int, input text, "
                         "total bigint, hash text, created_at text, "
                         "PRIMARY KEY (lgcode, id, version))")
            with conn.cursor().copy("COPY scratch FROM STDIN") as copy:
                for i in range(rows):
                    copy.write_row(("131016", f"{i:032d}", 1, width, i, "h" * 64, "2026-04-01"))
    assert len(people) >= rows and income
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.residents, args.runs = 20_000, 1
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {"date": date.today().isoformat(), "residents": args.residents,
                               "machine": f"{platform.node()}, {os.cpu_count()} cores",
                               "python": platform.python_version(), "figures": {}}
    workdir = Path(tempfile.mkdtemp(prefix="kiban-taxbench-"))
    try:
        for backend in backends:
            name, env = prepare(backend, workdir, args.residents)
            saved = snapshot(backend, env, workdir, name)
            firsts, seconds, bases, taxpayers = [], [], [], 0
            try:
                for run in range(args.runs):
                    restore(backend, env, name, saved)
                    first, summary = assess(env)
                    second, again = assess(env)
                    taxpayers = summary["taxpayers"]
                    assert summary["created"] == taxpayers and again["unchanged"] == taxpayers
                    restore(backend, env, name, saved)
                    base = baseline(backend, env, taxpayers)
                    firsts.append(first)
                    seconds.append(second)
                    bases.append(base)
                    log(f"{backend} run {run + 1}: assess {first:.1f} s, unchanged {second:.1f} s,"
                        f" baseline {base:.1f} s ({taxpayers:,} taxpayers)")
            finally:
                if backend == "postgresql":
                    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    admin(f'DROP DATABASE IF EXISTS "{saved}" WITH (FORCE)')
            figure = {"taxpayers": taxpayers, "assess_s": statistics.median(firsts),
                      "unchanged_s": statistics.median(seconds),
                      "baseline_s": statistics.median(bases), "runs": args.runs}
            figure["taxpayers_per_s"] = taxpayers / figure["assess_s"]
            figure["ratio_to_baseline"] = figure["assess_s"] / figure["baseline_s"]
            figure["projected_1m_s"] = figure["assess_s"] * 1_000_000 / max(taxpayers, 1)
            figure["target_met"] = figure["projected_1m_s"] <= TARGET_SECONDS
            results["figures"][backend] = figure
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'backend':<11}{'taxpayers':>11}{'assess s':>10}{'per s':>10}{'unchanged s':>13}"
          f"{'baseline s':>12}{'ratio':>7}{'1M proj. s':>12}  target <= 60 s (1M)")
    for backend, f in results["figures"].items():
        print(f"{backend:<11}{f['taxpayers']:>11,}{f['assess_s']:>10.1f}"
              f"{f['taxpayers_per_s']:>10,.0f}{f['unchanged_s']:>13.1f}{f['baseline_s']:>12.1f}"
              f"{f['ratio_to_baseline']:>7.1f}{f['projected_1m_s']:>12.0f}  "
              f"{'met' if f['target_met'] else 'NOT met'}")
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / f"tax-assess-{results['date']}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
