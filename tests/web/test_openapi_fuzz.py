"""Property-based tests of the OpenAPI document (schemathesis strategies driven by Hypothesis):
whatever a client sends that the schema allows, the registry API answers without a server
error, and every error is problem+json."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiban.web.app import create_app
from kiban_testkit import LG_A, PASSWORD, World

OPERATIONS = [
    ("/api/v1/municipalities/{lgcode}/changes/move-in", "POST"),
    ("/api/v1/municipalities/{lgcode}/changes/relocation", "POST"),
    ("/api/v1/municipalities/{lgcode}/changes/move-out", "POST"),
    ("/api/v1/municipalities/{lgcode}/changes/correction", "POST"),
    ("/api/v1/municipalities/{lgcode}/changes/cancellation", "POST"),
    ("/api/v1/municipalities/{lgcode}/residents", "GET"),
    ("/api/v1/municipalities/{lgcode}/certificates", "POST"),
    ("/api/v1/municipalities/{lgcode}/statistics/population", "GET"),
    ("/api/v1/municipalities/{lgcode}/statistics/changes", "GET"),
    ("/api/v1/municipalities/{lgcode}/integration/changes", "GET"),
    ("/api/v1/municipalities/{lgcode}/extracts", "POST"),
]


@pytest.mark.parametrize("path, method", OPERATIONS)
def test_registry_api_never_fails_with_a_server_error(sqlite_world: World, path: str,
                                                      method: str) -> None:
    app = create_app(sqlite_world.backend.settings, sqlite_world.svc.clock, sqlite_world.svc.db)
    client = TestClient(app)
    token = client.post("/api/v1/tokens", json={"username": "super-a",
                                                "password": PASSWORD}).json()["token"]
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @given(data=st.data())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def check(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        case.path_parameters = {**(case.path_parameters or {}), "lgcode": LG_A}
        response = client.request(
            method, case.formatted_path, json=case.body if method == "POST" else None,
            params=case.query, headers={"Authorization": f"Bearer {token}"})
        seen.add(response.status_code)
        assert response.status_code < 500, f"{case.body!r} -> {response.text}"
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")

    seen: set[int] = set()
    check()
    assert 404 not in seen or method == "GET"  # the drawn requests reached the operation
