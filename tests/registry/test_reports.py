"""Statistics, integration feeds, batch reports, migration over HTTP, extraction and the 町字
CSV import (kiban.registry.reports_api), through HTTP on both databases: what each answers,
what each refuses (bad dates, wrong role, another municipality), and that the imports are all
or nothing."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kiban.core.checkdigits import with_check_digit
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, bearer, move_in_data, person


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    world.svc.accounts.create("super-b", PASSWORD, "責任 四郎", ["registry_supervisor"], LG_B,
                              world.svc.clock.now())
    with TestClient(app) as c:
        yield c


def token(client: TestClient, username: str) -> dict[str, str]:
    return bearer(client, username)


def base(lgcode: str = LG_A) -> str:
    return f"/api/v1/municipalities/{lgcode}"


def move_in(client: TestClient, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post(f"{base()}/changes/move-in", json=move_in_data(**overrides),
                           headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


def refused(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["title_ja"] and body["title_en"]
    if field is not None:
        fields = {body.get("field")} | {e["field"] for e in body.get("errors", [])}
        assert field in fields, fields
    return body


FOREIGN = {"nationality": "ブラジル", "residence_status": "定住者", "period": "1年",
           "expiry": "2026-03-20", "card_number": "AB12345678CD"}


# --- statistics -----------------------------------------------------------------------------------


def test_population_by_town_sex_and_age_band_as_of_a_date(client: TestClient) -> None:
    clerk = token(client, "clerk-a")
    move_in(client, clerk)  # 1980 man, 1982 woman, 本町一丁目, moved in 2026-03-25
    second = move_in(client, clerk, occurred_on="2026-03-10", address={
        "town_code": "0002001", "banchi": "3番地"}, members=[
        person(family_kana="スズキ", family_name="鈴木", sex="2", birth_date="2020-06-01")])
    client.post(f"{base()}/changes/death", headers=clerk, json={
        "resident_id": second["resident_ids"][0], "occurred_on": "2026-03-28",
        "notified_on": "2026-03-30"}).raise_for_status()

    stats = client.get(f"{base()}/statistics/population", headers=clerk).json()
    assert stats["as_of"] == "2026-04-01"
    towns = {t["town_code"]: t for t in stats["towns"]}
    assert set(towns) == {"0001001", "0001002", "0002001"}  # every 町字 of the master
    assert (towns["0001001"]["male"], towns["0001001"]["female"],
            towns["0001001"]["households"]) == (1, 1, 1)
    assert towns["0002001"]["total"] == 0 and towns["0002001"]["households"] == 0  # died
    bands = {b["band"]: b for b in stats["age_bands"]}
    assert bands["45-49"]["male"] == 1 and bands["40-44"]["female"] == 1
    assert stats["totals"] == {"male": 1, "female": 1, "total": 2, "households": 1}

    # On 2026-03-27 the child was alive and the couple had moved in; on 03-20 only the child.
    earlier = client.get(f"{base()}/statistics/population", headers=clerk,
                         params={"as_of": "2026-03-27"}).json()
    assert earlier["totals"]["total"] == 3
    child = next(t for t in earlier["towns"] if t["town_code"] == "0002001")
    assert child["female"] == 1 and {b["band"]: b["female"] for b in child["age_bands"]}[
        "5-9"] == 1
    assert client.get(f"{base()}/statistics/population", headers=clerk,
                      params={"as_of": "2026-03-20"}).json()["totals"]["total"] == 1

    refused(client.get(f"{base()}/statistics/population", headers=clerk,
                       params={"as_of": "2026-13-01"}), 422, "as_of")
    refused(client.get(f"{base()}/statistics/population", headers=clerk,
                       params={"as_of": "2026-04-02"}), 422, "as_of")
    # Another municipality's staff: refused on A's URL, and nothing of A's on their own.
    other = token(client, "clerk-b")
    refused(client.get(f"{base()}/statistics/population", headers=other), 403)
    theirs = client.get(f"{base(LG_B)}/statistics/population", headers=other).json()
    assert theirs["totals"]["total"] == 0 and theirs["totals"]["households"] == 0
    refused(client.get(f"{base()}/statistics/population"), 401)


def test_change_statistics_count_by_kind_without_cancelled_changes(client: TestClient) -> None:
    clerk, supervisor = token(client, "clerk-a"), token(client, "super-a")
    kept = move_in(client, clerk)
    dropped = move_in(client, clerk, members=[person(family_kana="サトウ")])
    client.post(f"{base()}/changes/cancellation", headers=supervisor, json={
        "event_id": dropped["event_id"], "reason": "入力誤り"}).raise_for_status()
    household = client.get(f"{base()}/residents/{kept['resident_ids'][0]}",
                           headers=clerk).json()["household_id"]
    client.post(f"{base()}/changes/relocation", headers=clerk, json={
        "household_id": household, "occurred_on": "2026-03-31", "notified_on": "2026-04-01",
        "address": {"town_code": "0001002", "banchi": "5番地"}}).raise_for_status()

    stats = client.get(f"{base()}/statistics/changes", headers=clerk,
                       params={"from": "2026-03-01", "to": "2026-03-31"}).json()
    assert stats["counts"]["move_in"] == 1 and stats["counts"]["relocation"] == 1
    assert stats["cancelled"] == 1 and stats["total"] == 2
    assert "cancellation" not in stats["counts"] and stats["labels"]["move_in"] == "転入"
    only_march_31 = client.get(f"{base()}/statistics/changes", headers=clerk,
                               params={"from": "2026-03-31", "to": "2026-03-31"}).json()
    assert only_march_31["total"] == 1 and only_march_31["counts"]["relocation"] == 1

    refused(client.get(f"{base()}/statistics/changes", headers=clerk,
                       params={"from": "2026-04-01", "to": "2026-03-01"}), 422, "from")
    refused(client.get(f"{base()}/statistics/changes", headers=clerk,
                       params={"from": "2026-04-01"}), 422, "to")
    refused(client.get(f"{base()}/statistics/changes", headers=clerk,
                       params={"from": "yesterday", "to": "2026-04-01"}), 422, "from")
    other = token(client, "super-b")
    refused(client.get(f"{base()}/statistics/changes", headers=other,
                       params={"from": "2026-03-01", "to": "2026-04-01"}), 403)
    assert client.get(f"{base(LG_B)}/statistics/changes", headers=other, params={
        "from": "2026-03-01", "to": "2026-04-01"}).json()["total"] == 0


# --- integration feeds ------------------------------------------------------------------------------


def test_feeds_for_juki_net_fuhyo_and_other_systems(client: TestClient) -> None:
    clerk, supervisor = token(client, "clerk-a"), token(client, "super-a")
    made = move_in(client, supervisor, members=[
        person(honseki="北海道札幌市中央区北一条西二丁目", hittosha="山田 太郎",
               my_number=with_check_digit("12345678901", "my_number")),
        person(given_name="花子", given_kana="ハナコ", sex="2", relationship="妻",
               birth_date="1982-07-07")])
    japanese, spouse = made["resident_ids"]
    abroad = move_in(client, clerk, origin="abroad", previous_address="", members=[
        person(family_name="シルバ", family_kana="シルバ", foreign=FOREIGN)])
    since = {"since": "2026-04-01"}

    feed = client.get(f"{base()}/integration/changes", headers=supervisor, params=since).json()
    events = {e["event_id"]: e for e in feed["items"]}
    assert set(events) == {made["event_id"], abroad["event_id"]}
    event = events[made["event_id"]]
    assert event["kind"] == "move_in" and set(event["resident_ids"]) == {japanese, spouse}
    first = next(r for r in event["residents"] if r["resident_id"] == japanese)
    assert first["family_name"] == "山田" and first["address"]["town_code"] == "0001001"
    assert first["my_number"]  # a supervisor may see the 個人番号
    assert feed["has_more"] is False and feed["next_after_seq"] >= 1

    juki = client.get(f"{base()}/integration/juki-net/notifications", headers=supervisor,
                      params=since).json()["items"]
    assert {i["resident_id"] for i in juki} == {japanese, spouse, abroad["resident_ids"][0]}
    assert {i["notice"] for i in juki} == {"entry"}
    assert all(len(i["juminhyo_code"]) == 11 and i["address"]["text"] for i in juki)

    fuhyo = client.get(f"{base()}/integration/fuhyo-notifications", headers=supervisor,
                       params=since).json()["items"]
    assert [i["resident_id"] for i in fuhyo] == [japanese]  # 本籍 known, not foreign
    assert fuhyo[0]["honseki"] == "北海道札幌市中央区北一条西二丁目"

    # A relocation changes the address: an update for both feeds; a kana correction is a
    # 住基ネット item but not a 附票 one.
    household = client.get(f"{base()}/residents/{japanese}", headers=clerk).json()["household_id"]
    seq = feed["next_after_seq"]
    client.post(f"{base()}/changes/relocation", headers=clerk, json={
        "household_id": household, "occurred_on": "2026-03-31", "notified_on": "2026-04-01",
        "address": {"town_code": "0001002", "banchi": "7番地"}}).raise_for_status()
    client.post(f"{base()}/changes/correction", headers=supervisor, json={
        "resident_id": spouse, "updates": {"given_kana": "ハナエ"},
        "reason": "誤記"}).raise_for_status()
    later = {**since, "after_seq": seq}
    juki = client.get(f"{base()}/integration/juki-net/notifications", headers=supervisor,
                      params=later).json()["items"]
    assert [(i["kind"], i["notice"]) for i in juki] == [
        ("relocation", "update"), ("relocation", "update"), ("authority_correction", "update")]
    assert "address_since" in juki[0]["changed"] and juki[2]["changed"] == ["given_kana"]
    assert juki[0]["address"]["town_code"] == "0001002"
    fuhyo = client.get(f"{base()}/integration/fuhyo-notifications", headers=supervisor,
                       params=later).json()["items"]
    assert [(i["kind"], i["resident_id"]) for i in fuhyo] == [("relocation", japanese)]

    # Paging: one event per page, in ledger order.
    page = client.get(f"{base()}/integration/changes", headers=supervisor,
                      params={**since, "limit": 1}).json()
    assert len(page["items"]) == 1 and page["has_more"] is True
    assert page["items"][0]["event_id"] == made["event_id"]
    following = client.get(f"{base()}/integration/changes", headers=supervisor, params={
        **since, "limit": 1, "after_seq": page["next_after_seq"]}).json()
    assert following["items"][0]["event_id"] == abroad["event_id"]
    assert client.get(f"{base()}/integration/changes", headers=supervisor,
                      params={"since": "2026-04-02"}).json()["items"] == []

    for path in ("/integration/changes", "/integration/juki-net/notifications",
                 "/integration/fuhyo-notifications"):
        refused(client.get(f"{base()}{path}", headers=clerk, params=since), 403)
        refused(client.get(f"{base()}{path}", headers=supervisor, params={"since": "x"}), 422,
                "since")
        refused(client.get(f"{base()}{path}", headers=supervisor), 422, "since")
        other = token(client, "super-b")
        refused(client.get(f"{base()}{path}", headers=other, params=since), 403)
        assert client.get(f"{base(LG_B)}{path}", headers=other,
                          params=since).json()["items"] == []


# --- batch reports ----------------------------------------------------------------------------------


def test_residence_expired_and_daily_change_reports(client: TestClient, world: World) -> None:
    clerk, supervisor = token(client, "clerk-a"), token(client, "super-a")
    expired = move_in(client, clerk, origin="abroad", previous_address="", members=[
        person(family_name="シルバ", family_kana="シルバ", foreign=FOREIGN)])
    valid = move_in(client, clerk, origin="abroad", previous_address="", members=[
        person(family_name="リー", family_kana="リー",
               foreign={**FOREIGN, "expiry": "2027-03-20", "card_number": "EF12345678GH"})])
    move_in(client, clerk)  # Japanese residents are never listed

    report = client.get(f"{base()}/reports/residence-expired", headers=supervisor).json()
    assert report["as_of"] == "2026-04-01"
    assert [i["resident_id"] for i in report["items"]] == expired["resident_ids"]
    assert report["items"][0]["days_past"] == 12 and report["items"][0]["expiry"] == "2026-03-20"
    ahead = client.get(f"{base()}/reports/residence-expired", headers=supervisor,
                       params={"as_of": "2027-12-31"}).json()
    assert {i["resident_id"] for i in ahead["items"]} == set(
        expired["resident_ids"] + valid["resident_ids"])
    refused(client.get(f"{base()}/reports/residence-expired", headers=clerk), 403)
    refused(client.get(f"{base()}/reports/residence-expired", headers=supervisor,
                       params={"as_of": "01/04/2026"}), 422, "as_of")

    today = client.get(f"{base()}/reports/daily-changes", headers=supervisor,
                       params={"on": "2026-04-01"}).json()
    assert today["count"] == 3 and today["items"][0]["event_id"] == expired["event_id"]
    assert today["items"][0]["residents"][0]["family_name"] == "シルバ"
    assert "my_number" not in today["items"][0]["residents"][0]
    world.svc.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    try:
        tomorrow = move_in(client, clerk, members=[person(family_kana="タナカ")])
        next_day = client.get(f"{base()}/reports/daily-changes", headers=supervisor).json()
        assert next_day["on"] == "2026-04-02"
        assert [i["event_id"] for i in next_day["items"]] == [tomorrow["event_id"]]
    finally:
        world.svc.clock.advance(timedelta(days=-1))  # type: ignore[attr-defined]
    assert client.get(f"{base()}/reports/daily-changes", headers=supervisor,
                      params={"on": "2026-03-31"}).json()["items"] == []
    refused(client.get(f"{base()}/reports/daily-changes", headers=clerk), 403)
    refused(client.get(f"{base()}/reports/daily-changes", headers=supervisor,
                       params={"on": "2026-02-30"}), 422, "on")
    other = token(client, "super-b")
    refused(client.get(f"{base()}/reports/daily-changes", headers=other), 403)
    assert client.get(f"{base(LG_B)}/reports/daily-changes", headers=other).json()["items"] == []
    assert client.get(f"{base(LG_B)}/reports/residence-expired", headers=other,
                      params={"as_of": "2030-01-01"}).json()["items"] == []


# --- migration over HTTP -----------------------------------------------------------------------------


def _new_household_file(lgcode: str, tag: str) -> str:
    household = {"type": "household", "id": f"hh{tag}", "address": {
        "town_code": "0001002", "banchi": "9番地", "katagaki": ""}, "head_id": f"rs{tag}",
        "status": "active", "version": 1}
    resident = {"type": "resident", "id": f"rs{tag}", "household_id": f"hh{tag}",
                "relationship": "世帯主", "juminhyo_code": with_check_digit("5555500001",
                                                                            "juminhyo"),
                "family_name": "移行", "given_name": "一郎", "family_kana": "イコウ",
                "given_kana": "イチロウ", "birth_date": "1970-01-02", "sex": "1",
                "resident_since": "2000-04-01", "address_since": "2000-04-01", "status": "active",
                "version": 1}
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in (
        {"format": "kiban-registry/1", "lgcode": lgcode}, household, resident)) + "\n"


def test_migration_export_and_all_or_nothing_import(client: TestClient) -> None:
    clerk, supervisor = token(client, "clerk-a"), token(client, "super-a")
    made = move_in(client, clerk)
    export = client.get(f"{base()}/migration/export", headers=supervisor,
                        params={"format": "jsonl"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
    lines = export.text.splitlines()
    assert json.loads(lines[0])["format"] == "kiban-registry/1"
    assert all(rid in export.text for rid in made["resident_ids"])
    as_csv = client.get(f"{base()}/migration/export", headers=supervisor,
                        params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert len(list(csv.reader(io.StringIO(as_csv.text)))) == 3
    refused(client.get(f"{base()}/migration/export", headers=clerk), 403)
    refused(client.get(f"{base()}/migration/export", headers=supervisor,
                       params={"format": "xml"}), 422, "format")

    ndjson = {**supervisor, "Content-Type": "application/x-ndjson"}
    good = _new_household_file(LG_A, "0001")
    # One bad line (a reading in latin letters) and nothing of the file is imported.
    bad = good.replace('"イコウ"', '"ikou"')
    body = refused(client.post(f"{base()}/migration/import", headers=ndjson,
                               content=bad.encode()), 422, "lines[3].family_kana")
    assert "ikou" not in json.dumps(body, ensure_ascii=False)  # identifiers only
    assert client.get(f"{base()}/residents/rs0001", headers=clerk).status_code == 404
    checked = client.post(f"{base()}/migration/import", headers=ndjson, content=bad.encode(),
                          params={"validate_only": "true"})
    assert checked.status_code == 200 and checked.json()["ok"] is False
    refused(client.post(f"{base()}/migration/import", headers={**ndjson, **clerk},
                        content=good.encode()), 403)
    refused(client.post(f"{base()}/migration/import", headers=ndjson,
                        content="\ufeff".encode() + b"\xff\xfe"), 422, "body")
    # Another municipality's file is refused whole.
    refused(client.post(f"{base()}/migration/import", headers=ndjson,
                        content=_new_household_file(LG_B, "0002").encode()), 422)

    done = client.post(f"{base()}/migration/import", headers=ndjson, content=good.encode())
    assert done.status_code == 201, done.text
    assert done.json()["imported_residents"] == 1 and done.json()["imported_households"] == 1
    assert client.get(f"{base()}/residents/rs0001", headers=clerk).json()["family_name"] == "移行"
    # The same file again: every id and code is taken, and nothing changes.
    refused(client.post(f"{base()}/migration/import", headers=ndjson, content=good.encode()),
            422, "lines[2].id")
    # A whole export back into the registry it came from collides too, and adds nothing.
    before = client.get(f"{base()}/statistics/population", headers=clerk).json()["totals"]
    refused(client.post(f"{base()}/migration/import", headers=ndjson,
                        content=export.content), 422)
    assert client.get(f"{base()}/statistics/population", headers=clerk).json()[
        "totals"] == before
    other = token(client, "super-b")
    refused(client.get(f"{base()}/migration/export", headers=other), 403)
    assert not any(rid in client.get(f"{base(LG_B)}/migration/export", headers=other).text
                   for rid in made["resident_ids"])


# --- extraction ---------------------------------------------------------------------------------------


def test_extract_csv_with_standard_item_names(client: TestClient) -> None:
    clerk, supervisor = token(client, "clerk-a"), token(client, "super-a")
    move_in(client, clerk)  # ヤマダ タロウ (head) and ハナコ
    move_in(client, clerk, members=[person(family_name="佐藤", family_kana="サトウ")],
            address={"town_code": "0002001", "banchi": "2番地"})
    columns = ["person.family_name", "person.given_kana", "person.birth_date", "person.sex",
               "address.town_code", "household.head"]
    response = client.post(f"{base()}/extracts", headers=supervisor, json={
        "conditions": {"name": "やまだ"}, "format": "csv", "columns": columns})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == columns
    assert sorted(rows[1:]) == [["山田", "タロウ", "1980-05-05", "1", "0001001", "山田 太郎"],
                                ["山田", "ハナコ", "1982-07-07", "2", "0001001", "山田 太郎"]]
    by_town = client.post(f"{base()}/extracts", headers=supervisor, json={
        "conditions": {"town_code": "0002001", "sex": "1"}, "columns": ["person.family_kana"]})
    assert by_town.text.splitlines() == ["person.family_kana", "サトウ"]
    none = client.post(f"{base()}/extracts", headers=supervisor, json={
        "conditions": {"status": ["removed"]}, "columns": ["person.family_kana"]})
    assert none.text.splitlines() == ["person.family_kana"]

    refused(client.post(f"{base()}/extracts", headers=supervisor, json={
        "columns": ["person.family_name", "person.blood_type"]}), 422, "columns[1]")
    refused(client.post(f"{base()}/extracts", headers=supervisor, json={
        "conditions": {"hobby": "x"}, "columns": ["person.family_name"]}), 422)
    refused(client.post(f"{base()}/extracts", headers=supervisor, json={
        "columns": ["person.family_name"], "format": "xlsx"}), 422, "format")
    refused(client.post(f"{base()}/extracts", headers=clerk, json={
        "columns": ["person.family_name"]}), 403)
    other = token(client, "super-b")
    refused(client.post(f"{base()}/extracts", headers=other, json={
        "columns": ["person.family_name"]}), 403)
    assert client.post(f"{base(LG_B)}/extracts", headers=other, json={
        "columns": ["person.family_name"]}).text.splitlines() == ["person.family_name"]
    # Each extraction is in the ledger, which still verifies (its entries are not events).
    verified = client.get(f"{base()}/ledger/verify", headers=token(client, "admin-a")).json()
    assert verified["ok"] is True, verified


# --- 町字 master CSV import ------------------------------------------------------------------------------


def test_town_master_csv_import_is_validated_and_all_or_nothing(client: TestClient) -> None:
    admin, clerk = token(client, "admin-a"), token(client, "clerk-a")
    move_in(client, clerk)  # a household in 0001001
    headers = {**admin, "Content-Type": "text/csv; charset=utf-8"}
    url = f"{base()}/imports/towns"

    def towns() -> dict[str, str]:
        listed = client.get(f"{base()}/towns", headers=admin).json()
        return {t["code"]: t["name"] for t in listed}

    before = towns()
    good = ("\ufeffcode,name,name_kana\r\n0001001,本町一丁目,ホンチョウイッチョウメ\r\n"
            "0001002,本町二丁目,\r\n0003001,新町一丁目,シンマチイッチョウメ\r\n")
    cases = [
        (good + "0003002,\r\n", "lines[5].name"),
        (good + "0001002,重複町,\r\n", "lines[5].code"),
        (good + "12a,町,\r\n", "lines[5].code"),
        (good + "0003003,町,chou\r\n", "lines[5].name_kana"),
        (good + "0003004,町,マチ,1000001,x\r\n", "lines[5]"),
        ("code,town_name\r\n0001001,本町一丁目\r\n", "header"),
        ("code,name\r\n", "rows"),
        ("code,name\r\n0001002,本町二丁目\r\n", "rows"),  # 0001001 is an address in use
    ]
    for text, field in cases:
        refused(client.post(url, headers=headers, content=text.encode()), 422, field)
        assert towns() == before
    refused(client.post(url, headers=headers, content=b"\x82\xa0"), 422, "body")
    refused(client.post(url, headers={**clerk, "Content-Type": "text/csv"},
                        content=good.encode()), 403)
    refused(client.post(f"{base(LG_B)}/imports/towns", headers=headers, content=good.encode()),
            403)
    assert towns() == before

    done = client.post(url, headers=headers, content=good.encode())
    assert done.status_code == 200, done.text
    assert done.json()["count"] == 3 and done.json()["added"] == 1
    assert done.json()["removed"] == 1  # 0002001 is used by no address
    assert towns() == {"0001001": "本町一丁目", "0001002": "本町二丁目", "0003001": "新町一丁目"}
    # The other municipality's master is untouched.
    assert "0003001" not in {t["code"] for t in client.get(
        f"{base(LG_B)}/towns", headers=token(client, "clerk-b")).json()}
