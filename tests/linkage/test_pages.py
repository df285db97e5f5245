"""Staff pages: registers, the volume chart and refusals (each municipality its own), publishing
a table through the form (CSRF, errors beside the field), and a resident's exchanges."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from linkage_kit import INSURER, ITEM, JUMIN_A, PROCEDURE, build

from kiban.linkage.client import HttpClient
from kiban.web.app import create_app
from kiban_testkit import PASSWORD, World

HTML = {"Accept": "text/html"}


def sign_in(client: TestClient, username: str, page: str) -> str:
    client.cookies.clear()
    response = client.post("/login", data={"username": username, "password": PASSWORD}, headers=HTML)
    assert response.status_code == 303, response.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page, headers=HTML).text)
    return match.group(1) if match else ""


def test_staff_pages(sqlite_world: World) -> None:
    world = sqlite_world
    setup = build(world)
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    app.state.services = world.svc
    client = TestClient(app, follow_redirects=False)
    insurer = HttpClient("http://testserver", INSURER, setup.insurer.key, setup.hub.hub_certificate,
                         clock=world.svc.clock, http=client)
    assert insurer.exchange(JUMIN_A, ITEM, PROCEDURE, setup.insurer_code).ok
    assert insurer.exchange(JUMIN_A, ITEM, "kenpo-other", setup.insurer_code).error == "not-permitted"

    csrf = sign_in(client, "platform", "/console/linkage")
    page = client.get("/console/linkage", headers=HTML).text
    assert INSURER in page and "全国健康保険協会" in page  # member register
    assert "番号法 第19条第8号" in page  # permission table
    assert '<svg class="volumes"' in page and "提供 1件" in page and "拒否 1件" in page  # chart
    assert "not-permitted" in page and "kenpo-other" in page  # refused exchanges

    missing = client.post("/console/linkage/permissions", headers=HTML,
                          data={"rules": '[{"requester": "x"}]', "note": ""})
    assert missing.status_code == 403  # no CSRF token
    bad = client.post("/console/linkage/permissions", headers=HTML,
                      data={"rules": '[{"requester": "x"}]', "note": "", "csrf_token": csrf})
    assert bad.status_code == 422 and "rules[0].requester" in bad.text
    rule = {"requester": INSURER, "provider": JUMIN_A, "item": ITEM, "procedure": PROCEDURE, "legal_basis": "b"}
    good = client.post("/console/linkage/permissions", headers=HTML, data={
        "rules": json.dumps([rule]), "note": "一本化", "csrf_token": csrf})
    assert good.status_code == 200 and "第2版" in good.text and "一本化" in good.text

    # A municipality's staff see their own subsystems' refusals only: 横浜市 sees none.
    sign_in(client, "clerk-b", "/console/linkage")
    other = client.get("/console/linkage", headers=HTML).text
    assert "not-permitted" not in other and "拒否された連携はありません" in other
    assert 'id="rules"' not in other  # only the platform administrator publishes

    sign_in(client, "clerk-a", "/console")
    mine = client.get(f"/console/linkage/residents/{setup.resident_id}", headers=HTML)
    assert mine.status_code == 200
    assert mine.text.count("確認済み") == 2 and "全国" not in mine.text.split("<h1>")[0]
    assert INSURER in mine.text and "拒否" in mine.text
    sign_in(client, "clerk-b", "/console")
    assert client.get(f"/console/linkage/residents/{setup.resident_id}", headers=HTML).status_code in (403, 404)
