"""The staff console over HTTP: sign-in, CSRF on every form, rate limiting, and isolation
between municipalities' staff."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kiban.web.app import create_app
from kiban_testkit import LG_A, PASSWORD, World, move_in_data

HTML = {"Accept": "text/html"}


@pytest.fixture
def app(sqlite_world: World):  # type: ignore[no-untyped-def]
    return create_app(sqlite_world.backend.settings, sqlite_world.svc.clock, sqlite_world.svc.db)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as c:
        yield c


def login(client: TestClient, username: str) -> str:
    response = client.post("/login", data={"username": username, "password": PASSWORD},
                           headers=HTML)
    assert response.status_code == 303, response.text
    page = client.get("/console", headers=HTML)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def test_console_requires_login(client: TestClient) -> None:
    response = client.get("/console", headers=HTML)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_login_failure_and_rate_limit(client: TestClient) -> None:
    for _ in range(5):
        bad = client.post("/login", data={"username": "clerk-a", "password": "nope-nope"},
                          headers=HTML)
        assert bad.status_code == 401
        assert "ユーザー名またはパスワードが違います" in bad.text
    # The sixth attempt is refused even with the right password.
    locked = client.post("/login", data={"username": "clerk-a", "password": PASSWORD},
                         headers=HTML)
    assert locked.status_code == 429


def test_open_redirect_refused(client: TestClient) -> None:
    response = client.post("/login", data={"username": "clerk-a", "password": PASSWORD,
                                           "next": "//evil.example/"}, headers=HTML)
    assert response.headers["location"] == "/console"


def test_forms_need_the_csrf_token(client: TestClient, sqlite_world: World) -> None:
    csrf = login(client, "clerk-a")
    form = {"origin": "domestic", "occurred_on": "2026-03-30", "notified_on": "2026-03-31",
            "previous_address": "大阪市", "town_code": "0001001", "banchi": "1-1",
            "family_name": "佐藤", "given_name": "健", "family_kana": "サトウ",
            "given_kana": "ケン", "birth_date": "1990-01-01", "sex": "1",
            "relationship": "世帯主"}
    refused = client.post("/console/move-in", data=form, headers=HTML)
    assert refused.status_code == 403
    forged = client.post("/console/move-in", data={**form, "csrf_token": "forged"},
                         headers=HTML)
    assert forged.status_code == 403
    assert sqlite_world.svc.registry.search(sqlite_world.clerk_a, LG_A,
                                            name="サトウ")["total"] == 0
    ok = client.post("/console/move-in", data={**form, "csrf_token": csrf}, headers=HTML)
    assert ok.status_code == 303 and ok.headers["location"].startswith("/console/residents/")
    # The cookie-authenticated JSON API needs the token too (as a header).
    api = client.post(f"/api/v1/municipalities/{LG_A}/changes/move-in", json=move_in_data())
    assert api.status_code == 403
    api = client.post(f"/api/v1/municipalities/{LG_A}/changes/move-in", json=move_in_data(),
                      headers={"X-CSRF-Token": csrf})
    assert api.status_code == 201


def test_bad_form_shows_inline_errors_and_keeps_values(client: TestClient) -> None:
    csrf = login(client, "clerk-a")
    response = client.post("/console/move-in", headers=HTML, data={
        "csrf_token": csrf, "origin": "domestic", "occurred_on": "2026-03-30",
        "notified_on": "2026-03-31", "previous_address": "大阪市", "town_code": "0001001",
        "banchi": "", "family_name": "佐藤", "family_kana": "sato", "given_kana": "ケン",
        "birth_date": "1990-01-01", "sex": "1", "relationship": "世帯主"})
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert "フリガナはカタカナで入力してください" in response.text
    assert 'value="佐藤"' in response.text


def test_staff_page_of_another_municipality_is_refused(client: TestClient,
                                                       sqlite_world: World) -> None:
    ids = sqlite_world.svc.registry.move_in(sqlite_world.clerk_a, LG_A,
                                            move_in_data())["resident_ids"]
    login(client, "clerk-b")
    response = client.get(f"/console/residents/{ids[0]}", headers=HTML)
    assert response.status_code == 404
    assert "山田" not in response.text
    listing = client.get("/console/residents?name=ヤマダ", headers=HTML)
    assert "山田" not in listing.text


def test_dashboard_draws_the_pyramid(client: TestClient, sqlite_world: World) -> None:
    sqlite_world.svc.registry.move_in(sqlite_world.clerk_a, LG_A, move_in_data())
    login(client, "clerk-a")
    page = client.get("/console", headers=HTML)
    assert page.status_code == 200
    assert "人口ピラミッド" in page.text and "<svg" in page.text
    assert 'id="count-residents">2<' in page.text


def test_logout_ends_the_session(client: TestClient) -> None:
    csrf = login(client, "clerk-a")
    assert client.post("/logout", data={"csrf_token": csrf}, headers=HTML).status_code == 303
    assert client.get("/console", headers=HTML).status_code == 303


def test_security_headers(client: TestClient) -> None:
    response = client.get("/login", headers=HTML)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_municipality_admin_edits_settings_within_bounds(client: TestClient,
                                                         sqlite_world: World) -> None:
    login(client, "admin-a")
    page = client.get("/admin/settings", headers=HTML)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": csrf, "certificate_issuer_title": "区長",
            "certificate_issuer_name": "千代田 太郎", "certificate_fee": "300",
            "late_notice_days": "14"}
    assert client.post("/admin/settings", data=form, headers=HTML).status_code == 200
    assert sqlite_world.svc.municipalities.get(LG_A)["settings"]["certificate_issuer_name"] == \
        "千代田 太郎"
    bad = client.post("/admin/settings", data={**form, "certificate_fee": "-5"}, headers=HTML)
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    # A counter clerk may not open it.
    client.cookies.clear()
    login(client, "clerk-a")
    assert client.get("/admin/settings", headers=HTML).status_code == 403
