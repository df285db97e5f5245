"""A lighter world for the identity tests that need the registry: the two municipalities and
staff members as values (no accounts, so no password hashing per test, which dominates the
shared `world` fixture's cost). The registry keeps no reference to staff rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kiban.core.clock import FixedClock
from kiban.platform.auth import Role, StaffMember
from kiban.platform.db import Database
from kiban.web.context import Services
from kiban_testkit import LG_A, LG_B, TOWNS, Backend


@dataclass
class IdWorld:
    svc: Services
    backend: Backend
    clerk_a: StaffMember
    supervisor_a: StaffMember


def build(backend: Backend, clock: FixedClock) -> IdWorld:
    svc = Services.build(backend.settings, clock, Database(backend.settings))
    for code, name, pref in ((LG_A, "千代田区", "東京都"), (LG_B, "横浜市", "神奈川県")):
        svc.municipalities.create(code, name, pref, clock.now())
        svc.municipalities.set_towns(code, TOWNS, clock.now(), "test")

    def staff(username: str, role: Role) -> StaffMember:
        return StaffMember(f"id-{username}", LG_A, username, username, "", frozenset({role}))

    return IdWorld(svc, backend, staff("clerk-a", Role.COUNTER_CLERK), staff("super-a", Role.REGISTRY_SUPERVISOR))


@pytest.fixture
def id_world(sqlite_backend: Backend, clock: FixedClock) -> Iterator[IdWorld]:
    world = build(sqlite_backend, clock)
    yield world
    world.svc.db.dispose()


@pytest.fixture
def id_world_any(backend: Backend, clock: FixedClock) -> Iterator[IdWorld]:
    """On SQLite and PostgreSQL."""
    world = build(backend, clock)
    yield world
    world.svc.db.dispose()


_KEYS: list[Any] = []


def reuse_keys(monkeypatch: pytest.MonkeyPatch, size: int = 8) -> None:
    """The test CA's new keys from a pool made once per process (RSA-2048 generation dominates
    these tests' set-up); distinct within any one test, which issues fewer than `size`."""
    from kiban.identity import testca

    if not _KEYS:
        _KEYS.extend(testca.new_key() for _ in range(size))
    turn = iter(range(10**6))
    monkeypatch.setattr(testca, "new_key", lambda bits=2048: _KEYS[next(turn) % len(_KEYS)])
