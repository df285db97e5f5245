"""The specialist pool through HTTP, on SQLite and PostgreSQL: a joint need across three
municipalities end to end, the refusals its users meet, roles and who sees what."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, bearer

LG_C = "132012"  # 八王子市
LG_D = "132021"  # 立川市
API = "/api/v1/talent"


@dataclass
class Pool:
    client: TestClient
    world: World

    def auth(self, username: str) -> dict[str, str]:
        return bearer(self.client, username)


@pytest.fixture
def pool(world: World) -> Iterator[Pool]:
    svc, now = world.svc, world.svc.clock.now()
    for code, name in ((LG_C, "八王子市"), (LG_D, "立川市")):
        svc.municipalities.create(code, name, "東京都", now)
    for username, lgcode in (("dx-a", LG_A), ("dx-b", LG_B), ("dx-c", LG_C), ("dx-d", LG_D)):
        svc.accounts.create(username, PASSWORD, f"DX {lgcode}", ["digital_officer"], lgcode, now)
    for username in ("sato", "suzuki"):
        svc.accounts.create(username, PASSWORD, username, ["specialist"], None, now)
    app = create_app(world.backend.settings, svc.clock, svc.db)
    with TestClient(app) as client:
        yield Pool(client, world)


def profile(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "display_name": "佐藤 花子", "skills": ["information_security", "standard_migration"],
        "experience": "県庁で情報セキュリティ監査を10年", "regions": ["東京都", "神奈川県"],
        "onsite": True, "remote": True, "days_per_month": 8, "rate_per_day": 45_000}
    base.update(overrides)
    return base


def joint_need(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "title": "三市共同の情報セキュリティ強化", "tasks": "規程改定、職員研修、監査対応",
        "required_skills": ["information_security"], "preferred_skills": ["standard_migration"],
        "days_per_month": 6, "start": "2026-04", "end": "2027-03", "onsite_percent": 40,
        "budget_per_month": 300_000,
        "shares": [{"lgcode": LG_A, "days": 2}, {"lgcode": LG_C, "days": 2},
                   {"lgcode": LG_D, "days": 2}]}
    base.update(overrides)
    return base


def test_a_joint_need_across_three_municipalities_end_to_end(pool: Pool) -> None:
    c = pool.client
    sato, suzuki = pool.auth("sato"), pool.auth("suzuki")
    a, dx_c, dx_d, dx_b = pool.auth("dx-a"), pool.auth("dx-c"), pool.auth("dx-d"), pool.auth("dx-b")
    me = c.put(f"{API}/specialists/me", json=profile(), headers=sato)
    assert me.status_code == 200, me.text
    sato_id = me.json()["id"]
    c.put(f"{API}/specialists/me", headers=suzuki, json=profile(
        display_name="鈴木 一郎", skills=["data_analysis"], regions=[], onsite=False))

    posted = c.post(f"{API}/needs", json=joint_need(), headers={**a, "Idempotency-Key": "n-1"})
    assert posted.status_code == 201, posted.text
    need = posted.json()
    assert need["status"] == "awaiting"
    assert [(s["lgcode"], s["confirmed"]) for s in need["shares"]] == [
        (LG_A, True), (LG_C, False), (LG_D, False)]
    again = c.post(f"{API}/needs", json=joint_need(), headers={**a, "Idempotency-Key": "n-1"})
    assert again.json()["id"] == need["id"]  # a retried post does not post twice
    # Not open yet: specialists and other municipalities do not see it.
    assert c.get(f"{API}/needs", headers=sato).json() == []
    assert c.get(f"{API}/needs/{need['id']}", headers=dx_b).status_code == 404
    assert c.post(f"{API}/needs/{need['id']}/confirm", headers=dx_b).status_code == 404
    assert c.post(f"{API}/needs/{need['id']}/confirm", headers=dx_c).json()["status"] == "awaiting"
    assert c.post(f"{API}/needs/{need['id']}/confirm", headers=dx_d).json()["status"] == "open"

    ranked = c.get(f"{API}/needs/{need['id']}/candidates", headers=a).json()
    assert [(r["specialist"]["display_name"], r["eligible"]) for r in ranked] == [
        ("佐藤 花子", True), ("鈴木 一郎", False)]
    assert "対応地域: 東京都" in ranked[0]["reasons"]
    # A participating municipality may look at the candidates; only the lead offers (below).
    assert c.get(f"{API}/needs/{need['id']}/candidates", headers=dx_c).status_code == 200
    assert c.get(f"{API}/needs/{need['id']}/candidates", headers=dx_b).status_code == 403
    matches = c.get(f"{API}/matches", headers=sato).json()
    assert matches[0]["need"]["id"] == need["id"] and matches[0]["eligible"]

    offered = c.post(f"{API}/needs/{need['id']}/offers", json={"specialist_id": sato_id},
                     headers=a)
    assert offered.status_code == 201, offered.text
    engagement = offered.json()
    assert engagement["status"] == "offered" and engagement["days_per_month"] == 6
    assert c.post(f"{API}/needs/{need['id']}/offers", json={"specialist_id": sato_id},
                  headers=dx_c).status_code == 403  # only the lead offers
    accepted = c.post(f"{API}/engagements/{engagement['id']}/accept", headers=sato)
    assert accepted.json()["status"] == "accepted"
    assert c.get(f"{API}/needs/{need['id']}", headers=a).json()["status"] == "filled"

    report = c.post(f"{API}/engagements/{engagement['id']}/reports", headers=sato, json={
        "month": "2026-04", "days": {LG_A: 2, LG_C: 2, LG_D: 1},
        "summary": "三市の規程の現状を確認"})
    assert report.status_code == 201, report.text
    # Every participating municipality sees the engagement and its report; no one else.
    for who in (dx_c, dx_d):
        seen = c.get(f"{API}/engagements/{engagement['id']}", headers=who).json()
        assert seen["reports"][0]["days"] == {LG_A: 2, LG_C: 2, LG_D: 1}
    assert c.get(f"{API}/engagements/{engagement['id']}", headers=dx_b).status_code == 404
    assert c.get(f"{API}/engagements/{engagement['id']}", headers=suzuki).status_code == 404
    assert [e["id"] for e in c.get(f"{API}/engagements", headers=dx_d).json()] == [
        engagement["id"]]
    assert c.get(f"{API}/engagements", headers=dx_b).json() == []

    coverage = c.get(f"{API}/coverage/東京都", headers=a).json()
    assert [(m["lgcode"], m["days"]) for m in coverage["municipalities"]] == [
        (LG_A, 2), (LG_C, 2), (LG_D, 2)]
    assert coverage["uncovered"] == 0
    assert c.get(f"{API}/coverage/神奈川県", headers=a).status_code == 403

    ended = c.post(f"{API}/engagements/{engagement['id']}/end", headers=a,
                   json={"last_month": "2026-09"})
    assert ended.json()["status"] == "ended"
    for who, rating in ((a, 5), (dx_c, 4), (dx_d, 4)):
        done = c.post(f"{API}/engagements/{engagement['id']}/evaluations", headers=who,
                      json={"rating": rating, "comment": "丁寧な支援"})
        assert done.status_code == 201, done.text
    assert len(done.json()["evaluations"]) == 3
    assert c.post(f"{API}/engagements/{engagement['id']}/evaluations", headers=a,
                  json={"rating": 5}).status_code == 409
    # The months after the end are free again.
    mine = c.get(f"{API}/specialists/me", headers=sato).json()
    assert mine["completed_engagements"] == 1


@pytest.fixture
def open_need(pool: Pool) -> tuple[str, str]:
    """An open need of LG_A alone and a specialist with 8 days a month."""
    c = pool.client
    sato_id = c.put(f"{API}/specialists/me", json=profile(), headers=pool.auth("sato")).json()["id"]
    need = c.post(f"{API}/needs", json=joint_need(shares=None, days_per_month=6),
                  headers=pool.auth("dx-a")).json()
    assert need["status"] == "open"
    return need["id"], sato_id


def test_over_commitment_is_refused_naming_the_month(pool: Pool,
                                                     open_need: tuple[str, str]) -> None:
    c, (need_id, sato_id) = pool.client, open_need
    sato, a, dx_c = pool.auth("sato"), pool.auth("dx-a"), pool.auth("dx-c")
    first = c.post(f"{API}/needs/{need_id}/offers", json={"specialist_id": sato_id}, headers=a)
    c.post(f"{API}/engagements/{first.json()['id']}/accept", headers=sato)
    other = c.post(f"{API}/needs", headers=dx_c, json=joint_need(
        shares=None, days_per_month=4, start="2026-06", end="2026-08")).json()
    refused = c.post(f"{API}/needs/{other['id']}/offers", json={"specialist_id": sato_id},
                     headers=dx_c)
    assert refused.status_code == 422
    assert refused.json()["field"] == "days"
    assert "2026-06 は既に月6日の契約があり、空きは2日です" in refused.json()["title_ja"]
    # Two offers that each fit alone: the second acceptance is refused.
    small = c.post(f"{API}/needs", headers=dx_c, json=joint_need(
        shares=None, days_per_month=2, start="2026-06", end="2026-08")).json()
    also = c.post(f"{API}/needs", headers=pool.auth("dx-d"), json=joint_need(
        shares=None, days_per_month=2, start="2026-07", end="2026-07")).json()
    o1 = c.post(f"{API}/needs/{small['id']}/offers", json={"specialist_id": sato_id},
                headers=dx_c).json()
    o2 = c.post(f"{API}/needs/{also['id']}/offers", json={"specialist_id": sato_id},
                headers=pool.auth("dx-d")).json()
    assert c.post(f"{API}/engagements/{o1['id']}/accept", headers=sato).status_code == 200
    late = c.post(f"{API}/engagements/{o2['id']}/accept", headers=sato)
    assert late.status_code == 422 and "2026-07" in late.json()["title_ja"]
    # Nor can the specialist lower their days below what they have committed.
    lower = c.put(f"{API}/specialists/me", json=profile(days_per_month=6), headers=sato)
    assert lower.status_code == 422 and lower.json()["field"] == "days_per_month"


def test_overlapping_engagements_and_bad_reports_are_refused(pool: Pool,
                                                             open_need: tuple[str, str]) -> None:
    c, (need_id, sato_id) = pool.client, open_need
    sato, a = pool.auth("sato"), pool.auth("dx-a")
    first = c.post(f"{API}/needs/{need_id}/offers", json={"specialist_id": sato_id},
                   headers=a).json()
    twice = c.post(f"{API}/needs/{need_id}/offers", headers=a, json={
        "specialist_id": sato_id, "days": {LG_A: 1}, "start": "2026-05", "end": "2026-06"})
    assert twice.status_code in (409, 422)
    assert c.post(f"{API}/needs/{need_id}/offers", headers=a, json={
        "specialist_id": sato_id, "start": "2025-01"}).status_code == 422
    c.post(f"{API}/engagements/{first['id']}/accept", headers=sato)
    assert c.post(f"{API}/engagements/{first['id']}/accept", headers=sato).status_code == 409
    for bad, field in (({"month": "2026-04", "days": {LG_A: 7}, "summary": "x"}, f"days.{LG_A}"),
                       ({"month": "2026-04", "days": {LG_B: 1}, "summary": "x"}, f"days.{LG_B}"),
                       ({"month": "2026-05", "days": {LG_A: 1}, "summary": "x"}, "month"),
                       ({"month": "2026-04", "days": {LG_A: 1}, "summary": ""}, "summary")):
        response = c.post(f"{API}/engagements/{first['id']}/reports", json=bad, headers=sato)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["field"] == field
    ok = {"month": "2026-04", "days": {LG_A: 6}, "summary": "初月"}
    assert c.post(f"{API}/engagements/{first['id']}/reports", json=ok,
                  headers=sato).status_code == 201
    assert c.post(f"{API}/engagements/{first['id']}/reports", json=ok,
                  headers=sato).status_code == 409


def test_impossible_needs_are_refused_and_nothing_is_posted(pool: Pool) -> None:
    c, a = pool.client, pool.auth("dx-a")
    refused = c.post(f"{API}/needs", headers=a, json=joint_need(
        days_per_month=30, end="2026-01", onsite_percent=120, budget_per_month=10,
        required_skills=["juggling"]))
    assert refused.status_code == 422
    fields = {e["field"] for e in refused.json()["errors"]}
    assert {"days_per_month", "end", "onsite_percent", "required_skills"} <= fields
    split = c.post(f"{API}/needs", headers=a, json=joint_need(
        shares=[{"lgcode": LG_A, "days": 2}, {"lgcode": LG_C, "days": 1}]))
    assert split.status_code == 422 and "合計" in split.json()["title_ja"]
    assert c.get(f"{API}/needs", params={"scope": "mine"}, headers=a).json() == []


def test_roles_decide_who_posts_offers_and_keeps_profiles(pool: Pool) -> None:
    c = pool.client
    clerk, sato = pool.auth("clerk-a"), pool.auth("sato")
    assert c.post(f"{API}/needs", json=joint_need(shares=None), headers=clerk).status_code == 403
    assert c.post(f"{API}/needs", json=joint_need(shares=None), headers=sato).status_code == 403
    assert c.put(f"{API}/specialists/me", json=profile(),
                 headers=pool.auth("dx-a")).status_code == 403
    assert c.get(f"{API}/needs", headers=clerk).status_code == 403
    assert c.get(f"{API}/matches", headers=sato).status_code == 422  # no profile yet
    assert c.get(f"{API}/needs").status_code == 401


def test_hidden_fields_are_shown_only_to_engaged_municipalities(pool: Pool,
                                                                open_need: tuple[str, str]) -> None:
    c, (need_id, sato_id) = pool.client, open_need
    sato = pool.auth("sato")
    c.put(f"{API}/specialists/me", headers=sato,
          json=profile(hidden=["display_name", "rate_per_day"]))
    outsider = c.get(f"{API}/specialists/{sato_id}", headers=pool.auth("dx-b")).json()
    assert outsider["display_name"].startswith("専門人材 ") and outsider["rate_per_day"] is None
    assert outsider["skills"] == ["information_security", "standard_migration"]
    assert "hidden" not in outsider
    offer = c.post(f"{API}/needs/{need_id}/offers", json={"specialist_id": sato_id},
                   headers=pool.auth("dx-a")).json()
    # An offer alone does not unmask (offer and withdraw would read anything hidden).
    offered = c.get(f"{API}/specialists/{sato_id}", headers=pool.auth("dx-a")).json()
    assert offered["display_name"].startswith("専門人材 ") and offered["rate_per_day"] is None
    assert offer["specialist_name"].startswith("専門人材 ")
    c.post(f"{API}/engagements/{offer['id']}/accept", headers=sato)
    engaged = c.get(f"{API}/specialists/{sato_id}", headers=pool.auth("dx-a")).json()
    assert engaged["display_name"] == "佐藤 花子" and engaged["rate_per_day"] == 45_000


def test_bad_profiles_are_refused_with_every_field(pool: Pool) -> None:
    response = pool.client.put(f"{API}/specialists/me", headers=pool.auth("sato"), json=profile(
        skills=["juggling"], regions=["東京"], days_per_month=40, onsite=False, remote=False))
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "skills", "regions", "days_per_month", "onsite"}
