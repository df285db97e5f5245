"""Whatever the OpenAPI schema lets a client send to the specialist pool's API, the answer is
never a server error, and every error is problem+json."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiban.web.app import create_app
from kiban_testkit import LG_A, PASSWORD, World

OPERATIONS = [
    ("/api/v1/talent/specialists/me", "PUT", "sato"),
    ("/api/v1/talent/needs", "POST", "dx-a"),
    ("/api/v1/talent/needs/{need_id}/offers", "POST", "dx-a"),
    ("/api/v1/talent/engagements/{engagement_id}/reports", "POST", "sato"),
    ("/api/v1/talent/coverage/{prefecture}", "GET", "dx-a"),
]


@pytest.mark.parametrize("path, method, username", OPERATIONS)
def test_talent_api_never_fails_with_a_server_error(sqlite_world: World, path: str, method: str,
                                                    username: str) -> None:
    svc = sqlite_world.svc
    now = svc.clock.now()
    dx = svc.accounts.create("dx-a", PASSWORD, "DX", ["digital_officer"], LG_A, now)
    sato = svc.accounts.create("sato", PASSWORD, "佐藤", ["specialist"], None, now)
    me = svc.talent.save_profile(sato, {"display_name": "佐藤", "skills": ["bpr"], "remote": True,
                                        "days_per_month": 10, "rate_per_day": 30000})
    need = svc.talent.post_need(dx, {
        "title": "業務改革", "tasks": "BPR", "required_skills": ["bpr"], "days_per_month": 4,
        "start": "2026-04", "end": "2026-09", "onsite_percent": 0, "budget_per_month": 200000})
    engagement = svc.talent.offer(dx, need["id"], {"specialist_id": me["id"]})
    svc.talent.respond(sato, engagement["id"], accept=True)
    app = create_app(sqlite_world.backend.settings, svc.clock, svc.db)
    client = TestClient(app)
    token = client.post("/api/v1/tokens", json={"username": username,
                                                "password": PASSWORD}).json()["token"]
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]
    ids = {"need_id": need["id"], "engagement_id": engagement["id"]}

    @given(data=st.data())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def check(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        params = dict(case.path_parameters or {})
        params.update({k: v for k, v in ids.items() if k in params})
        case.path_parameters = params
        response = client.request(
            method, case.formatted_path, json=case.body if method in ("POST", "PUT") else None,
            params=case.query, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 500, f"{case.body!r} -> {response.text}"
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")

    check()
