"""Helpers of the privacy tests: an app over a test world, a staff member holding every
municipal role, a seeded household, and counts of access records."""

from __future__ import annotations

import io
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kiban.privacy.store import access_records
from kiban.registry import synthetic
from kiban.registry.migration import RegistryMigration
from kiban.registry.store import access_log
from kiban_testkit import LG_A, PASSWORD, TOWNS, World, bearer, move_in_data, person

ALL_ROLES = ["registry_supervisor", "municipality_admin", "privacy_officer", "counter_clerk"]


def make_staff(world: World, username: str, roles: list[str], lgcode: str = LG_A,
               department: str = "市民課") -> None:
    world.svc.accounts.create(username, PASSWORD, f"{username} 職員", roles, lgcode,
                              world.svc.clock.now(), department=department)


def seed_household(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    """A household of two with a distinctive name; returns ids."""
    data = move_in_data(members=[
        person(family_name="鷲尾", family_kana="ワシオ"),
        person(family_name="鷲尾", family_kana="ワシオ", given_name="花子", given_kana="ハナコ",
               sex="2", relationship="妻", birth_date="1982-07-07")])
    response = client.post(f"/api/v1/municipalities/{LG_A}/changes/move-in", json=data,
                           headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    return body


def access_counts(world: World, lgcode: str = LG_A) -> int:
    with world.svc.db.tenant(lgcode) as conn:
        a = conn.execute(select(func.count()).select_from(access_log)
                         .where(access_log.c.lgcode == lgcode)).scalar() or 0
        b = conn.execute(select(func.count()).select_from(access_records)
                         .where(access_records.c.lgcode == lgcode)).scalar() or 0
    return int(a) + int(b)


def import_population(world: World, n: int, lgcode: str = LG_A, seed: int = 3) -> None:
    """`n` synthetic residents through the registry's own import."""
    svc = world.svc
    supervisor = svc.accounts.create(f"importer-{lgcode}-{seed}", PASSWORD, "取込",
                                     ["registry_supervisor"], lgcode, svc.clock.now())
    buf = io.StringIO()
    synthetic.write_jsonl(synthetic.population(lgcode, [t["code"] for t in TOWNS], n, seed=seed,
                                               as_of=date(2026, 3, 1)), buf)
    result = RegistryMigration(svc.db, svc.clock).import_(supervisor, lgcode,
                                                          io.StringIO(buf.getvalue()))
    assert not result.errors, result.errors[:3]


__all__ = ["ALL_ROLES", "access_counts", "bearer", "import_population", "make_staff",
           "seed_household"]
