"""Fixtures of the procedures tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kiban_testkit import World

from .procedures_kit import Env, build_env


@pytest.fixture
def env(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """On SQLite and PostgreSQL."""
    yield from build_env(world, tmp_path, monkeypatch)


@pytest.fixture
def lite(sqlite_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """On SQLite: the bad-input paths do not depend on the database."""
    yield from build_env(sqlite_world, tmp_path, monkeypatch)
