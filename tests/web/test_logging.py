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
