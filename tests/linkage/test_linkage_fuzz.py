"""Property-based requests from the OpenAPI document (schemathesis): whatever the schema allows,
the hub's exchange and log endpoints never answer with a server error. Exchange refusals are
signed protocol answers (application/json with X-Kiban-Error); other errors are problem+json."""

from __future__ import annotations

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from linkage_kit import INSURER, Setup, build

from kiban.linkage import protocol
from kiban.web.app import create_app
from kiban_testkit import World

OPERATIONS = [
    ("/api/v1/linkage/exchange", "POST"),
    ("/api/v1/linkage/ct/v1/get-proof-by-hash", "GET"),
    ("/api/v1/linkage/ct/v1/get-sth-consistency", "GET"),
    ("/api/v1/linkage/ct/v1/get-entries", "GET"),
    ("/api/v1/linkage/permissions", "GET"),
]


def test_hub_endpoints_never_fail_with_a_server_error(sqlite_world: World) -> None:
    setup = build(sqlite_world)
    app = create_app(sqlite_world.backend.settings, sqlite_world.svc.clock, sqlite_world.svc.db)
    app.state.services = sqlite_world.svc
    client = TestClient(app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    for path, method in OPERATIONS:
        fuzz(client, setup, schema[path][method], path, method, sqlite_world)


def fuzz(client: TestClient, setup: Setup, operation: object, path: str, method: str, world: World) -> None:
    sqlite_world = world

    @given(data=st.data(), sign=st.booleans())
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
    def check(data: st.DataObject, sign: bool) -> None:
        case = data.draw(operation.as_strategy())  # type: ignore[attr-defined]
        headers = {}
        if method == "POST":
            body = repr(case.body).encode() if not isinstance(case.body, dict) else \
                protocol.build_request(INSURER, setup.insurer.key, **_fields(case.body),
                                       now=sqlite_world.svc.clock.now()).body
            headers = {protocol.CLIENT_HEADER: INSURER}
            if sign:
                headers[protocol.SIGNATURE_HEADER] = protocol.sign(setup.insurer.key, body)
            response = client.post(path, content=body, headers=headers)
            assert response.status_code < 500, response.text
            assert response.status_code == 200 or response.headers["x-kiban-error"]
            return
        response = client.get(case.formatted_path, params=case.query)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")

    check()


def _fields(body: dict) -> dict:
    """The drawn body's values where build_request takes them (the rest the schema drew freely)."""
    return {"provider": str(body.get("provider", "")), "item": str(body.get("item", "")),
            "procedure": str(body.get("procedure", "")), "subject": str(body.get("subject", "")),
            "params": body.get("params") if isinstance(body.get("params"), dict) else {},
            "request_id": str(body.get("request_id", "")) or None}
