"""Every route of the app, walked as a staff member holding every municipal role: a route
whose answer carries a seeded resident's data (name, reading, 住民票コード or ID) must have
left an access record for that request. A new route that reads personal data without
declaring it (kiban.privacy.access.personal_read) fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from kiban.web.app import create_app
from kiban_testkit import LG_A, PASSWORD, World, bearer
from privacy.kit import ALL_ROLES, access_counts, make_staff, seed_household

HTML = {"Accept": "text/html"}
# Searches by the reading: the kanji name in an answer then comes from the records, not from
# the query echoed back.
PARAMS = {"since": "2000-01-01", "q": "ワシオ", "name": "ワシオ"}


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    make_staff(world, "all-roles", ALL_ROLES)
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def browser(client: TestClient) -> Iterator[TestClient]:
    """The same app, signed in once through the login form (pages use the cookie)."""
    with TestClient(client.app, follow_redirects=False) as c:
        signed_in = c.post("/login", data={"username": "all-roles", "password": PASSWORD},
                           headers=HTML)
        assert signed_in.status_code == 303
        yield c


@dataclass
class Walked:
    path: str
    methods: set[str]
    dependant: Any


def routes(app: Any) -> list[Walked]:
    """Every HTTP route with its full path (FastAPI keeps included routers apart)."""
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            found.append(Walked(route.path, set(route.methods), route.dependant))
        elif hasattr(route, "effective_candidates"):
            found.extend(Walked(c.path, set(c.methods or ()), c.dependant)
                         for c in route.effective_candidates())
    return found


def declares_personal_read(route: Walked) -> bool:
    def walk(dependant: Any) -> bool:
        return any(getattr(d.call, "personal_read", False) or walk(d)
                   for d in dependant.dependencies)
    return walk(route.dependant)


def fill(route: Walked, ids: dict[str, str]) -> tuple[str, dict[str, str]] | None:
    path = route.path
    for name in re.findall(r"{(\w+)(?::\w+)?}", path):
        value = ids.get(name)
        if value is None:
            return None  # no such record seeded (another capability's route)
        path = re.sub(r"{" + name + r"(?::\w+)?}", value, path)
    query = {p.name: PARAMS[p.name] for p in route.dependant.query_params
             if p.name in PARAMS}
    return path, query


def test_no_route_returns_personal_data_without_an_access_record(
        world: World, client: TestClient, browser: TestClient) -> None:
    headers = bearer(client, "all-roles")
    moved = seed_household(client, headers)
    resident_id, household_id = moved["resident_ids"][0], moved["household_ids"][0]
    record = client.get(f"/api/v1/municipalities/{LG_A}/residents/{resident_id}",
                        headers=headers).json()
    ids = {"lgcode": LG_A, "resident_id": resident_id, "household_id": household_id,
           "juminhyo_code": record["juminhyo_code"]}
    markers = ["鷲尾", record["juminhyo_code"], *moved["resident_ids"]]

    unlogged: list[str] = []
    personal: list[str] = []
    walked = 0
    for route in routes(client.app):
        if "GET" not in route.methods and not declares_personal_read(route):
            continue
        filled = fill(route, ids)
        if filled is None:
            continue
        path, query = filled
        before = access_counts(world)
        if "GET" in route.methods:
            if route.path.startswith("/api/"):
                response = client.get(path, params=query, headers=headers)
            else:
                response = browser.get(path, params=query, headers=HTML)
        else:  # a declared POST read (the extract)
            response = client.post(path, headers=headers, json={
                "columns": ["person.family_name", "person.birth_date"]})
        walked += 1
        logged = access_counts(world) > before
        text = response.text
        if any(m in text for m in markers) and not logged:
            unlogged.append(f"{sorted(route.methods)} {route.path}")
        if any(m in text for m in markers):
            personal.append(route.path)
    assert walked > 20
    assert unlogged == [], f"routes return personal data without an access record: {unlogged}"
    # The walk did reach the registry's reads (else it proves nothing).
    assert {"/api/v1/municipalities/{lgcode}/residents",
            "/api/v1/municipalities/{lgcode}/residents/{resident_id}",
            "/api/v1/municipalities/{lgcode}/integration/changes",
            "/api/v1/municipalities/{lgcode}/extracts", "/console/residents",
            "/console/residents/{resident_id}"} <= set(personal)
