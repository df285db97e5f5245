"""Test kit shared by every test module: fixtures (re-exported by conftest.py), constants and
services with demo staff.

PostgreSQL tests create a throw-away database, migrate it as the owner (a superuser here) and
then connect as the application role, which owns nothing, so row-level security applies. When
PostgreSQL cannot be reached they skip, unless KIBAN_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import create_engine, text

from kiban.core.clock import FixedClock
from kiban.platform import settings as settings_module
from kiban.platform.auth import StaffMember
from kiban.platform.db import Database
from kiban.platform.migrate import upgrade
from kiban.web.context import Services

PG_URL = os.environ.get("KIBAN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("KIBAN_REQUIRE_POSTGRES") == "1"
NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)  # 2026-04-01 10:00 JST
LG_A = "131016"  # 千代田区
LG_B = "141003"  # 横浜市
PASSWORD = "correct-horse-battery"


def _pg_admin_url(database: str) -> str:
    base = settings_module.normalise_url(PG_URL)
    return base.rsplit("/", 1)[0] + f"/{database}"


def _pg_available() -> bool:
    try:
        engine = create_engine(settings_module.normalise_url(PG_URL))
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@dataclass
class Backend:
    name: str
    settings: settings_module.Settings
    cleanup: object = None


def _sqlite_backend(tmp_path: Path) -> Backend:
    url = f"sqlite:///{tmp_path / 'kiban.db'}"
    settings = settings_module.load({"KIBAN_DATABASE_URL": url, "KIBAN_MODE": "test"})
    return Backend("sqlite", settings)


def _pg_backend() -> tuple[Backend, str]:
    if not _pg_available():
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (KIBAN_REQUIRE_POSTGRES=1) but {PG_URL} "
                        "cannot be reached")
        pytest.skip("PostgreSQL not reachable")
    name = f"kiban_t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(settings_module.normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    admin = _pg_admin_url(name)
    app_url = admin.replace("://postgres@", "://kiban_app@").replace("://root@", "://kiban_app@")
    settings = settings_module.load({
        "KIBAN_DATABASE_URL": app_url, "KIBAN_DATABASE_ADMIN_URL": admin, "KIBAN_MODE": "test"})
    return Backend("postgresql", settings), name


def _drop_pg(name: str) -> None:
    engine = create_engine(settings_module.normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        b = _sqlite_backend(tmp_path)
        upgrade(b.settings)
        yield b
        return
    yield from _migrated_pg()


def _migrated_pg() -> Iterator[Backend]:
    b, name = _pg_backend()
    try:
        upgrade(b.settings)
        yield b
    finally:
        _drop_pg(name)


@pytest.fixture
def pg_backend() -> Iterator[Backend]:
    yield from _migrated_pg()


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Backend:
    b = _sqlite_backend(tmp_path)
    upgrade(b.settings)
    return b


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@dataclass
class World:
    svc: Services
    backend: Backend
    clerk_a: StaffMember
    supervisor_a: StaffMember
    clerk_b: StaffMember
    admin_a: StaffMember
    platform: StaffMember


TOWNS = [{"code": "0001001", "name": "本町一丁目"}, {"code": "0001002", "name": "本町二丁目"},
         {"code": "0002001", "name": "緑町一丁目"}]


def build_world(backend: Backend, clock: FixedClock) -> World:
    db = Database(backend.settings)
    svc = Services.build(backend.settings, clock, db)
    for code, name, pref in ((LG_A, "千代田区", "東京都"), (LG_B, "横浜市", "神奈川県")):
        svc.municipalities.create(code, name, pref, clock.now())
        svc.municipalities.set_towns(code, TOWNS, clock.now(), "test")
    acc = svc.accounts
    return World(
        svc=svc, backend=backend,
        clerk_a=acc.create("clerk-a", PASSWORD, "窓口 一郎", ["counter_clerk"], LG_A, clock.now()),
        supervisor_a=acc.create("super-a", PASSWORD, "責任 花子", ["registry_supervisor"], LG_A,
                                clock.now()),
        clerk_b=acc.create("clerk-b", PASSWORD, "窓口 次郎", ["counter_clerk"], LG_B, clock.now()),
        admin_a=acc.create("admin-a", PASSWORD, "管理 三郎", ["municipality_admin"], LG_A,
                           clock.now()),
        platform=acc.create("platform", PASSWORD, "基盤 管理", ["platform_admin"], None,
                            clock.now()),
    )


@pytest.fixture
def world(backend: Backend, clock: FixedClock) -> Iterator[World]:
    w = build_world(backend, clock)
    yield w
    w.svc.db.dispose()


@pytest.fixture
def pg_world(pg_backend: Backend, clock: FixedClock) -> Iterator[World]:
    w = build_world(pg_backend, clock)
    yield w
    w.svc.db.dispose()


@pytest.fixture
def sqlite_world(sqlite_backend: Backend, clock: FixedClock) -> Iterator[World]:
    w = build_world(sqlite_backend, clock)
    yield w
    w.svc.db.dispose()


def bearer(client: Any, username: str, password: str = PASSWORD) -> dict[str, str]:
    """The Authorization header of a fresh API token for `username`."""
    response = client.post("/api/v1/tokens", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def person(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "family_name": "山田", "given_name": "太郎", "family_kana": "ヤマダ",
        "given_kana": "タロウ", "birth_date": "1980-05-05", "sex": "1", "relationship": "世帯主",
    }
    base.update(overrides)
    return base


def move_in_data(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "origin": "domestic", "occurred_on": "2026-03-25", "notified_on": "2026-03-30",
        "previous_address": "大阪府大阪市北区梅田1-1",
        "address": {"town_code": "0001001", "banchi": "1番地2", "katagaki": "メゾン101"},
        "members": [person(), person(given_name="花子", given_kana="ハナコ", sex="2",
                                     relationship="妻", birth_date="1982-07-07")],
    }
    base.update(overrides)
    return base


@contextmanager
def serve(app: object) -> Iterator[str]:
    """The app on a real uvicorn server in a thread, on an already-bound socket (port 0, so
    parallel workers never race for a port); yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",  # type: ignore[arg-type]
                            lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{port}")
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"the test server did not answer on {url}/healthz")
            time.sleep(0.02)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
