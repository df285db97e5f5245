"""Issue 7 parts 4 and 5 through the HTTP API and the portal (TestClient), on SQLite and
PostgreSQL: the moving journey between two municipalities of one deployment (online 転出届
approved → 転出 recorded → 転出証明書情報 sent through the hub → visit booked → 特例転入 at the
counter from the data received → one checklist of the procedures a move-in triggers), a birth
triggering the 児童手当 and 国民健康保険 tasks with their evidence fetched, and the bad inputs
refused clearly."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select

from kiban.procedures import life_events_store as store
from kiban.procedures.life_events import ITEM
from kiban.procedures.life_events import permission_rules as life_rules
from kiban.procedures.service import canonical_payload, portal_subject
from kiban_testkit import LG_A, LG_B, World

from .procedures_kit import Env, build_env, permission_rules

ARR_B = f"/api/v1/municipalities/{LG_B}/life-events"
ARR_A = f"/api/v1/municipalities/{LG_A}/life-events"
MOVE_IN_PROCEDURES = ["jido-teate", "kokuho-enrolment", "school-transfer"]


@pytest.fixture
def journey(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    rules = [*permission_rules(LG_A), *permission_rules(LG_B), *life_rules(LG_A)]
    made = cast(Generator[Env, None, None], build_env(world, tmp_path, monkeypatch, rules=rules))
    env = next(made)
    world.svc.linkage.register_municipality(LG_B, "横浜市")  # before the app's hub first runs
    yield env
    made.close()


def resident_csrf(env: Env, lgcode: str = LG_A, who: str = "taro") -> str:
    sub = portal_subject(env.secret, lgcode, env.residents[who])
    key = hashlib.sha256(b"kiban-procedures-csrf:" + env.secret.encode()).digest()
    return hmac.new(key, sub.encode(), hashlib.sha256).hexdigest()[:32]


def headers(env: Env, who: str) -> dict[str, str]:
    return env.staff[who]


def approve_move_out(env: Env) -> dict[str, Any]:
    env.login("taro")
    made = env.submit("tenshutsu")
    assert made.status_code == 201, made.text
    app_id = made.json()["id"]
    assert env.staff_post(app_id, "claim").status_code == 200
    approved = env.staff_post(app_id, "approve")
    assert approved.status_code == 200, approved.text
    moves = env.client.get(f"{ARR_A}/moves", headers=env.staff["clerk-a"])
    assert moves.status_code == 200, moves.text
    [move] = moves.json()["items"]
    return dict(move)


def count(env: Env, table: Any, tenant: str, lgcode: str) -> int:
    with env.client.app.state.services.db.tenant(tenant) as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(table)
                                .where(table.c.lgcode == lgcode)).scalar_one())


def test_moving_journey_between_two_municipalities(journey: Env) -> None:
    env, client = journey, journey.client
    svc = client.app.state.services  # type: ignore[attr-defined]
    clerk_a, clerk_b = headers(env, "clerk-a"), headers(env, "clerk-b")

    # 1. The approved online 転出届: recorded by the registry, the data sent through the hub.
    move = approve_move_out(env)
    assert move["status"] == "sent", move
    assert move["dest_lgcode"] == LG_B and sorted(move["resident_ids"]) == sorted(env.residents.values())
    assert move["reference"]
    old = client.get(f"/api/v1/municipalities/{LG_A}/residents/{env.residents['taro']}", headers=clerk_a).json()
    assert old["status"] == "removed" and old["removal_reason"] == "転出"
    exchanges = svc.linkage.exchanges_of_resident(LG_A, env.residents["taro"])["exchanges"]
    sent = [e for e in exchanges if e["item"] == ITEM]
    assert sent and sent[0]["outcome"] == "provided" and sent[0]["verified"]
    assert sent[0]["legal_basis"].startswith("住民基本台帳法 第24条の2")
    # The same approval again changes nothing (the move is kept once per application).
    again = svc.life_events.move_out_approved(env.world.clerk_a,
                                              LG_A, {"id": move["application_id"], "form": {}})
    assert again["move_id"] == move["move_id"]

    # 2. The destination holds the data; the departure's staff cannot read it.
    arrivals = client.get(f"{ARR_B}/arrivals", headers=clerk_b)
    assert arrivals.status_code == 200, arrivals.text
    [arrival] = arrivals.json()["items"]
    assert arrival["move_id"] == move["move_id"] and arrival["status"] == "received"
    assert {p["name"] for p in arrival["people"]} == {"山田 太郎", "山田 花子"}
    assert client.get(f"{ARR_B}/arrivals", headers=clerk_a).status_code == 403
    assert client.get(f"{ARR_B}/moves", headers=clerk_b).json()["items"] == []
    if svc.db.is_postgres:  # row-level security, not only the service's checks
        assert count(env, store.life_arrivals, LG_A, LG_B) == 0
        assert count(env, store.life_incoming, LG_A, LG_B) == 0
        assert count(env, store.life_arrivals, LG_B, LG_B) == 1

    # 3. Slots at the destination; the resident books one in the portal.
    made = client.post(f"{ARR_B}/slots", headers=clerk_b, json={"slots": [
        {"starts_at": "2026-04-02T10:00:00+09:00", "capacity": 1},
        {"starts_at": "2026-04-02T11:00:00+09:00", "capacity": 2}]})
    assert made.status_code == 201, made.text
    first, second = made.json()["items"]
    assert client.post(f"{ARR_B}/slots", headers=clerk_a, json={"slots": [
        {"starts_at": "2026-04-02T10:00:00+09:00"}]}).status_code == 403
    past = client.post(f"{ARR_B}/slots", headers=clerk_b, json={"slots": [{"starts_at": "2026-03-01T10:00:00+09:00"}]})
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "slots[0].starts_at"
    public = client.get(f"{ARR_B}/slots").json()["items"]
    assert [s["free"] for s in public] == [1, 2]

    env.login("taro")
    page = client.get("/portal/life-events", headers={"Accept": "text/html"})
    assert page.status_code == 200 and f'id="slot-{first["id"]}"' in page.text
    no_csrf = client.post("/portal/life-events/book", data={"move_id": move["move_id"], "slot_id": first["id"]})
    assert no_csrf.status_code == 403
    booked = client.post("/portal/life-events/book", data={
        "csrf_token": resident_csrf(env), "move_id": move["move_id"], "slot_id": first["id"]})
    assert booked.status_code == 303, booked.text
    # Booking twice is refused, by the resident and by a clerk alike.
    twice = client.post("/portal/life-events/book", headers={"Accept": "text/html"}, data={
        "csrf_token": resident_csrf(env), "move_id": move["move_id"], "slot_id": second["id"]})
    assert twice.status_code == 409 and "来庁予約は既にあります" in twice.text
    by_clerk = client.post(f"{ARR_B}/arrivals/{move['move_id']}/booking", headers=clerk_b,
                           json={"slot_id": second["id"]})
    assert by_clerk.status_code == 409 and by_clerk.json()["title_en"].startswith("A visit is already booked")
    assert [s["free"] for s in client.get(f"{ARR_B}/slots").json()["items"]] == [0, 2]
    # The destination's reference at the wrong municipality finds nothing.
    elsewhere = client.post("/api/v1/life-events/bookings", json={
        "lgcode": LG_A, "reference": move["reference"], "birth_date": "1980-05-05", "slot_id": second["id"]})
    assert elsewhere.status_code == 404
    with env.client.app.state.services.db.tenant(LG_B) as conn:  # type: ignore[attr-defined]
        people = conn.execute(select(store.life_incoming.c.person)).scalars().all()
    assert people and all("my_number" not in p for p in people)  # never sent through the hub

    # 4. 特例転入 at the counter. Bad inputs first: nothing received, wrong municipality, too late.
    unknown = client.post(f"{ARR_B}/arrivals/{'0' * 32}/special-move-in", headers=clerk_b,
                          json={"occurred_on": "2026-04-01", "address": {"town_code": "0001001", "banchi": "5番地"}})
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/not-received")
    wrong = client.post(f"{ARR_B}/arrivals/{move['move_id']}/special-move-in", headers=clerk_a,
                        json={"occurred_on": "2026-04-01", "address": {"town_code": "0001001", "banchi": "5番地"}})
    assert wrong.status_code == 403
    at_a = client.post(f"{ARR_A}/arrivals/{move['move_id']}/special-move-in", headers=clerk_a,
                       json={"occurred_on": "2026-04-01", "address": {"town_code": "0001001", "banchi": "5番地"}})
    assert at_a.status_code == 404  # the departure holds no received data for its own move
    late = client.post(f"{ARR_B}/arrivals/{move['move_id']}/special-move-in", headers=clerk_b,
                       json={"occurred_on": "2026-03-01", "notified_on": "2026-03-02",
                             "address": {"town_code": "0001001", "banchi": "5番地"}})
    assert late.status_code == 422 and late.json()["field"] == "occurred_on"
    nowhere = {"town_code": "9999999", "banchi": "5番地"}
    bad_address = client.post(f"{ARR_B}/arrivals/{move['move_id']}/special-move-in", headers=clerk_b,
                              json={"occurred_on": "2026-04-01", "address": nowhere})
    assert bad_address.status_code == 422
    assert client.get(f"{ARR_B}/arrivals/{move['move_id']}", headers=clerk_b).json()["status"] == "booked"

    key = {"Idempotency-Key": "move-in-1"}
    done = client.post(f"{ARR_B}/arrivals/{move['move_id']}/special-move-in", headers={**clerk_b, **key},
                       json={"occurred_on": "2026-04-01", "address": {"town_code": "0001001", "banchi": "5番地"}})
    assert done.status_code == 201, done.text
    result = done.json()
    assert len(result["resident_ids"]) == 2 and result["household_id"]
    replay = client.post(f"{ARR_B}/arrivals/{move['move_id']}/special-move-in", headers={**clerk_b, **key},
                         json={"occurred_on": "2026-04-01", "address": {"town_code": "0001001", "banchi": "5番地"}})
    assert replay.status_code == 201 and replay.headers.get("idempotent-replayed") == "true"
    twice_in = client.post(f"{ARR_B}/arrivals/{move['move_id']}/special-move-in", headers=clerk_b,
                           json={"occurred_on": "2026-04-01", "address": {"town_code": "0001001", "banchi": "5番地"}})
    assert twice_in.status_code == 409
    # No re-entry: the new record carries the 住民票コード and the items from the departure.
    new = [client.get(f"/api/v1/municipalities/{LG_B}/residents/{rid}", headers=clerk_b).json()
           for rid in result["resident_ids"]]
    assert {r["juminhyo_code"] for r in new} == {
        client.get(f"/api/v1/municipalities/{LG_A}/residents/{rid}", headers=clerk_a).json()["juminhyo_code"]
        for rid in env.residents.values()}
    assert all(r["status"] == "active" and r["previous_address"] for r in new)

    # 5. One checklist: every procedure a move-in triggers, with its state and evidence.
    listed = client.get(f"{ARR_B}/households/{result['household_id']}/checklist", headers=clerk_b)
    assert listed.status_code == 200, listed.text
    items = {i["procedure_id"]: i for i in listed.json()["items"]}
    assert sorted(items) == MOVE_IN_PROCEDURES
    assert {i["state"] for i in items.values()} == {"todo"}
    assert all(e["status"] == "ok" for e in items["jido-teate"]["evidence"]), items["jido-teate"]["evidence"]
    assert client.get(f"{ARR_A}/households/{result['household_id']}/checklist",
                      headers=clerk_a).json()["items"] == []  # not the departure's
    assert client.get(f"{ARR_B}/households/{result['household_id']}/checklist",
                      headers=clerk_a).status_code == 403
    set_state = client.post(f"{ARR_B}/tasks/{items['kokuho-enrolment']['task_id']}/state", headers=clerk_b,
                            json={"state": "applied"})
    assert set_state.status_code == 200
    bad_state = client.post(f"{ARR_B}/tasks/{items['kokuho-enrolment']['task_id']}/state", headers=clerk_b,
                            json={"state": "finished"})
    assert bad_state.status_code == 422
    # The resident's view: the journey's state and the checklist with each item's state.
    portal = client.get("/portal/life-events", headers={"Accept": "text/html"})
    assert portal.status_code == 200
    assert "転入済み" in portal.text and 'id="task-kokuho-enrolment" data-state="applied"' in portal.text
    assert 'id="task-jido-teate" data-state="todo"' in portal.text
    # Reading the feed again creates nothing new (the move-in's tasks exist once).
    again_feed = client.post(f"{ARR_B}/feed/process", headers=clerk_b).json()
    assert again_feed["tasks"] == 0
    assert count(env, store.life_tasks, LG_B, LG_B) == len(MOVE_IN_PROCEDURES)


def test_counter_page_completes_the_move_in(journey: Env) -> None:
    env, client = journey, journey.client
    move = approve_move_out(env)
    signed_in = client.post("/login", data={"username": "clerk-b", "password": "correct-horse-battery"},
                            headers={"Accept": "text/html"})
    assert signed_in.status_code == 303
    page = client.get("/console/life-events", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "山田 太郎" in page.text
    refused = client.post(f"/console/life-events/{move['move_id']}/special-move-in",
                          data={"occurred_on": "2026-04-01", "town_code": "0001001", "banchi": "7番地"})
    assert refused.status_code == 403  # no CSRF token
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    done = client.post(f"/console/life-events/{move['move_id']}/special-move-in", data={
        "csrf_token": csrf, "occurred_on": "2026-04-01", "notified_on": "2026-04-01",
        "town_code": "0001001", "banchi": "7番地"})
    assert done.status_code == 303 and done.headers["location"].startswith("/console/residents/")


def test_birth_triggers_allowance_and_insurance_tasks(journey: Env) -> None:
    env, client = journey, journey.client
    clerk_a = env.staff["clerk-a"]
    head = client.get(f"/api/v1/municipalities/{LG_A}/residents/{env.residents['taro']}", headers=clerk_a).json()
    household_id = head["household_id"]
    before = client.get(f"{ARR_A}/households/{household_id}/checklist", headers=clerk_a).json()
    # The household's own 転入 (the fixture's, at the counter) triggered the move-in tasks.
    assert sorted(i["procedure_id"] for i in before["items"]) == MOVE_IN_PROCEDURES
    assert {i["trigger"] for i in before["items"]} == {"move_in"}
    born = client.post(f"/api/v1/municipalities/{LG_A}/changes/birth", headers=clerk_a, json={
        "household_id": household_id, "notified_on": "2026-03-31",
        "child": {"family_name": "山田", "given_name": "一郎", "family_kana": "ヤマダ", "given_kana": "イチロウ",
                  "birth_date": "2026-03-30", "sex": "1", "relationship": "子"}})
    assert born.status_code == 201, born.text
    child = born.json()["resident_ids"][0]
    listed = client.get(f"{ARR_A}/households/{household_id}/checklist", headers=clerk_a)
    assert listed.status_code == 200
    items = {i["procedure_id"]: i for i in listed.json()["items"] if i["trigger"] == "birth"}
    assert sorted(items) == ["jido-teate", "kokuho-enrolment"]
    assert all(i["resident_id"] == child and i["state"] == "todo" for i in items.values())
    # The evidence was fetched through the hub (household and income), not asked for.
    evidence = {e["item"]: e for e in items["jido-teate"]["evidence"]}
    assert evidence["jumin/household-composition"]["status"] == "ok"
    assert evidence["zeimu/income-certificate"]["status"] == "ok"
    assert evidence["zeimu/income-certificate"]["legal_basis"].startswith("児童手当法")
    # Idempotent: reading again, or processing the feed, makes no second set.
    again = client.get(f"{ARR_A}/households/{household_id}/checklist", headers=clerk_a).json()
    assert len(again["items"]) == len(listed.json()["items"])
    assert client.post(f"{ARR_A}/feed/process", headers=clerk_a).json()["tasks"] == 0
    # Another municipality's staff see none of it.
    assert client.get(f"{ARR_A}/households/{household_id}/checklist", headers=env.staff["clerk-b"]).status_code == 403
    # The resident sees the household's checklist in the portal.
    env.login("taro")
    portal = client.get("/portal/life-events", headers={"Accept": "text/html"})
    assert portal.status_code == 200 and 'id="task-jido-teate"' in portal.text


def test_data_sent_to_a_municipality_not_on_the_hub_is_kept_for_resending(journey: Env) -> None:
    env, client = journey, journey.client
    svc = client.app.state.services  # type: ignore[attr-defined]
    svc.linkage.suspend_member(f"JP/LG/{LG_B}/jumin")
    move = approve_move_out(env)
    assert move["status"] == "send_failed" and move["reason"] == "unknown-provider"
    assert client.get(f"{ARR_B}/arrivals", headers=env.staff["clerk-b"]).json()["items"] == []
    # Back on the hub: sending again delivers it.
    svc.linkage.register_municipality(LG_B, "横浜市")
    resent = client.post(f"{ARR_A}/moves/{move['move_id']}/resend", headers=env.staff["clerk-a"])
    assert resent.status_code == 200 and resent.json()["status"] == "sent", resent.text
    assert len(client.get(f"{ARR_B}/arrivals", headers=env.staff["clerk-b"]).json()["items"]) == 1


def test_one_member_moves_and_joins_a_household(journey: Env) -> None:
    env, client = journey, journey.client
    clerk_a, clerk_b = headers(env, "clerk-a"), headers(env, "clerk-b")
    env.login("hanako")
    form = {"move_date": "2026-04-10", "new_lgcode": LG_B, "new_address": "横浜市中区本町一丁目9番地",
            "members": "山田 花子"}
    made = env.submit("tenshutsu", form, who="hanako", payload=canonical_payload(LG_A, "tenshutsu", form))
    assert made.status_code == 201, made.text
    app_id = made.json()["id"]
    assert env.staff_post(app_id, "claim").status_code == 200
    assert env.staff_post(app_id, "approve").status_code == 200
    [move] = client.get(f"{ARR_A}/moves", headers=clerk_a).json()["items"]
    assert move["resident_ids"] == [env.residents["hanako"]] and move["status"] == "sent"
    stays = client.get(f"/api/v1/municipalities/{LG_A}/residents/{env.residents['taro']}", headers=clerk_a).json()
    assert stays["status"] == "active"  # the head stays

    # At the destination, the person who moves is no head: name the household she joins.
    host = client.post(f"/api/v1/municipalities/{LG_B}/changes/move-in", headers=clerk_b, json={
        "origin": "domestic", "occurred_on": "2026-03-01", "notified_on": "2026-03-02",
        "previous_address": "大阪府大阪市北区梅田1-1",
        "address": {"town_code": "0002001", "banchi": "9番地"},
        "members": [{"family_name": "佐藤", "given_name": "健", "family_kana": "サトウ", "given_kana": "ケン",
                     "birth_date": "1979-01-01", "sex": "1", "relationship": "世帯主"}]})
    assert host.status_code == 201, host.text
    household = host.json()["household_ids"][0]
    no_household = client.post(f"{ARR_B}/arrivals/{move['move_id']}/special-move-in", headers=clerk_b,
                               json={"occurred_on": "2026-04-01", "address": {"town_code": "0001001", "banchi": "1"}})
    assert no_household.status_code == 422 and no_household.json()["errors"][0]["field"] == "household_id"
    joined = client.post(f"{ARR_B}/arrivals/{move['move_id']}/special-move-in", headers=clerk_b, json={
        "occurred_on": "2026-04-01", "household_id": household, "relationships": {"0": "妻"}})
    assert joined.status_code == 201, joined.text
    assert joined.json()["household_id"] == household
    items = client.get(f"{ARR_B}/households/{household}/checklist", headers=clerk_b).json()["items"]
    move_in_tasks = {i["procedure_id"] for i in items if i["trigger"] == "move_in"}
    assert move_in_tasks == set(MOVE_IN_PROCEDURES)
