"""The assistant's fixtures: a world with the three demo municipalities and the demo content."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kiban.web.app import create_app
from kiban_testkit import World

SAPPORO = "011002"


def seed(world: World) -> World:
    svc = world.svc
    svc.municipalities.create(SAPPORO, "札幌市", "北海道", svc.clock.now())
    svc.assist.seed_demo()
    return world


@pytest.fixture
def assisted(sqlite_world: World) -> World:
    return seed(sqlite_world)


def _client(world: World) -> Iterator[TestClient]:
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    app.state.services = world.svc  # one Assist, so the index is built once
    with TestClient(app) as c:
        yield c


@pytest.fixture
def client(assisted: World) -> Iterator[TestClient]:
    """On SQLite (the suite runs on two shared cores; the rules are the same on both)."""
    yield from _client(assisted)


@pytest.fixture
def both_client(world: World) -> Iterator[TestClient]:
    """On SQLite and PostgreSQL: for the tests of adoption and of who sees what."""
    yield from _client(seed(world))
