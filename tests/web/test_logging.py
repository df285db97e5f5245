"""No personal data in logs: the access log carries the path, never the query string."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from kiban.web.app import create_app
from kiban_testkit import LG_A, PASSWORD, World, move_in_data


def test_access_log_has_no_query_string_or_names(sqlite_world: World,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(sqlite_world.backend.settings, sqlite_world.svc.clock, sqlite_world.svc.db)
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="kiban"):
        token = client.post("/api/v1/tokens", json={"username": "clerk-a",
                                                    "password": PASSWORD}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        client.post(f"/api/v1/municipalities/{LG_A}/changes/move-in", json=move_in_data(),
                    headers=auth)
        client.get(f"/api/v1/municipalities/{LG_A}/residents",
                   params={"name": "ヤマダ", "birth_date": "1980-05-05"}, headers=auth)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert f"/api/v1/municipalities/{LG_A}/residents 200" in text
    for secret in ("ヤマダ", "%E3%83", "1980-05-05", "山田", PASSWORD, token):
        assert secret not in text


def test_unhandled_error_is_a_problem_500_without_traceback_or_personal_data(
        sqlite_world: World, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(sqlite_world.backend.settings, sqlite_world.svc.clock, sqlite_world.svc.db)

    def boom() -> None:
        raise RuntimeError("INSERT ... ('山田', '1980-05-05')")

    app.add_api_route("/api/v1/boom", boom, methods=["GET"])
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="kiban"):
        response = client.get("/api/v1/boom", params={"name": "ヤマダ"})
        page = client.get("/login", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["title"] == "Internal Server Error"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert "山田" not in response.text
    assert page.headers["X-Frame-Options"] == "DENY" and "Cache-Control" not in page.headers
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "unhandled RuntimeError on GET /api/v1/boom" in text
    assert "GET /api/v1/boom 500" in text
    for secret in ("山田", "1980-05-05", "ヤマダ", "%E3%83"):
        assert secret not in text
    assert all(r.exc_info is None and not r.exc_text for r in caplog.records)
