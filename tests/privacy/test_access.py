"""Purpose-bound access: each read recorded with who, when, which record, which fields, for
which purpose and through which screen or API; a purpose outside the reader's roles needs a
stated reason and is flagged; residents see who (department, role) read their record and why;
a municipality never sees another's records. The privacy officer's page, CSRF on its forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kiban.core.errors import ValidationFailed
from kiban.privacy.store import access_records
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, bearer
from privacy.kit import make_staff, seed_household

HTML = {"Accept": "text/html"}
API = f"/api/v1/municipalities/{LG_A}"


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    make_staff(world, "officer-a", ["privacy_officer"], department="総務課")
    make_staff(world, "officer-b", ["privacy_officer"], LG_B, department="総務課")
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def test_reads_are_recorded_with_purpose_and_out_of_purpose_needs_a_reason(
        world: World, client: TestClient) -> None:
    clerk = bearer(client, "clerk-a")
    moved = seed_household(client, clerk)
    rid = moved["resident_ids"][0]

    read = client.get(f"{API}/residents/{rid}", headers=clerk)
    assert read.status_code == 200
    refused = client.get(f"{API}/residents/{rid}", headers={
        **clerk, "X-Kiban-Purpose": "tax_assessment"})
    assert refused.status_code == 403 and "第69条" in refused.json()["errors"][0]["ja"]
    unknown = client.get(f"{API}/residents/{rid}", headers={**clerk, "X-Kiban-Purpose": "fun"})
    assert unknown.status_code == 403 and unknown.json()["errors"][0]["field"] == "purpose"
    reason = "税務課からの照会(文書番号 R8-123)に回答するため"
    flagged = client.get(f"{API}/residents/{rid}", headers={
        **clerk, "X-Kiban-Purpose": "tax_assessment", "X-Kiban-Access-Reason": quote(reason)})
    assert flagged.status_code == 200
    search = client.get(f"{API}/residents", params={"name": "ワシオ"}, headers=clerk)
    assert search.json()["total"] == 2
    extract = client.post(f"{API}/extracts", headers=bearer(client, "super-a"), json={
        "conditions": {"name": "鷲尾"}, "columns": ["person.family_name"]})
    assert extract.status_code == 200

    with world.svc.db.tenant(LG_A) as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(access_records).where(access_records.c.lgcode == LG_A)
            .order_by(access_records.c.at, access_records.c.channel))]
    mine = [r for r in rows if r["resident_id"] == rid]
    assert len(mine) == 3  # the refused reads left nothing; the search added one
    first = next(r for r in mine if r["channel"].endswith("/residents/{resident_id}")
                 and not r["flagged"])
    assert first["purpose"] == "resident_registration" and first["department"] == ""
    assert "birth_date" in first["fields"] and "my_number" not in first["fields"]
    assert first["channel"] == "api:GET /api/v1/municipalities/{lgcode}/residents/{resident_id}"
    out_of_purpose = next(r for r in mine if r["flagged"])
    assert out_of_purpose["purpose"] == "tax_assessment" and out_of_purpose["reason"] == reason
    bulk = next(r for r in rows if r["resident_id"] == "*")
    assert bulk["detail"]["conditions"] == ["name"] and "鷲尾" not in str(bulk["detail"])

    officer = bearer(client, "officer-a")
    listed = client.get(f"{API}/privacy/flagged-accesses", headers=officer).json()
    assert [a["reason"] for a in listed] == [reason]
    assert client.get(f"{API}/privacy/flagged-accesses", headers=clerk).status_code == 403

    # What the resident sees: department and role, when, why; never a staff member's name.
    seen = client.get(f"{API}/privacy/residents/{rid}/accesses", headers=officer).json()
    # (the officer's own look at the flagged reads is there too, as an audit)
    by_purpose = {i["purpose_ja"]: i["roles"] for i in seen["items"]}
    assert set(by_purpose) == {"住民基本台帳事務", "個人住民税の賦課", "個人情報保護の監査・苦情処理"}
    assert by_purpose["住民基本台帳事務"] == ["窓口担当"]
    assert by_purpose["個人情報保護の監査・苦情処理"] == ["個人情報保護担当"]
    assert "staff_id" not in seen["items"][0] and "窓口 一郎" not in str(seen)

    # The portal's call (the resident authenticated by the portal): the same view.
    own = world.svc.privacy.accesses_for_resident(LG_A, rid)
    assert len(own["items"]) == len(seen["items"]) + 1  # the officer's look just now
    with pytest.raises(ValidationFailed):
        world.svc.privacy.accesses_for_resident(LG_A, rid, per_page=0)

    # Another municipality's officer sees nothing of it.
    other = bearer(client, "officer-b")
    assert client.get(f"{API}/privacy/residents/{rid}/accesses", headers=other).status_code == 403
    assert client.get(f"/api/v1/municipalities/{LG_B}/privacy/flagged-accesses",
                      headers=other).json() == []
    with world.svc.db.tenant(LG_B) as conn:
        leaked = conn.execute(select(access_records.c.id)).all()  # no lgcode filter: RLS
    if world.svc.db.is_postgres:
        assert leaked == []


def test_officer_page_lists_flagged_reads_and_its_forms_need_csrf(sqlite_world: World) -> None:
    # Pages and CSRF are the web layer's: the storage paths are covered above on both.
    make_staff(sqlite_world, "officer-a", ["privacy_officer"], department="総務課")
    svc = sqlite_world.svc
    with TestClient(create_app(sqlite_world.backend.settings, svc.clock, svc.db),
                    follow_redirects=False) as client:
        officer_page(client)


def officer_page(client: TestClient) -> None:
    clerk = bearer(client, "clerk-a")
    rid = seed_household(client, clerk)["resident_ids"][0]
    client.get(f"{API}/residents/{rid}", headers={
        **clerk, "X-Kiban-Purpose": "audit", "X-Kiban-Access-Reason": quote("苦情調査の補助")})
    client.cookies.clear()
    client.post("/login", data={"username": "officer-a", "password": PASSWORD}, headers=HTML)
    page = client.get("/privacy", headers=HTML)
    assert page.status_code == 200 and "苦情調査の補助" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    forged = client.post("/privacy/budget", data={"epsilon_total": "2"}, headers=HTML)
    assert forged.status_code == 403
    saved = client.post("/privacy/budget", data={"epsilon_total": "2",
                                                 "csrf_token": token.group(1)}, headers=HTML)
    assert saved.status_code == 303
    assert "2.0" in client.get("/privacy", headers=HTML).text
    bad = client.post("/privacy/budget", data={"epsilon_total": "many",
                                               "csrf_token": token.group(1)}, headers=HTML)
    assert bad.status_code == 422 and "数値" in bad.text
    client.cookies.clear()
    client.post("/login", data={"username": "clerk-a", "password": PASSWORD}, headers=HTML)
    assert client.get("/privacy", headers=HTML).status_code == 403
