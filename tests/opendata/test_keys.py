"""Developer access, on SQLite and PostgreSQL: data users register for an API key (stored only
as a hash, shown once), calls count per day, anonymous callers get a lower limit, and a caller
over its limit gets 429 with Retry-After (CKAN envelope on the Action API, problem+json on
downloads); bad keys and bad registrations are refused."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kiban.opendata.service import OpenData
from kiban.opendata.store import opendata_api_keys
from kiban.web.app import create_app
from kiban_testkit import LG_A, World

SAMPLES = Path(__file__).parent / "samples"
A = "/api/3/action"
CSV = "/api/v1/opendata/datasets/131016-aed-locations.csv"


@pytest.fixture
def svc(world: World) -> OpenData:
    svc = OpenData(world.svc.db, world.svc.clock)
    svc.publish_csv(world.admin_a, LG_A, "aed_locations", (SAMPLES / "aed_locations.csv").read_bytes())
    return svc


@pytest.fixture
def client(world: World, svc: OpenData) -> Iterator[TestClient]:
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    app.state.opendata = svc  # the test can lower the limits of the app's own service
    with TestClient(app) as c:
        yield c


def _register(client: TestClient) -> str:
    made = client.post("/api/v1/opendata/keys", json={"name": "観光アプリ開発", "contact": "dev@example.jp",
                                                       "purpose": "観光施設の地図アプリ"})
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    assert key.startswith("kod_") and made.json()["per_minute"] > made.json()["anonymous_per_minute"]
    return key


def test_keys_are_stored_hashed_and_usage_is_counted(client: TestClient, world: World) -> None:
    key = _register(client)
    with world.svc.db.platform() as conn:
        rows = [dict(r) for r in conn.execute(select(opendata_api_keys)).mappings()]
    assert len(rows) == 1 and rows[0]["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert not any(key in str(v) for v in rows[0].values())  # the key itself is nowhere
    headers = {"X-API-Key": key}
    for _ in range(3):
        assert client.get(f"{A}/package_search", headers=headers).status_code == 200
    assert client.get(CSV, headers={"Authorization": key}).status_code == 200  # as CKAN sends
    me = client.get("/api/v1/opendata/keys/me", headers=headers).json()
    assert me["usage"] == [{"day": "2026-04-01", "requests": 4}] and me["name"] == "観光アプリ開発"
    assert client.delete("/api/v1/opendata/keys/me", headers=headers).status_code == 204
    revoked = client.get(f"{A}/package_search", headers=headers)
    assert revoked.status_code == 403 and revoked.json()["error"]["__type"] == "Authorization Error"


def test_rate_limits_anonymous_and_per_key(client: TestClient, svc: OpenData, world: World) -> None:
    svc.anonymous_per_minute = 3
    for _ in range(3):
        assert client.get(f"{A}/package_list").status_code == 200
    limited = client.get(f"{A}/package_list")
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["success"] is False
    assert limited.json()["error"]["__type"] == "Rate Limit Error"
    download = client.get(CSV)
    assert download.status_code == 429 and "retry-after" in download.headers
    assert download.headers["content-type"].startswith("application/problem+json")
    svc.anonymous_per_minute = 100  # registering is itself limited, so let it through
    key = _register(client)
    with world.svc.db.platform() as conn:
        conn.execute(update(opendata_api_keys).values(per_minute=2))
    keyed = {"X-API-Key": key}
    assert [client.get(f"{A}/package_list", headers=keyed).status_code for _ in range(3)] == [
        200, 200, 429]


BAD_KEYS = [{"X-API-Key": "kod_not-a-key"}, {"X-API-Key": "anything"},
            {"Authorization": "kod_wrong"}, {"Authorization": "Bearer kod_wrong"}]
BAD_REGISTRATIONS = [
    ({"name": "", "contact": "dev@example.jp"}, "name"),
    ({"name": "x", "contact": "not-an-address"}, "contact"),
    ({"name": "x" * 101, "contact": "dev@example.jp"}, "name"),
    ({"name": "x", "contact": "dev@example.jp", "purpose": "p" * 2001}, "purpose"),
    ({"contact": "dev@example.jp"}, "name"),
]


def test_bad_keys_and_registrations_are_refused(client: TestClient, world: World) -> None:
    # Loops, not parameters: one (PostgreSQL) database for every case.
    for headers in BAD_KEYS:
        action = client.get(f"{A}/package_list", headers=headers)
        assert action.status_code == 403 and action.json()["success"] is False, headers
        download = client.get(CSV, headers=headers)
        assert download.status_code == 403
        assert download.headers["content-type"].startswith("application/problem+json")
        assert client.get("/api/v1/opendata/keys/me", headers=headers).status_code == 403
    for body, field in BAD_REGISTRATIONS:
        refused = client.post("/api/v1/opendata/keys", json=body)
        assert refused.status_code == 422 and field in refused.text, body
    with world.svc.db.platform() as conn:
        assert conn.execute(select(opendata_api_keys)).first() is None


def test_developer_page_issues_a_key_once(client: TestClient) -> None:
    page = client.get("/opendata/developers")
    assert page.status_code == 200 and "API キー" in page.text and "<script" not in page.text
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token is not None
    forged = client.post("/opendata/developers", data={"form_token": "forged", "name": "x",
                                                       "contact": "a@b.jp"})
    assert forged.status_code == 403
    bad = client.post("/opendata/developers", data={"form_token": token.group(1), "name": "x",
                                                    "contact": "nope"})
    assert bad.status_code == 422 and "メールアドレス" in bad.text
    token = re.search(r'name="form_token" value="([^"]+)"', bad.text)
    assert token is not None
    made = client.post("/opendata/developers", data={"form_token": token.group(1),
                                                     "name": "研究室", "contact": "lab@example.ac.jp"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    key = re.search(r'<code id="new-key">(kod_[^<]+)</code>', made.text)
    assert key is not None
    assert client.get(f"{A}/package_list", headers={"X-API-Key": key.group(1)}).status_code == 200
