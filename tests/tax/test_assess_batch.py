"""The annual assessment on SQLite and PostgreSQL: every resident of 1 January assessed once;
a repeated run stores nothing new; corrected income data gives a 更正 with its history and
difference; batch results equal the same people computed one at a time; a run killed with
SIGKILL and run again ends with the same results and no duplicates; several workers share the
PostgreSQL queue; another municipality sees nothing."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from assess_kit import FY, JANUARY_1, officers, residents, service, synthetic_income, taxpayers
from sqlalchemy import func, select

from kiban.core.errors import Forbidden, NotFound
from kiban.tax import batch_store, engine
from kiban.tax.assessment import Assessments, standard_options
from kiban.tax.requests import parse_calculation_request
from kiban_testkit import LG_A, LG_B, World, move_in_data

ROOT = Path(__file__).resolve().parents[2]


def stored(world: World) -> dict[str, tuple[int, int]]:
    """resident_id -> (version, total) of every stored assessment of A."""
    with world.svc.db.tenant(LG_A) as conn:
        c = batch_store.assessments.c
        return {r.resident_id: (r.version, r.total) for r in conn.execute(
            select(c.resident_id, c.version, c.total).where(c.lgcode == LG_A))}


def version_count(world: World) -> int:
    with world.svc.db.tenant(LG_A) as conn:
        return int(conn.execute(select(func.count()).select_from(
            batch_store.versions)).scalar_one())


@pytest.fixture
def town(world: World) -> Assessments:
    residents(world, 240)
    svc = service(world)
    report = svc.import_csv("t", LG_A, FY, io.StringIO(synthetic_income(world)))
    assert report["rejected"] == 0 and report["added"] > 100
    return svc


def test_a_run_assesses_every_resident_of_january_1_once(world: World, town: Assessments
                                                        ) -> None:
    world.svc.registry.move_in(world.clerk_a, LG_A, move_in_data())  # after 1 January
    people = taxpayers(world)
    summary = town.assess(LG_A, FY, job_size=50)
    assert summary["status"] == "done" and summary["jobs"] == summary["jobs_done"] == 5
    assert summary["created"] == summary["taxpayers"] == len(people) == 240 - _removed(world)
    assert sum(b["count"] for b in summary["histogram"]) == len(people)
    assert set(stored(world)) == {p[0] for p in people}
    again = town.assess(LG_A, FY, job_size=50)
    assert again["id"] != summary["id"]
    assert (again["created"], again["corrected"], again["unchanged"]) == (0, 0, len(people))
    assert version_count(world) == len(people)


def _removed(world: World) -> int:
    """Synthetic residents who were no residents on 1 January (除票 before it)."""
    from kiban.registry import store
    with world.svc.db.tenant(LG_A) as conn:
        c = store.residents.c
        return int(conn.execute(select(func.count()).select_from(store.residents).where(
            c.lgcode == LG_A, c.removed_on.is_not(None), c.removed_on <= JANUARY_1)
        ).scalar_one())


def test_batch_equals_one_taxpayer_at_a_time(world: World, town: Assessments) -> None:
    tax_a, _ = officers(world)
    town.assess(LG_A, FY, job_size=150)
    options = standard_options(LG_A, FY)
    taxed = 0
    for resident_id, (_, total) in stored(world).items():
        view = town.of_resident(tax_a, LG_A, FY, resident_id)
        single = parse_calculation_request({"fiscal_year": FY, **view["input"]})
        alone = engine.compute(engine.population_from_requests([single]), FY, options)
        assert int(alone.total[0]) == total == view["calculation"]["total"], resident_id
        taxed += total > 0
    assert taxed > 30


def test_corrected_income_data_gives_a_correction_with_history(world: World,
                                                               town: Assessments) -> None:
    tax_a, _ = officers(world)
    town.assess(LG_A, FY)
    text = synthetic_income(world)
    lines = text.splitlines()
    header = lines[0].split(",")
    column = header.index("salary_revenue")
    target = next(i for i, line in enumerate(lines[1:], 1)
                  if line.split(",")[0] == "salary" and line.split(",")[column])
    cells = lines[target].split(",")
    cells[column] = str(int(cells[column]) + 1_000_000)
    lines[target] = ",".join(cells)
    report = town.import_csv("t", LG_A, FY, io.StringIO("\r\n".join(lines) + "\r\n"))
    assert report["corrected"] == 1
    summary = town.assess(LG_A, FY)
    assert (summary["corrected"], summary["created"]) == (1, 0)
    changed = [rid for rid, (version, _) in stored(world).items() if version == 2]
    assert len(changed) == 1
    view = town.of_resident(tax_a, LG_A, FY, changed[0])
    first, second = view["history"]
    assert second["reason"] and second["difference"] == second["total"] - first["total"] > 0
    assert view["input"]["income"]["salary_revenue"] == int(cells[column])


def test_tenant_isolation_and_roles(world: World, town: Assessments) -> None:
    tax_a, tax_b = officers(world)
    summary = town.assess(LG_A, FY, job_size=200)
    resident_id = next(iter(stored(world)))
    with pytest.raises(Forbidden):
        town.of_resident(tax_b, LG_A, FY, resident_id)
    with pytest.raises(NotFound):
        town.of_resident(tax_b, LG_B, FY, resident_id)
    with pytest.raises(NotFound):
        town.run_summary(tax_b, LG_B, summary["id"])
    assert town.runs(tax_b, LG_B) == []
    assert town.search(tax_b, LG_B, FY) == []
    with pytest.raises(Forbidden):
        town.runs(world.clerk_a, LG_A)
    assert len(town.search(tax_a, LG_A, FY)) == 50


def _env(world: World, **extra: str) -> dict[str, str]:
    settings = world.backend.settings
    return {**os.environ, "KIBAN_DATABASE_URL": settings.database_url,
            "KIBAN_DATABASE_ADMIN_URL": settings.admin_database_url, "KIBAN_MODE": "test",
            **extra}


def _jobs_done(world: World) -> tuple[int, int]:
    with world.svc.db.platform() as conn:
        done = conn.execute(select(func.count()).select_from(batch_store.jobs).where(
            batch_store.jobs.c.status == "done")).scalar_one()
        total = conn.execute(select(func.count()).select_from(batch_store.jobs)).scalar_one()
    return int(done), int(total)


def test_sigkill_mid_run_then_resume(world: World, town: Assessments) -> None:
    command = [str(Path(sys.executable).parent / "kiban"), "tax", "assess", "--lgcode", LG_A,
               "--year", str(FY), "--job-size", "50", "--quiet"]
    process = subprocess.Popen(command, env=_env(world, KIBAN_TAX_JOB_PAUSE="0.4"),
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _jobs_done(world)[0] < 2:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)  # claimed a job, maybe mid-write: killed anyway
    finally:
        process.wait(timeout=30)
    done, total = _jobs_done(world)
    assert 2 <= done < total
    partial = stored(world)
    assert 0 < len(partial) < 240
    again = subprocess.run(command, env=_env(world), cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert _jobs_done(world)[0] == total  # the same run, resumed
    results = stored(world)
    people = taxpayers(world)
    assert set(results) == {p[0] for p in people}
    assert all(version == 1 for version, _ in results.values())
    assert version_count(world) == len(people)
    # The same results as a run that was never interrupted (computed here, in process).
    tax_a, _ = officers(world)
    for resident_id, (_, total_tax) in list(results.items())[:60]:
        view = town.of_resident(tax_a, LG_A, FY, resident_id)
        assert view["calculation"]["total"] == total_tax


def test_workers_share_the_postgresql_queue(pg_world: World) -> None:
    residents(pg_world, 300)
    svc = service(pg_world)
    svc.import_csv("t", LG_A, FY, io.StringIO(synthetic_income(pg_world)))
    run = svc.plan(LG_A, FY, job_size=20)
    seen: dict[str, int] = {}

    def work(name: str) -> None:
        own = Assessments(pg_world.svc.db, pg_world.svc.clock, pg_world.svc.registry,
                          pg_world.svc.municipalities)
        seen[name] = own.work(name)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    summary = svc.run_summary_system(LG_A, run["id"])
    assert sum(seen.values()) == summary["jobs"] == summary["jobs_done"] == 15
    assert sum(1 for n in seen.values() if n) >= 2, seen  # shared, not one worker alone
    assert summary["created"] == summary["taxpayers"]
    with pg_world.svc.db.platform() as conn:
        workers = {r.worker for r in conn.execute(select(batch_store.jobs.c.worker))}
    assert workers == {name for name, n in seen.items() if n}


def test_a_run_resumes_instead_of_starting_again(world: World, town: Assessments) -> None:
    run = town.plan(LG_A, FY, job_size=100)
    assert town.work(run_id=run["id"], max_jobs=1) == 1
    assert town.plan(LG_A, FY)["id"] == run["id"]
    summary: dict[str, Any] = town.assess(LG_A, FY)
    assert summary["id"] == run["id"] and summary["status"] == "done"
