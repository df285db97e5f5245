"""The synthetic population: deterministic, valid, and shaped like Japan's."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from datetime import date
from typing import Any

from kiban.core.checkdigits import is_valid_juminhyo_code, is_valid_my_number
from kiban.core.text import clean_name, fold_kana, is_kana_reading
from kiban.registry import synthetic
from kiban.registry.migration import RESIDENT_FIELDS, RegistryMigration
from kiban.registry.model import HEAD, RELATIONSHIPS
from kiban_testkit import LG_A, TOWNS, World

AS_OF = date(2026, 4, 1)
CODES = [t["code"] for t in TOWNS]


def generate(n: int, seed: int = 3) -> list[dict[str, Any]]:
    return list(synthetic.population(LG_A, CODES, n, seed=seed, as_of=AS_OF))


def residents(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("type") == "resident"]


def test_deterministic_for_a_seed() -> None:
    assert generate(500) == generate(500)
    assert generate(500) != generate(500, seed=4)
    assert synthetic.town_master(9) == synthetic.town_master(9)


def test_exact_count_and_complete_records() -> None:
    records = generate(1234)
    assert records[0]["format"] == "kiban-registry/1" and records[0]["lgcode"] == LG_A
    people = residents(records)
    assert len(people) == 1234
    assert all(list(r) == list(RESIDENT_FIELDS) for r in people)


def test_codes_have_valid_check_digits_and_are_unique() -> None:
    people = residents(generate(3000))
    codes = [r["juminhyo_code"] for r in people]
    assert all(is_valid_juminhyo_code(c) for c in codes)
    assert len(set(codes)) == len(codes)
    numbers = [r["my_number"] for r in people if r["my_number"]]
    assert 0.8 < len(numbers) / len(people) < 0.97  # some, not all
    assert all(is_valid_my_number(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)
    assert len({r["id"] for r in people}) == len(people)


def test_one_head_per_active_household() -> None:
    records = generate(3000)
    households = {r["id"]: r for r in records if r.get("type") == "household"}
    members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in residents(records):
        members[r["household_id"]].append(r)
    assert set(members) == set(households)
    for hid, hh in households.items():
        active = [m for m in members[hid] if m["status"] == "active"]
        if hh["status"] == "active":
            heads = [m["id"] for m in active if m["relationship"] == HEAD]
            assert heads == [hh["head_id"]]
        else:
            assert not active
        assert hh["address"]["town_code"] in CODES
    assert all(r["relationship"] in RELATIONSHIPS for r in residents(records))


def test_names_have_katakana_readings() -> None:
    for r in residents(generate(3000)):
        for name in ("family_kana", "given_kana"):
            assert is_kana_reading(r[name]) and fold_kana(r[name]) == r[name]
        assert clean_name(r["family_name"]) == r["family_name"]
    for kanji, kana in synthetic.SURNAMES:
        assert kanji and fold_kana(kana) == kana and is_kana_reading(kana)
    assert len(synthetic.SURNAMES) >= 200
    for cohorts in synthetic.GIVEN_NAMES.values():
        for names in cohorts:
            assert all(is_kana_reading(kana) for _, kana in names)


def test_population_looks_like_japan() -> None:
    people = residents(generate(20000))
    active = [r for r in people if r["status"] == "active"]
    ages = Counter()
    for r in active:
        born = date.fromisoformat(r["birth_date"])
        age = AS_OF.year - born.year - ((AS_OF.month, AS_OF.day) < (born.month, born.day))
        assert 0 <= age <= 110
        ages["child" if age < 15 else "old" if age >= 65 else "working"] += 1
    assert 0.07 < ages["child"] / len(active) < 0.18
    assert 0.20 < ages["old"] / len(active) < 0.40
    foreign = [r for r in people if r["foreign"]]
    assert 0.01 < len(foreign) / len(people) < 0.04
    for r in foreign:
        f = r["foreign"]
        assert f["nationality"] and f["residence_status"] and f["card_number"] and not r["honseki"]
        assert len(f["card_number"]) == 12
    removed = [r for r in people if r["status"] == "removed"]
    assert 0.01 < len(removed) / len(people) < 0.08
    assert {r["removal_reason"] for r in removed} <= {"死亡", "転出", "国外転出"}
    households = len({r["household_id"] for r in people})
    assert 1.9 < len(people) / households < 2.6  # Japan: about 2.2 people per household
    assert {r["sex"] for r in people} == {"1", "2"}


def test_town_master() -> None:
    towns = synthetic.town_master(5)
    assert 20 <= len(towns) <= 60
    assert len({t["code"] for t in towns}) == len(towns)
    assert all(t["code"].isdigit() and len(t["code"]) == 7 and t["name"] for t in towns)
    assert len(synthetic.town_master(5, count=80)) == 80


def test_population_passes_the_import_validation(sqlite_world: World) -> None:
    out = io.StringIO()
    count = synthetic.write_jsonl(generate(2000), out)
    assert count == 2000
    report = RegistryMigration(sqlite_world.svc.db, sqlite_world.svc.clock).validate(
        sqlite_world.supervisor_a, LG_A, io.StringIO(out.getvalue()))
    assert report.ok, report.lines()[:10]
    assert report.residents == 2000
