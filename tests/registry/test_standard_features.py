"""Registry features of the standard through HTTP, on SQLite and PostgreSQL: the default
certificate form (JR-0504), the late-notice switch (JR-0415), changes of a foreign resident's
residence status (JR-0422), 支援措置による抑止 (JR-0301..0303), 住民票コードの変更請求
(JR-0421), third-party requests (JR-0505, JR-1904), 住民票記載事項証明書 (JR-0506) and the
access log (JR-1005): behaviour, refusals, role limits, and isolation between municipalities."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import func, select

from kiban.core.checkdigits import is_valid_juminhyo_code
from kiban.registry import store
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, move_in_data, person

API = "/api/v1"
FOREIGN = {"nationality": "フィリピン", "residence_status": "留学", "period": "1年",
           "expiry": "2026-12-31", "card_number": "EF12345678GH", "category": "中長期在留者"}


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    svc, now = world.svc, world.svc.clock.now()
    svc.accounts.create("admin-b", PASSWORD, "管理 B", ["municipality_admin"], LG_B, now)
    svc.accounts.create("super-b", PASSWORD, "責任 B", ["registry_supervisor"], LG_B, now)
    svc.accounts.create("privacy-a", PASSWORD, "保護 A", ["privacy_officer"], LG_A, now)
    with TestClient(create_app(world.backend.settings, svc.clock, svc.db)) as c:
        yield c


def auth(client: TestClient, username: str) -> dict[str, str]:
    response = client.post(f"{API}/tokens", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def base(lgcode: str = LG_A) -> str:
    return f"{API}/municipalities/{lgcode}"


def move_in(client: TestClient, headers: dict[str, str], lgcode: str = LG_A,
            **overrides: Any) -> dict[str, Any]:
    response = client.post(f"{base(lgcode)}/changes/move-in", json=move_in_data(**overrides),
                           headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def certificates(client: TestClient, headers: dict[str, str],
                 lgcode: str = LG_A) -> dict[str, dict[str, Any]]:
    response = client.get(f"{base(lgcode)}/certificates", headers=headers)
    assert response.status_code == 200, response.text
    return {c["serial"]: c for c in response.json()}


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


# --- JR-0504: the municipality's default certificate form ------------------------------------


def test_default_form_is_the_municipalitys_choice(client: TestClient) -> None:
    clerk, admin = auth(client, "clerk-a"), auth(client, "admin-a")
    head, spouse = move_in(client, clerk)["resident_ids"]
    first = client.post(f"{base()}/certificates", json={"resident_ids": [head, spouse]},
                        headers=clerk)
    assert first.status_code == 201, first.text
    assert client.patch(f"{base()}/settings", json={"certificate_default_form": "individual"},
                        headers=admin).status_code == 200
    second = client.post(f"{base()}/certificates", json={"resident_ids": [head, spouse]},
                         headers=clerk)
    asked = client.post(f"{base()}/certificates",
                        json={"resident_ids": [head], "form": "household"}, headers=clerk)
    issued = certificates(client, clerk)
    assert issued[first.headers["X-Certificate-Serial"]]["form"] == "household"
    assert issued[second.headers["X-Certificate-Serial"]]["form"] == "individual"
    assert len(PdfReader(io.BytesIO(second.content)).pages) == 2  # one 個人票 each
    assert issued[asked.headers["X-Certificate-Serial"]]["form"] == "household"
    # Another municipality keeps the standard's default.
    clerk_b = auth(client, "clerk-b")
    other = move_in(client, clerk_b, LG_B)["resident_ids"][0]
    in_b = client.post(f"{base(LG_B)}/certificates", json={"resident_ids": [other]},
                       headers=clerk_b)
    assert certificates(client, clerk_b, LG_B)[in_b.headers["X-Certificate-Serial"]][
        "form"] == "household"


# --- JR-0415: the late-notice switch --------------------------------------------------------

DEVIATION = {"requirement": "JR-0415", "what": "14日を過ぎた届出には遅延理由の記載を求める",
             "reason": "遅延届出の通知(簡易裁判所への通知)事務のため、理由を必ず記録する運用としている",
             "decided_by": "千代田区長", "decided_on": "2026-03-01", "review_on": "2028-03-31",
             "value": "require_reason"}


def test_late_reason_required_only_under_the_deviation(client: TestClient) -> None:
    clerk = auth(client, "clerk-a")
    made = move_in(client, clerk, occurred_on="2026-03-01", notified_on="2026-03-30",
                   late_reason="入院のため")
    assert made["late_notice"] is True and made["detail"]["late_reason"] == "入院のため"
    household = client.get(f"{base()}/residents/{made['resident_ids'][0]}",
                           headers=clerk).json()["household_id"]
    assert client.post(f"{base()}/deviations", json=DEVIATION,
                       headers=auth(client, "admin-a")).status_code == 201
    late_move = {"household_id": household, "occurred_on": "2026-03-01",
                 "notified_on": "2026-03-31",
                 "address": {"town_code": "0002001", "banchi": "5番地"}}
    refused = client.post(f"{base()}/changes/relocation", json=late_move, headers=clerk)
    assert refused.status_code == 422
    assert refused.json()["field"] == "late_reason" and "JR-0415" in refused.json()["title_ja"]
    assert "JR-0415" in refused.json()["title_en"]
    # A notice within 14 days needs no reason.
    on_time = move_in(client, clerk, members=[person(family_name="期限", family_kana="キゲン")])
    assert on_time["late_notice"] is False
    done = client.post(f"{base()}/changes/relocation", headers=clerk,
                       json={**late_move, "late_reason": "長期出張のため"})
    assert done.status_code == 201, done.text
    history = client.get(f"{base()}/residents/{made['resident_ids'][0]}/history",
                         headers=clerk).json()
    assert history[-1]["kind"] == "relocation" and history[-1]["late_notice"] is True
    assert history[-1]["detail"]["late_reason"] == "長期出張のため"
    # A late birth or death under the switch is refused too.
    death = client.post(f"{base()}/changes/death", headers=clerk, json={
        "resident_id": made["resident_ids"][1], "occurred_on": "2026-03-01",
        "notified_on": "2026-03-31"})
    assert death.status_code == 422 and death.json()["field"] == "late_reason"


# --- JR-0422: a foreign resident's residence status -----------------------------------------


def test_foreign_residence_status_change_is_validated_and_kept_in_history(
        client: TestClient) -> None:
    clerk, supervisor = auth(client, "clerk-a"), auth(client, "super-a")
    rid = move_in(client, clerk, origin="abroad", previous_address="", members=[
        person(foreign=FOREIGN)])["resident_ids"][0]
    url = f"{base()}/changes/correction"
    change = {"residence_status": "技術・人文知識・国際業務", "period": "5年",
              "expiry": "2031-03-31", "card_number": "IJ87654321KL"}
    body = {"resident_id": rid, "updates": {"foreign": change}, "reason": "在留資格変更の通知"}
    assert client.post(url, json=body, headers=clerk).status_code == 403
    done = client.post(url, json=body, headers=supervisor)
    assert done.status_code == 201, done.text
    got = client.get(f"{base()}/residents/{rid}", headers=clerk).json()["foreign"]
    assert got == {**FOREIGN, **change, "alias": ""}
    last = client.get(f"{base()}/residents/{rid}/history", headers=clerk).json()[-1]
    assert last["kind"] == "authority_correction"
    assert last["detail"]["foreign_fields"] == ["card_number", "expiry", "period",
                                                "residence_status"]
    assert last["before"][rid]["foreign"]["residence_status"] == "留学"
    assert last["after"][rid]["foreign"]["residence_status"] == "技術・人文知識・国際業務"
    for bad, field in (({"expiry": "2031-02-30"}, "updates.foreign.expiry"),
                       ({"period": ""}, "updates.foreign.period"),
                       ({"blood_type": "A"}, "updates.foreign.blood_type")):
        refused = client.post(url, headers=supervisor, json={**body, "updates": {"foreign": bad}})
        assert refused.status_code == 422 and refused.json()["field"] == field, refused.text
    assert client.get(f"{base()}/residents/{rid}", headers=clerk).json()["foreign"] == got
    japanese = move_in(client, clerk, members=[person(family_name="日本", family_kana="ニホン")])
    refused = client.post(url, headers=supervisor, json={
        **body, "resident_id": japanese["resident_ids"][0]})
    assert refused.status_code == 422 and refused.json()["field"] == "updates.foreign"


# --- JR-0301..0303: suppressions -------------------------------------------------------------


def test_suppression_lifecycle_stops_certificates_and_shows(client: TestClient,
                                                           world: World) -> None:
    clerk, supervisor = auth(client, "clerk-a"), auth(client, "super-a")
    head, spouse = move_in(client, clerk)["resident_ids"]
    url = f"{base()}/suppressions"
    body = {"resident_id": spouse, "reason": "DV等支援措置", "starts_on": "2026-04-01",
            "ends_on": "2027-03-31"}
    assert client.post(url, json=body, headers=clerk).status_code == 403
    assert client.get(url, headers=clerk).status_code == 403
    assert client.post(url, json={**body, "ends_on": "2026-01-01"},
                       headers=supervisor).json()["field"] == "ends_on"
    assert client.post(url, json={**body, "resident_id": "nobody"},
                       headers=supervisor).json()["field"] == "resident_id"
    made = client.post(url, json=body, headers=supervisor)
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    assert made.json()["active"] is True
    assert client.post(url, json=body, headers=supervisor).status_code == 409
    listed = client.get(url, params={"active": "true"}, headers=supervisor).json()
    assert [(s["id"], s["resident_id"]) for s in listed] == [(sid, spouse)]

    one = client.get(f"{base()}/residents/{spouse}", headers=clerk).json()
    assert one["suppressed"] is True
    assert client.get(f"{base()}/residents/{head}", headers=clerk).json()["suppressed"] is False
    found = client.get(f"{base()}/residents", params={"name": "ヤマダ"}, headers=clerk).json()
    assert {i["id"]: i["suppressed"] for i in found["items"]} == {head: False, spouse: True}
    household = client.get(f"{base()}/households/{one['household_id']}", headers=clerk).json()
    assert {m["id"]: m["suppressed"] for m in household["members"]} == {head: False,
                                                                         spouse: True}
    for who in (clerk, supervisor):
        for ids in ([spouse], [head, spouse]):
            refused = client.post(f"{base()}/certificates", json={"resident_ids": ids},
                                  headers=who)
            assert refused.status_code == 403
            assert refused.headers["content-type"].startswith("application/problem+json")
    # The head's own copy would print the shared address (and the head's name is on the
    # spouse's copy): while a member is suppressed, no copy of the household is issued.
    assert client.post(f"{base()}/certificates", json={"resident_ids": [head]},
                       headers=clerk).status_code == 403
    assert certificates(client, clerk) == {}

    # Another municipality sees and ends nothing of it.
    super_b = auth(client, "super-b")
    assert client.get(f"{base(LG_B)}/suppressions", headers=super_b).json() == []
    assert client.get(url, headers=super_b).status_code == 403
    assert client.post(f"{base(LG_B)}/suppressions/{sid}/end", json={},
                       headers=super_b).status_code == 404
    if world.backend.name == "postgresql":  # row-level security, not only the WHERE clause
        with world.svc.db.tenant(LG_B) as conn:
            assert conn.execute(select(func.count()).select_from(
                store.suppressions)).scalar_one() == 0
        with world.svc.db.tenant(LG_A) as conn:
            assert conn.execute(select(func.count()).select_from(
                store.suppressions)).scalar_one() == 1

    ended = client.post(f"{url}/{sid}/end", json={"reason": "支援措置の終了"}, headers=supervisor)
    assert ended.status_code == 200, ended.text
    assert ended.json()["active"] is False and ended.json()["ended_on"] == "2026-04-01"
    assert client.post(f"{url}/{sid}/end", json={}, headers=supervisor).status_code == 409
    assert client.get(url, params={"active": "true"}, headers=supervisor).json() == []
    assert [s["id"] for s in client.get(url, headers=supervisor).json()] == [sid]
    assert client.get(f"{base()}/residents/{spouse}", headers=clerk).json()["suppressed"] is False
    assert client.post(f"{base()}/certificates", json={"resident_ids": [spouse]},
                       headers=clerk).status_code == 201
    assert world.svc.registry.verify_ledger(LG_A)["ok"] is True


def test_a_future_suppression_is_listed_but_not_yet_in_force(client: TestClient) -> None:
    clerk, supervisor = auth(client, "clerk-a"), auth(client, "super-a")
    rid = move_in(client, clerk)["resident_ids"][0]
    made = client.post(f"{base()}/suppressions", headers=supervisor, json={
        "resident_id": rid, "reason": "DV等支援措置", "starts_on": "2026-05-01"})
    assert made.status_code == 201 and made.json()["active"] is False
    assert client.get(f"{base()}/suppressions", params={"active": "false"},
                      headers=supervisor).json()[0]["id"] == made.json()["id"]
    assert client.get(f"{base()}/residents/{rid}", headers=clerk).json()["suppressed"] is False


# --- JR-0421: 住民票コードの変更請求 ----------------------------------------------------------------


def test_juminhyo_code_change_gives_a_new_code_and_keeps_the_old_in_history(
        client: TestClient) -> None:
    clerk = auth(client, "clerk-a")
    rid = move_in(client, clerk)["resident_ids"][0]
    old = client.get(f"{base()}/residents/{rid}", headers=clerk).json()["juminhyo_code"]
    url = f"{base()}/changes/juminhyo-code-change"
    done = client.post(url, headers=clerk, json={"resident_id": rid, "notified_on": "2026-04-01",
                                                 "reason": "本人の請求"})
    assert done.status_code == 201, done.text
    assert done.json()["kind"] == "juminhyo_code_change"
    new = client.get(f"{base()}/residents/{rid}", headers=clerk).json()["juminhyo_code"]
    assert new != old and is_valid_juminhyo_code(new)
    assert client.get(f"{base()}/residents", params={"juminhyo_code": old},
                      headers=clerk).json()["total"] == 0
    assert client.get(f"{base()}/residents", params={"juminhyo_code": new},
                      headers=clerk).json()["total"] == 1
    last = client.get(f"{base()}/residents/{rid}/history", headers=clerk).json()[-1]
    assert last["before"][rid]["juminhyo_code"] == old
    assert last["after"][rid]["juminhyo_code"] == new
    future = client.post(url, headers=clerk, json={"resident_id": rid,
                                                   "notified_on": "2026-04-02"})
    assert future.status_code == 422 and future.json()["field"] == "notified_on"
    missing = client.post(url, headers=clerk, json={"resident_id": "nobody",
                                                    "notified_on": "2026-04-01"})
    assert missing.status_code == 422 and missing.json()["field"] == "resident_id"
    # Another municipality cannot change it.
    other = client.post(f"{base(LG_B)}/changes/juminhyo-code-change",
                        headers=auth(client, "clerk-b"),
                        json={"resident_id": rid, "notified_on": "2026-04-01"})
    assert other.status_code == 422
    assert client.get(f"{base()}/residents/{rid}", headers=clerk).json()["juminhyo_code"] == new


# --- JR-0505 / JR-1904: third-party requests --------------------------------------------------


def test_third_party_request_is_recorded_and_never_carries_the_my_number(
        client: TestClient) -> None:
    clerk, supervisor = auth(client, "clerk-a"), auth(client, "super-a")
    rid = move_in(client, supervisor, members=[person(my_number="123456789018")])[
        "resident_ids"][0]
    requester = {"kind": "third_party", "name": "適合 債権者", "purpose": "債権回収のため"}
    issued = client.post(f"{base()}/certificates", headers=clerk,
                         json={"resident_ids": [rid], "requester": requester})
    assert issued.status_code == 201, issued.text
    listed = certificates(client, clerk)[issued.headers["X-Certificate-Serial"]]
    assert listed["requester"] == requester
    refused = client.post(f"{base()}/certificates", headers=supervisor, json={
        "resident_ids": [rid], "my_number": True, "requester": requester})
    assert refused.status_code == 422 and refused.json()["field"] == "my_number"
    no_purpose = client.post(f"{base()}/certificates", headers=clerk, json={
        "resident_ids": [rid], "requester": {"kind": "third_party", "name": "誰か"}})
    assert no_purpose.status_code == 422
    assert no_purpose.json()["field"] == "requester.purpose"
    assert client.post(f"{base()}/certificates", headers=clerk, json={
        "resident_ids": [rid], "requester": {"kind": "agent"}}).status_code == 422
    assert len(certificates(client, clerk)) == 1
    own = client.post(f"{base()}/certificates", headers=supervisor, json={
        "resident_ids": [rid], "my_number": True, "requester": {"kind": "self"}})
    assert own.status_code == 201
    assert "123456789018" in pdf_text(own.content).replace(" ", "")
    assert "123456789018" not in pdf_text(issued.content).replace(" ", "")


# --- JR-0506: 住民票記載事項証明書 -----------------------------------------------------------------


def test_kisai_jiko_certifies_only_the_requested_items(client: TestClient) -> None:
    clerk = auth(client, "clerk-a")
    rid = move_in(client, clerk, members=[person(honseki="東京都千代田区千代田1")])[
        "resident_ids"][0]
    issued = client.post(f"{base()}/certificates", headers=clerk, json={
        "resident_ids": [rid], "kind": "kisai_jiko",
        "items": ["person.family_name", "person.given_name", "person.birth_date"]})
    assert issued.status_code == 201, issued.text
    text = pdf_text(issued.content)
    assert "住民票記載事項証明書" in text and "山田" in text and "太郎" in text
    assert "昭和55年5月5日" in text
    for absent in ("本町", "メゾン", "世帯主", "ヤマダ", "千代田1", "住民票コード", "個人番号"):
        assert absent not in text, absent
    listed = certificates(client, clerk)[issued.headers["X-Certificate-Serial"]]
    assert listed["kind"] == "kisai_jiko"
    assert listed["options"]["items"] == ["person.family_name", "person.given_name",
                                          "person.birth_date"]
    with_address = client.post(f"{base()}/certificates", headers=clerk, json={
        "resident_ids": [rid], "kind": "kisai_jiko", "items": ["address", "person.family_name"]})
    assert "本町一丁目" in pdf_text(with_address.content)
    for body, field in (({"kind": "kisai_jiko"}, "items"),
                        ({"kind": "kisai_jiko", "items": []}, "items"),
                        ({"kind": "kisai_jiko", "items": ["person.my_number"]}, "items[0]"),
                        ({"items": ["person.family_name"]}, "items")):
        refused = client.post(f"{base()}/certificates", headers=clerk,
                              json={"resident_ids": [rid], **body})
        assert refused.status_code == 422 and refused.json()["field"] == field, refused.text
    assert len(certificates(client, clerk)) == 2


# --- JR-1005: access log --------------------------------------------------------------------


def test_access_log_names_who_read_and_certified(client: TestClient, world: World) -> None:
    clerk, supervisor = auth(client, "clerk-a"), auth(client, "super-a")
    admin, privacy = auth(client, "admin-a"), auth(client, "privacy-a")
    head, spouse = move_in(client, clerk)["resident_ids"]
    one = client.get(f"{base()}/residents/{head}", headers=clerk).json()
    client.get(f"{base()}/residents/{head}/history", headers=supervisor)
    client.get(f"{base()}/households/{one['household_id']}", headers=clerk)
    serial = client.post(f"{base()}/certificates", json={"resident_ids": [head]},
                         headers=clerk).headers["X-Certificate-Serial"]
    url = f"{base()}/access-log"
    log = client.get(url, params={"resident_id": head}, headers=admin)
    assert log.status_code == 200, log.text
    entries = log.json()["items"]
    seen = sorted((e["action"], e["staff"]["id"], e["subject"]) for e in entries)
    assert seen == sorted([("read", world.clerk_a.id, ""), ("read", world.supervisor_a.id,
                                                            "history"),
                           ("read", world.clerk_a.id, ""), ("certificate", world.clerk_a.id,
                                                            serial)])
    assert all(e["resident_id"] == head and e["staff"]["display_name"] for e in entries)
    assert "山田" not in log.text  # identifiers only
    spouse_log = client.get(url, params={"resident_id": spouse}, headers=privacy).json()["items"]
    assert [e["action"] for e in spouse_log] == ["read"]  # the household read
    by_staff = client.get(url, params={"staff_id": world.supervisor_a.id},
                          headers=admin).json()["items"]
    assert [e["subject"] for e in by_staff] == ["history"]
    for who in (clerk, supervisor):
        assert client.get(url, params={"resident_id": head}, headers=who).status_code == 403
    # Another municipality's administrator sees nothing of it.
    admin_b = auth(client, "admin-b")
    assert client.get(url, params={"resident_id": head}, headers=admin_b).status_code == 403
    assert client.get(f"{base(LG_B)}/access-log", params={"resident_id": head},
                      headers=admin_b).json()["items"] == []
    if world.backend.name == "postgresql":
        with world.svc.db.tenant(LG_B) as conn:
            assert conn.execute(select(func.count()).select_from(
                store.access_log)).scalar_one() == 0
