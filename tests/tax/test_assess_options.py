"""The annual run assesses with the municipality's own tax settings (級地, ordinance rates,
指定都市), the same options the single calculation uses (TaxCalculator.options), on SQLite and
PostgreSQL; a change of settings re-assesses (更正) everyone whose amounts it changes."""

from __future__ import annotations

import io

from assess_kit import FY, officers, residents, synthetic_income
from sqlalchemy import select

from kiban.tax import batch_store, engine
from kiban.tax.assessment import standard_options
from kiban.tax.calculator import TaxCalculator
from kiban.tax.requests import parse_calculation_request
from kiban_testkit import LG_A, World

ORDINANCE = {"name": "千代田区特別区税条例", "promulgated_on": "2025-03-01"}


def _stored(world: World) -> dict[str, tuple[int, int]]:
    with world.svc.db.tenant(LG_A) as conn:
        c = batch_store.assessments.c
        return {r.resident_id: (r.version, r.total) for r in conn.execute(
            select(c.resident_id, c.version, c.total).where(c.lgcode == LG_A))}


def test_a_run_uses_the_municipality_settings(world: World) -> None:
    residents(world, 120)
    town = world.svc.assessments
    assert town.import_csv("t", LG_A, FY, io.StringIO(synthetic_income(world)))["rejected"] == 0
    tax_a, _ = officers(world)
    calculator = TaxCalculator(world.svc.db, world.svc.clock)
    town.assess(LG_A, FY, job_size=50)
    before = _stored(world)
    assert all(version == 1 for version, _ in before.values())

    calculator.update_settings(tax_a, LG_A, FY, {
        "grade": "3", "municipal_income_rate": "6.5", "municipal_per_capita": 3500,
        "ordinance": ORDINANCE})
    options = calculator.options(LG_A, FY)
    summary = town.assess(LG_A, FY, job_size=50)
    after = _stored(world)
    assert summary["corrected"] == summary["taxpayers"] == len(after)  # the option set changed
    changed = 0
    for resident_id, (version, total) in after.items():
        view = town.of_resident(tax_a, LG_A, FY, resident_id)
        single = parse_calculation_request({"fiscal_year": FY, **view["input"]})
        alone = engine.compute(engine.population_from_requests([single]), FY, options)
        statutory = engine.compute(engine.population_from_requests([single]), FY,
                                   standard_options(LG_A, FY))
        assert version == 2
        assert int(alone.total[0]) == total == view["calculation"]["total"], resident_id
        assert int(statutory.total[0]) == before[resident_id][1]
        changed += total != before[resident_id][1]
    assert changed > 30  # 6.5 % and 3,500 yen change most taxed people's amounts
