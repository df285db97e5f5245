"""The standard's pages: public ones need no sign-in; the municipality's page records a
deviation through a CSRF-protected form; proposals are made and endorsed through forms."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kiban.web.app import create_app
from kiban_testkit import LG_A, PASSWORD, World

HTML = {"Accept": "text/html"}


@pytest.fixture
def client(sqlite_world: World) -> Iterator[TestClient]:
    sqlite_world.svc.accounts.create("admin-b", PASSWORD, "管理 B", ["municipality_admin"],
                                     "141003", sqlite_world.svc.clock.now())
    app = create_app(sqlite_world.backend.settings, sqlite_world.svc.clock, sqlite_world.svc.db)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, username: str, page: str) -> str:
    client.cookies.clear()
    assert client.post("/login", data={"username": username, "password": PASSWORD},
                       headers=HTML).status_code == 303
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page, headers=HTML).text)
    assert found
    return found.group(1)


def test_public_pages_need_no_sign_in(client: TestClient) -> None:
    home = client.get("/standard", headers=HTML)
    assert home.status_code == 200 and 'id="version"' in home.text
    reqs = client.get("/standard/requirements", params={"domain": "registry"}, headers=HTML)
    assert reqs.status_code == 200 and 'id="JR-0415"' in reqs.text and "挙動スイッチ" in reqs.text
    tax = client.get("/standard/requirements", params={"domain": "tax"}, headers=HTML)
    assert "JT-0001" in tax.text
    listing = client.get("/standard/deviations", headers=HTML)
    assert listing.status_code == 200 and "記録された逸脱はありません" in listing.text
    assert client.get("/api/v1/standard/requirements/JR-0401").json()["kind"] == "mandatory"
    assert client.get("/standard/proposals", headers=HTML).status_code == 303  # sign in first


def test_an_admin_records_and_withdraws_a_deviation_through_the_console(client: TestClient
                                                                         ) -> None:
    csrf = sign_in(client, "admin-a", "/console/standard")
    form = {"requirement": "JR-0415", "value": "require_reason",
            "what": "遅延届出に理由を求める", "reason": "簡易裁判所への通知事務のために理由を記録する",
            "decided_by": "千代田区長", "decided_on": "2026-03-01", "review_on": "2027-03-01"}
    assert client.post("/console/standard/deviations", data=form, headers=HTML).status_code == 403
    bad = client.post("/console/standard/deviations", headers=HTML,
                      data={**form, "review_on": "2035-01-01", "csrf_token": csrf})
    assert bad.status_code == 422 and "3年以内" in bad.text
    done = client.post("/console/standard/deviations", headers=HTML,
                       data={**form, "csrf_token": csrf})
    assert done.status_code == 303
    page = client.get("/console/standard", headers=HTML).text
    assert "require_reason" in page
    public = client.get("/standard/deviations", params={"lgcode": LG_A}, headers=HTML).text
    assert "遅延届出に理由を求める" in public and "千代田区長" in public
    deviation = re.search(r'/console/standard/deviations/([0-9a-f]+)/withdraw', page)
    assert deviation
    assert client.post(f"/console/standard/deviations/{deviation.group(1)}/withdraw",
                       headers=HTML, data={"csrf_token": csrf}).status_code == 303
    assert "記録された逸脱はありません" in client.get("/standard/deviations", headers=HTML).text


def test_proposals_through_forms(client: TestClient) -> None:
    csrf = sign_in(client, "clerk-a", "/standard/proposals")
    thin = client.post("/standard/proposals", headers=HTML, data={
        "requirement": "JR-0201", "title": "通称検索", "proposed_text": "通称でも検索できること。",
        "rationale": "短い", "csrf_token": csrf})
    assert thin.status_code == 422
    made = client.post("/standard/proposals", headers=HTML, data={
        "requirement": "JR-0201", "title": "通称検索", "proposed_text": "通称でも検索できること。",
        "rationale": "外国人住民の窓口で通称による照会が多いため。", "csrf_token": csrf})
    assert made.status_code == 303
    url = made.headers["location"]
    csrf = sign_in(client, "admin-b", url)
    assert client.post(f"{url}/endorse", headers=HTML, data={"csrf_token": csrf}).status_code == 303
    assert "141003" in client.get(url, headers=HTML).text
