"""The specialist pool's pages: self-registration, the profile form, a need posted and
offered through forms, acceptance, the coverage chart; CSRF on every form."""

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
    svc = sqlite_world.svc
    svc.accounts.create("dx-a", PASSWORD, "DX 推進", ["digital_officer"], LG_A, svc.clock.now())
    app = create_app(sqlite_world.backend.settings, svc.clock, svc.db)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, username: str, page: str = "/talent") -> str:
    client.cookies.clear()
    response = client.post("/login", data={"username": username, "password": PASSWORD},
                           headers=HTML)
    assert response.status_code == 303, response.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page, headers=HTML).text)
    assert match
    return match.group(1)


def form_token(client: TestClient) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"',
                      client.get("/talent/register", headers=HTML).text)
    assert found
    return found.group(1)


PROFILE = {"display_name": "佐藤 花子", "skills": ["information_security", "bpr"],
           "regions": ["東京都"], "onsite": "1", "remote": "1", "days_per_month": "8",
           "rate_per_day": "45,000", "listed": "1", "experience": "監査10年"}
NEED = {"title": "情報セキュリティ規程の改定", "tasks": "規程改定と研修",
        "required_skills": ["information_security"], "days_per_month": "4",
        "start": "2026-05", "end": "2026-12", "onsite_percent": "25",
        "budget_per_month": "200000", "shares": ""}


def test_a_specialist_registers_keeps_a_profile_and_accepts_an_offer(client: TestClient) -> None:
    form = {"username": "sato", "display_name": "佐藤 花子", "password": PASSWORD}
    assert client.post("/talent/register", headers=HTML, data=form).status_code == 403
    token = form_token(client)
    short = client.post("/talent/register", headers=HTML,
                        data={**form, "password": "short", "form_token": token})
    assert short.status_code == 422 and "12文字以上" in short.text
    made = client.post("/talent/register", headers=HTML,
                       data={**form, "form_token": form_token(client)})
    assert made.status_code == 303 and made.headers["location"] == "/login?next=/talent/profile"

    csrf = sign_in(client, "sato", "/talent/profile")
    assert client.get("/console", headers=HTML).headers["location"] == "/talent"
    assert client.post("/talent/profile", headers=HTML, data=PROFILE).status_code == 403
    bad = client.post("/talent/profile", headers=HTML,
                      data={**PROFILE, "days_per_month": "40", "csrf_token": csrf})
    assert bad.status_code == 422 and 'id="days_per_month-error"' in bad.text
    saved = client.post("/talent/profile", headers=HTML, data={**PROFILE, "csrf_token": csrf})
    assert saved.status_code == 303
    hub = client.get("/talent", headers=HTML).text
    assert "月8日" in hub and "募集中の案件はありません" in hub

    csrf = sign_in(client, "dx-a")
    low = client.post("/talent/needs/new", headers=HTML,
                      data={**NEED, "budget_per_month": "1000", "csrf_token": csrf})
    assert low.status_code == 422 and "月額予算が少なすぎます" in low.text
    split = client.post("/talent/needs/new", headers=HTML,
                        data={**NEED, "shares": "131016 two", "csrf_token": csrf})
    assert split.status_code == 422 and "団体コード 日数" in split.text
    posted = client.post("/talent/needs/new", headers=HTML, data={**NEED, "csrf_token": csrf})
    assert posted.status_code == 303
    need_url = posted.headers["location"]
    page = client.get(need_url, headers=HTML).text
    assert "佐藤 花子" in page and "必須スキル 1/1: 情報セキュリティ" in page
    specialist_id = re.search(r'name="specialist_id" value="([^"]+)"', page)
    assert specialist_id
    offered = client.post(f"{need_url}/offer", headers=HTML,
                          data={"specialist_id": specialist_id.group(1), "csrf_token": csrf})
    assert offered.status_code == 303

    csrf = sign_in(client, "sato")
    engagement = re.search(r'href="(/talent/engagements/[0-9a-f]+)"',
                           client.get("/talent", headers=HTML).text)
    assert engagement
    accepted = client.post(f"{engagement.group(1)}/accept", headers=HTML,
                           data={"csrf_token": csrf})
    assert accepted.status_code == 303
    assert "契約中" in client.get(engagement.group(1), headers=HTML).text
    again = client.post(f"{engagement.group(1)}/accept", headers=HTML, data={"csrf_token": csrf})
    assert again.status_code == 409 and "契約中です" in again.text

    sign_in(client, "dx-a")
    chart = client.get("/talent/coverage", headers=HTML, params={"month": "2026-06"})
    assert chart.status_code == 200
    assert "<svg" in chart.text and "千代田区: 月4日" in chart.text
    assert client.get("/talent/coverage", headers=HTML,
                      params={"prefecture": "北海道"}).status_code == 403


def test_counter_clerks_cannot_post_needs(client: TestClient) -> None:
    sign_in(client, "clerk-a", "/console")
    assert client.get("/talent/needs/new", headers=HTML).status_code == 403


def test_sign_ups_are_limited_per_client(client: TestClient) -> None:
    for i in range(5):
        made = client.post("/talent/register", headers=HTML, data={
            "username": f"spam{i}", "display_name": "x" * 101, "password": PASSWORD,
            "form_token": form_token(client)})
        assert made.status_code == 422 and "100文字以内" in made.text
    sixth = client.post("/talent/register", headers=HTML, data={
        "username": "spam9", "display_name": "正しい 名前", "password": PASSWORD,
        "form_token": form_token(client)})
    assert sixth.status_code == 429
