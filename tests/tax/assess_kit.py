"""Shared set-up of the assessment tests: tax officers, a synthetic registry population, its
income data, and the assessment service."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from kiban.platform.auth import StaffMember
from kiban.registry import synthetic
from kiban.registry.migration import RegistryMigration
from kiban.tax.assessment import Assessments
from kiban.tax.batch_synthetic import income_csv
from kiban_testkit import LG_A, LG_B, PASSWORD, TOWNS, World

FY = 2026
JANUARY_1 = date(FY, 1, 1)


def officers(world: World) -> tuple[StaffMember, StaffMember]:
    acc, now = world.svc.accounts, world.svc.clock.now()
    return (acc.create("tax-a", PASSWORD, "税務 一子", ["tax_officer"], LG_A, now),
            acc.create("tax-b", PASSWORD, "税務 二郎", ["tax_officer"], LG_B, now))


def service(world: World) -> Assessments:
    svc = world.svc
    existing = getattr(svc, "assessments", None)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    return Assessments(svc.db, svc.clock, svc.registry, svc.municipalities)


def residents(world: World, n: int, lgcode: str = LG_A, seed: int = 5) -> None:
    """`n` synthetic residents, imported through the registry's migration."""
    out = io.StringIO()
    records = synthetic.population(lgcode, [t["code"] for t in TOWNS], n, seed=seed,
                                   as_of=date(2025, 12, 1))
    synthetic.write_jsonl(records, out)
    actor = world.supervisor_a
    if lgcode != LG_A:
        actor = world.svc.accounts.create(f"sup-{lgcode}", PASSWORD, "責任 者",
                                          ["registry_supervisor"], lgcode,
                                          world.svc.clock.now())
    report = RegistryMigration(world.svc.db, world.svc.clock).import_(
        actor, lgcode, io.StringIO(out.getvalue()))
    assert not getattr(report, "errors", None), report


def taxpayers(world: World, lgcode: str = LG_A) -> list[tuple[Any, ...]]:
    return world.svc.registry.taxpayers_on(lgcode, JANUARY_1)


def synthetic_income(world: World, lgcode: str = LG_A, seed: int = 1) -> str:
    return income_csv(taxpayers(world, lgcode), FY, seed)
