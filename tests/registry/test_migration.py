"""The standard migration format (export, validation, import), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import fields
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from kiban.core.checkdigits import with_check_digit
from kiban.core.errors import Forbidden
from kiban.platform import ledger
from kiban.registry import migration, store, synthetic
from kiban.registry.migration import RegistryMigration, Report
from kiban.registry.model import ForeignStatus, Household, Resident
from kiban_testkit import LG_A, LG_B, TOWNS, World, move_in_data, person

AS_OF = date(2026, 4, 1)  # the fixed clock's day (JST)
TOWN_CODES = [t["code"] for t in TOWNS]


def mig(world: World) -> RegistryMigration:
    return RegistryMigration(world.svc.db, world.svc.clock)


def population(n: int, seed: int = 1, lgcode: str = LG_A) -> list[dict[str, Any]]:
    return list(synthetic.population(lgcode, TOWN_CODES, n, seed=seed, as_of=AS_OF))


def jsonl(records: list[Any]) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                   for r in records)


def export(world: World, lgcode: str, fmt: str = "jsonl") -> str:
    out = io.StringIO()
    mig(world).export(world.supervisor_a if lgcode == LG_A else supervisor_b(world), lgcode,
                      out, fmt)
    return out.getvalue()


def supervisor_b(world: World) -> Any:
    existing = [m for m in world.svc.accounts.list(LG_B) if m.username == "super-b"]
    if existing:
        return existing[0]
    return world.svc.accounts.create("super-b", "correct-horse-battery", "責任 次郎",
                                     ["registry_supervisor"], LG_B, world.svc.clock.now())


def import_text(world: World, text: str, lgcode: str = LG_A, **options: Any) -> Report:
    actor = world.supervisor_a if lgcode == LG_A else supervisor_b(world)
    return mig(world).import_(actor, lgcode, io.StringIO(text), **options)


def table_rows(world: World, lgcode: str) -> tuple[list[dict], list[dict]]:
    """Every stored column but lgcode, ordered by id."""
    with world.svc.db.tenant(lgcode) as conn:
        residents = [
            {k: v for k, v in r._mapping.items() if k != "lgcode"}
            for r in conn.execute(select(store.residents).where(
                store.residents.c.lgcode == lgcode).order_by(store.residents.c.id))]
        households = [
            {k: v for k, v in r._mapping.items() if k != "lgcode"}
            for r in conn.execute(select(store.households).where(
                store.households.c.lgcode == lgcode).order_by(store.households.c.id))]
    return residents, households


def ledger_state(world: World, lgcode: str) -> tuple[int, str]:
    with world.svc.db.tenant(lgcode) as conn:
        return ledger.head(conn, lgcode)


def import_entries(world: World, lgcode: str) -> list[dict]:
    with world.svc.db.tenant(lgcode) as conn:
        return ledger.entries(conn, lgcode, kind="registry.import", limit=10_000)


def errors_at(report: Report) -> set[tuple[int, str]]:
    return {(e.line, e.field) for e in report.errors}


def rich_registry(world: World) -> None:
    """A's registry through the service's own changes: families, a birth, a foreign
    resident, a death of a head, a move-out (除票 and a removed household), a split and
    merge (a removed household with no members), a cancelled move-in (void records),
    corrections; then a synthetic population imported on top."""
    reg, clerk, sup = world.svc.registry, world.clerk_a, world.supervisor_a
    ids = reg.move_in(clerk, LG_A, move_in_data())["resident_ids"]
    hh = reg.get(clerk, LG_A, ids[0])["household_id"]
    reg.birth(clerk, LG_A, {"household_id": hh, "notified_on": "2026-03-31",
                            "child": person(given_name="一郎", given_kana="イチロウ",
                                            birth_date="2026-03-20", relationship="子")})
    reg.move_in(clerk, LG_A, move_in_data(origin="abroad", previous_address="", members=[
        person(family_name="NGUYEN", given_name="VAN AN", family_kana="グエン",
               given_kana="ヴァンアン", my_number=with_check_digit("12345678901", "my_number"),
               foreign={"nationality": "ベトナム", "residence_status": "技能実習",
                        "period": "1年", "expiry": "2027-03-31", "card_number": "ab12345678cd",
                        "alias": "", "category": "中長期在留者"})]))
    widow = reg.move_in(clerk, LG_A, move_in_data(address={
        "town_code": "0002001", "banchi": "3-4"}))["resident_ids"]
    reg.death(clerk, LG_A, {"resident_id": widow[0], "occurred_on": "2026-03-30",
                            "notified_on": "2026-03-31", "remaining_head_id": widow[1]})
    leaving = reg.move_in(clerk, LG_A, move_in_data(members=[person(
        family_name="鈴木", family_kana="スズキ")]))["resident_ids"]
    reg.move_out(clerk, LG_A, {"resident_ids": leaving, "planned_on": "2026-04-01",
                               "notified_on": "2026-04-01", "destination": "大阪府大阪市"})
    pair = reg.move_in(clerk, LG_A, move_in_data(members=[
        person(family_name="高橋", family_kana="タカハシ"),
        person(family_name="高橋", family_kana="タカハシ", given_name="次郎",
               given_kana="ジロウ", relationship="子", birth_date="2005-01-01")]))["resident_ids"]
    pair_hh = reg.get(clerk, LG_A, pair[0])["household_id"]
    split = reg.split_household(clerk, LG_A, {
        "household_id": pair_hh, "member_ids": [pair[1]], "new_head_id": pair[1],
        "occurred_on": "2026-03-31", "notified_on": "2026-03-31"})
    reg.merge_households(clerk, LG_A, {
        "household_id": pair_hh, "other_household_id": split["detail"]["to_household"],
        "relationships": {pair[1]: "子"}, "occurred_on": "2026-03-31",
        "notified_on": "2026-03-31"})
    cancelled = reg.move_in(clerk, LG_A, move_in_data(members=[person(
        family_name="誤登録", family_kana="ゴトウロク")]))
    reg.cancel(sup, LG_A, {"event_id": cancelled["event_id"], "reason": "誤入力"})
    reg.correct(sup, LG_A, {"resident_id": ids[1], "updates": {"given_name": "華子"},
                            "reason": "誤記"})
    report = import_text(world, jsonl(population(40)))
    assert report.ok, report.lines()


# --- the format matches the model ------------------------------------------------------------


def test_format_lists_every_field_of_the_model() -> None:
    assert set(migration.RESIDENT_FIELDS) - {"type"} == {f.name for f in fields(Resident)} - {
        "lgcode"}
    assert set(migration.HOUSEHOLD_FIELDS) - {"type"} == {f.name for f in fields(Household)} - {
        "lgcode"}
    assert set(migration.FOREIGN_FIELDS) == {f.name for f in fields(ForeignStatus)}
    assert len(set(migration.CSV_COLUMNS)) == len(migration.CSV_COLUMNS)
    assert len(migration.csv_row(LG_A, None, {"foreign": None})) == len(migration.CSV_COLUMNS)
    assert len(migration.csv_row(LG_A, {"id": "h"}, None)) == len(migration.CSV_COLUMNS)


# --- round trips ---------------------------------------------------------------------------------


def test_jsonl_round_trip_into_another_municipality_is_exact(world: World) -> None:
    rich_registry(world)
    first = export(world, LG_A)
    header = json.loads(first.splitlines()[0])
    assert header["format"] == "kiban-registry/1" and header["lgcode"] == LG_A
    statuses = {json.loads(line)["status"] for line in first.splitlines()[1:]}
    assert statuses == {"active", "removed", "void"}
    # The file names its municipality: importing it elsewhere needs saying so.
    refused = import_text(world, first, LG_B)
    assert (1, "lgcode") in errors_at(refused) and refused.imported_residents == 0
    report = import_text(world, first, LG_B, source_lgcode=LG_A)
    assert report.ok, report.lines()
    assert report.imported_residents == report.residents == first.count('"type":"resident"')
    second = export(world, LG_B)
    assert first.splitlines()[1:] == second.splitlines()[1:]
    assert json.loads(second.splitlines()[0])["lgcode"] == LG_B
    # The stored rows are the same, search keys included (computed as the service does).
    assert table_rows(world, LG_A) == table_rows(world, LG_B)
    assert world.svc.registry.verify_ledger(LG_B)["ok"]
    found = world.svc.registry.search(world.clerk_b, LG_B, name="山田 華子")
    assert [r["given_name"] for r in found["items"]] == ["華子"]


def test_csv_round_trip_is_exact(world: World) -> None:
    rich_registry(world)
    first = export(world, LG_A, "csv")
    rows = list(csv.reader(io.StringIO(first)))
    assert tuple(rows[0]) == migration.CSV_COLUMNS
    assert any(not r[migration.CSV_COLUMNS.index("id")] for r in rows[1:])  # merged-away hh
    report = import_text(world, "\ufeff" + first, LG_B, fmt="csv", source_lgcode=LG_A)
    assert report.ok, report.lines()
    second = export(world, LG_B, "csv")
    assert [r[1:] for r in csv.reader(io.StringIO(second))] == [r[1:] for r in rows]
    assert table_rows(world, LG_A) == table_rows(world, LG_B)
    # Either format describes the same records.
    assert export(world, LG_B).splitlines()[1:] == export(world, LG_A).splitlines()[1:]


def test_empty_registry_round_trips_in_both_formats(world: World) -> None:
    for fmt in ("jsonl", "csv"):
        text = export(world, LG_A, fmt)
        report = import_text(world, text, LG_B, fmt=fmt, source_lgcode=LG_A)
        assert report.ok and report.imported_residents == 0, report.lines()


# --- validation ------------------------------------------------------------------------------------


def test_bad_rows_are_all_named_and_nothing_is_written(world: World) -> None:
    records: list[Any] = population(30)
    line = {i + 1: r for i, r in enumerate(records)}  # file line -> record
    residents = [n for n, r in line.items() if r.get("type") == "resident"]
    households = [n for n, r in line.items() if r.get("type") == "household"]
    line[residents[0]]["family_kana"] = "Yamada"
    line[residents[1]]["juminhyo_code"] = "12345678901"
    line[residents[2]]["birth_date"] = "2030-01-01"
    line[residents[3]]["sex"] = "9"
    line[residents[4]]["my_number"] = "123456789012"
    line[residents[5]]["resident_since"] = "2026-13-01"
    line[residents[6]]["nickname"] = "x"
    del line[residents[7]]["relationship"]
    line[households[3]]["address"]["town_code"] = "9999999"
    line[households[4]]["address"]["banchi"] = "<script>"
    records = list(line.values())
    records[residents[8] - 1] = "{not json"
    before = ledger_state(world, LG_A)
    report = import_text(world, jsonl(records))
    assert not report.ok and report.imported_residents == 0
    expected = {
        (residents[0], "family_kana"), (residents[1], "juminhyo_code"),
        (residents[2], "birth_date"), (residents[3], "sex"), (residents[4], "my_number"),
        (residents[5], "resident_since"), (residents[6], "nickname"),
        (residents[7], "relationship"), (households[3], "address.town_code"),
        (households[4], "address.banchi"), (residents[8], "line"),
    }
    assert expected <= errors_at(report), report.lines()
    for issue in report.errors:
        assert issue.ja and issue.en
    # Identifiers only in the report: no names or numbers from the records.
    text = "\n".join(report.lines())
    assert "Yamada" not in text and "12345678901" not in text
    assert table_rows(world, LG_A) == ([], [])
    assert ledger_state(world, LG_A) == before
    assert import_entries(world, LG_A) == []
    # validate says the same without a transaction to roll back.
    checked = mig(world).validate(world.supervisor_a, LG_A, io.StringIO(jsonl(records)))
    assert errors_at(checked) == errors_at(report)


def test_households_need_exactly_one_head_matching_head_id(world: World) -> None:
    records = population(60)
    families = {}
    for n, r in enumerate(records, 1):
        if r.get("type") == "household":
            current = (n, r, [])
            families[r["id"]] = current
        elif r.get("type") == "resident":
            current[2].append((n, r))
    bigger = [f for f in families.values() if len(f[2]) >= 2 and f[1]["status"] == "active"
              and all(m["status"] == "active" for _, m in f[2])]
    two_heads, wrong_head, removed = bigger[0], bigger[1], bigger[2]
    two_heads[2][1][1]["relationship"] = "世帯主"
    wrong_head[1]["head_id"] = wrong_head[2][1][1]["id"]
    removed[1]["status"] = "removed"
    report = import_text(world, jsonl(records))
    assert {(two_heads[0], "head_id"), (wrong_head[0], "head_id"),
            (removed[0], "status")} <= errors_at(report), report.lines()
    assert table_rows(world, LG_A) == ([], [])


def test_residents_must_follow_their_household(world: World) -> None:
    records = population(20)
    resident_lines = [n for n, r in enumerate(records, 1) if r.get("type") == "resident"]
    moved = records.pop(resident_lines[0] - 1)
    records.append(moved)  # now after another household's records
    report = import_text(world, jsonl(records))
    assert (len(records), "household_id") in errors_at(report)


def test_header_is_required_and_checked(world: World) -> None:
    records = population(5)
    assert (1, "format") in errors_at(import_text(world, jsonl(records[1:])))
    assert (1, "format") in errors_at(import_text(world, jsonl([{"format": "other/9"}])))
    assert (1, "format") in errors_at(import_text(world, ""))
    assert (1, "line") in errors_at(import_text(world, "{oops\n"))
    assert table_rows(world, LG_A) == ([], [])


# --- duplicates ------------------------------------------------------------------------------------


def test_duplicates_within_the_file(world: World) -> None:
    records = population(20)
    res = [(n, r) for n, r in enumerate(records, 1) if r.get("type") == "resident"]
    res[5][1]["juminhyo_code"] = res[1][1]["juminhyo_code"]
    res[6][1]["id"] = res[2][1]["id"]
    active = [(n, r) for n, r in res if r["status"] == "active" and r["my_number"]]
    active[-1][1]["my_number"] = active[0][1]["my_number"]
    first_hh = records[1]
    copy = [dict(first_hh)]  # the first household again, with fresh residents
    report = import_text(world, jsonl([*records, *copy]))
    assert {(res[5][0], "juminhyo_code"), (res[6][0], "id"), (active[-1][0], "my_number"),
            (len(records) + 1, "id")} <= errors_at(report), report.lines()
    dup = next(e for e in report.errors if e.line == res[5][0])
    assert f"line {res[1][0]}" in dup.en
    assert table_rows(world, LG_A) == ([], [])


def test_duplicates_against_existing_rows(world: World) -> None:
    text = jsonl(population(20))
    assert import_text(world, text).ok
    rows, before = table_rows(world, LG_A), ledger_state(world, LG_A)
    again = import_text(world, text)
    assert not again.ok and again.imported_residents == 0
    fields_named = {e.field for e in again.errors}
    assert {"id", "juminhyo_code", "my_number"} <= fields_named
    assert len([e for e in again.errors if e.record == "household"]) == again.households
    assert table_rows(world, LG_A) == rows and ledger_state(world, LG_A) == before


# --- partial import, chunks and the ledger --------------------------------------------------------


def test_partial_import_skips_bad_households_whole(world: World) -> None:
    records = population(40)
    hh_lines = [n for n, r in enumerate(records, 1) if r.get("type") == "household"]
    bad_hh = records[hh_lines[2] - 1]
    members = [r for r in records if r.get("household_id") == bad_hh["id"]]
    members[-1]["given_kana"] = "hanako"
    report = import_text(world, jsonl(records), partial=True)
    assert report.mode == "partial"
    assert errors_at(report) == {(records.index(members[-1]) + 1, "given_kana")}
    assert report.bad_households == 1
    assert report.imported_residents == 40 - len(members)
    residents, households = table_rows(world, LG_A)
    assert bad_hh["id"] not in {h["id"] for h in households}
    assert not {m["id"] for m in members} & {r["id"] for r in residents}
    assert len(residents) == 40 - len(members)
    assert world.svc.registry.verify_ledger(LG_A)["ok"]


def test_one_ledger_entry_per_chunk_with_a_verifiable_digest(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migration, "CHUNK_RESIDENTS", 10)
    records = population(55)
    report = import_text(world, jsonl(records))
    assert report.ok and report.imported_residents == 55
    entries = import_entries(world, LG_A)
    assert len(entries) == report.chunks >= 5
    assert {e["subject"] for e in entries} == {report.batch_id}
    assert sum(e["payload"]["residents"] for e in entries) == 55
    assert sum(e["payload"]["rows"] for e in entries) == len(records) - 1
    assert {e["actor"] for e in entries} == {world.supervisor_a.id}
    # An auditor holding the file recomputes each chunk's digest: households whole, a new
    # chunk once it holds CHUNK_RESIDENTS residents.
    chunks, current, count = [], [], 0
    for r in records[1:]:
        if r["type"] == "household" and count >= 10:
            chunks.append(current)
            current, count = [], 0
        current.append(r)
        count += r["type"] == "resident"
    chunks.append(current)
    assert [e["payload"]["sha256"] for e in entries] == [ledger.digest(c) for c in chunks]
    assert world.svc.registry.verify_ledger(LG_A)["ok"]


def test_validate_only_writes_nothing(world: World) -> None:
    before = ledger_state(world, LG_A)
    report = mig(world).validate(world.supervisor_a, LG_A, io.StringIO(jsonl(population(25))))
    assert report.ok and report.residents == 25 and report.mode == "validate"
    assert table_rows(world, LG_A) == ([], []) and ledger_state(world, LG_A) == before


def test_export_is_recorded_in_the_ledger(world: World) -> None:
    import_text(world, jsonl(population(12)))
    text = export(world, LG_A)
    with world.svc.db.tenant(LG_A) as conn:
        entry = ledger.entries(conn, LG_A, kind="registry.export")[-1]
    body = "".join(line + "\n" for line in text.splitlines()[1:])
    assert entry["payload"]["residents"] == 12
    assert entry["payload"]["sha256"] == __import__("hashlib").sha256(body.encode()).hexdigest()
    assert world.svc.registry.verify_ledger(LG_A)["ok"]


# --- CSV specifics ------------------------------------------------------------------------------


def test_csv_errors_name_the_physical_line(world: World) -> None:
    import_text(world, jsonl(population(10)))
    text = export(world, LG_A, "csv")
    world_rows = list(csv.reader(io.StringIO(text)))
    birth = migration.CSV_COLUMNS.index("birth_date")
    target = next(i for i, r in enumerate(world_rows[1:], 2) if r[birth])
    world_rows[target - 1][birth] = "1990/01/01"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(world_rows)
    report = import_text(world, out.getvalue(), LG_B, fmt="csv", source_lgcode=LG_A)
    assert errors_at(report) == {(target, "birth_date")}
    bad_header = import_text(world, "a,b\n1,2\n", LG_B, fmt="csv")
    assert (1, "columns") in errors_at(bad_header)


# --- permissions --------------------------------------------------------------------------------


def test_permissions(world: World) -> None:
    text = jsonl(population(5))
    m = mig(world)
    with pytest.raises(Forbidden):  # a counter clerk cannot import
        m.import_(world.clerk_a, LG_A, io.StringIO(text))
    with pytest.raises(Forbidden):
        m.validate(world.clerk_a, LG_A, io.StringIO(text))
    with pytest.raises(Forbidden):  # nor export
        m.export(world.clerk_a, LG_A, io.StringIO())
    with pytest.raises(Forbidden):  # a municipality admin manages, but cannot export people
        m.export(world.admin_a, LG_A, io.StringIO())
    with pytest.raises(Forbidden):  # a supervisor acts for their own municipality only
        m.import_(world.supervisor_a, LG_B, io.StringIO(text), source_lgcode=LG_A)
    with pytest.raises(Forbidden):
        m.export(world.platform, LG_A, io.StringIO())
    assert table_rows(world, LG_A) == ([], []) and table_rows(world, LG_B) == ([], [])
