"""Standard options and behaviour switches in a municipality's settings, and the public
deviation register, through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, bearer, move_in_data

API = "/api/v1"


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    svc = world.svc
    svc.accounts.create("admin-b", PASSWORD, "管理 B", ["municipality_admin"], LG_B,
                        svc.clock.now())
    with TestClient(create_app(world.backend.settings, svc.clock, svc.db)) as c:
        yield c


DEVIATION = {"requirement": "JR-0415", "what": "14日を過ぎた転入届には遅延理由の記載を求める",
             "reason": "遅延届出の通知(簡易裁判所への通知)事務のため、理由を必ず記録する運用としている",
             "decided_by": "千代田区長", "decided_on": "2026-03-01", "review_on": "2028-03-31",
             "value": "require_reason"}


def test_options_take_only_the_choices_the_spec_offers(client: TestClient) -> None:
    admin = bearer(client, "admin-a")
    ok = client.patch(f"{API}/municipalities/{LG_A}/settings", headers=admin,
                      json={"certificate_default_form": "individual"})
    assert ok.status_code == 200 and ok.json()["certificate_default_form"] == "individual"
    bad = client.patch(f"{API}/municipalities/{LG_A}/settings", headers=admin,
                       json={"certificate_default_form": "landscape"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "settings.certificate_default_form"
    assert bad.json()["title_ja"].startswith("JR-")
    unknown = client.patch(f"{API}/municipalities/{LG_A}/settings", headers=admin,
                           json={"my_own_field": "x"})
    assert unknown.status_code == 422
    state = client.get(f"{API}/municipalities/{LG_A}/standard", headers=admin).json()
    assert state["settings"]["certificate_default_form"]["value"] == "individual"
    assert state["settings"]["late_notice_policy"]["value"] == "flag"


def test_a_switch_changes_only_through_a_public_deviation(client: TestClient) -> None:
    admin, clerk = bearer(client, "admin-a"), bearer(client, "clerk-a")
    direct = client.patch(f"{API}/municipalities/{LG_A}/settings", headers=admin,
                          json={"late_notice_policy": "require_reason"})
    assert direct.status_code == 422 and "JR-0415" in direct.json()["title_ja"]

    late = move_in_data(occurred_on="2026-03-01", notified_on="2026-03-30")
    flagged = client.post(f"{API}/municipalities/{LG_A}/changes/move-in", json=late, headers=clerk)
    assert flagged.status_code == 201 and flagged.json()["late_notice"] is True

    recorded = client.post(f"{API}/municipalities/{LG_A}/deviations", json=DEVIATION,
                           headers=admin)
    assert recorded.status_code == 201, recorded.text
    public = client.get(f"{API}/standard/deviations")  # no sign-in: the register is public
    assert [(d["lgcode"], d["requirement"], d["value"]) for d in public.json()] == [
        (LG_A, "JR-0415", "require_reason")]
    assert client.get(f"{API}/standard/deviations", params={"lgcode": LG_B}).json() == []

    # The switch now holds: a late move-in without a reason is refused, naming the requirement.
    refused = client.post(f"{API}/municipalities/{LG_A}/changes/move-in", headers=clerk,
                          json=move_in_data(occurred_on="2026-03-01", notified_on="2026-03-30"))
    assert refused.status_code == 422 and "JR-0415" in refused.json()["title_ja"]
    with_reason = client.post(f"{API}/municipalities/{LG_A}/changes/move-in", headers=clerk,
                              json=move_in_data(occurred_on="2026-03-01",
                                                notified_on="2026-03-30",
                                                late_reason="入院のため届出が遅れた"))
    assert with_reason.status_code == 201, with_reason.text
    # Other municipalities keep the standard behaviour.
    other = client.post(f"{API}/municipalities/{LG_B}/changes/move-in", json=late,
                        headers=bearer(client, "clerk-b"))
    assert other.status_code == 201 and other.json()["late_notice"] is True

    withdrawn = client.post(f"{API}/standard/deviations/{recorded.json()['id']}/withdraw",
                            headers=admin)
    assert withdrawn.status_code == 200
    assert client.get(f"{API}/standard/deviations").json() == []
    state = client.get(f"{API}/municipalities/{LG_A}/standard", headers=admin).json()
    assert state["settings"]["late_notice_policy"]["value"] == "flag"


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"requirement": "JR-9999"}, 422, "requirement"),
    ({"requirement": "JR-1901"}, 422, "requirement"),  # not mandatory
    ({"reason": "短い"}, 422, "reason"),
    ({"review_on": "2030-01-01"}, 422, "review_on"),
    ({"review_on": "2026-02-01"}, 422, "review_on"),
    ({"decided_on": "2027-01-01"}, 422, "decided_on"),
    ({"value": "refuse"}, 422, "value"),
    ({"decided_on": "yesterday"}, 422, "decided_on"),
])
def test_bad_deviations_are_refused_and_nothing_is_recorded(client: TestClient,
                                                            change: dict[str, str], status: int,
                                                            field: str) -> None:
    response = client.post(f"{API}/municipalities/{LG_A}/deviations",
                           json={**DEVIATION, **change}, headers=bearer(client, "admin-a"))
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert client.get(f"{API}/standard/deviations").json() == []


def test_only_the_municipality_admin_records_its_own_deviations(client: TestClient) -> None:
    url = f"{API}/municipalities/{LG_A}/deviations"
    assert client.post(url, json=DEVIATION, headers=bearer(client, "clerk-a")).status_code == 403
    assert client.post(url, json=DEVIATION, headers=bearer(client, "admin-b")).status_code == 403
    first = client.post(url, json=DEVIATION, headers=bearer(client, "admin-a"))
    assert first.status_code == 201
    twice = client.post(url, json=DEVIATION, headers=bearer(client, "admin-a"))
    assert twice.status_code == 409
    other_withdraws = client.post(f"{API}/standard/deviations/{first.json()['id']}/withdraw",
                                  headers=bearer(client, "admin-b"))
    assert other_withdraws.status_code == 403
