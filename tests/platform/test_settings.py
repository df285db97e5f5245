"""Production mode refuses default secrets and the embedded database."""

from __future__ import annotations

import pytest

from kiban.platform import settings


def test_production_refuses_default_secret() -> None:
    with pytest.raises(settings.UnsafeConfiguration):
        settings.load({"KIBAN_MODE": "production",
                       "KIBAN_DATABASE_URL": "postgresql://kiban_app@db/kiban"})


def test_production_refuses_sqlite() -> None:
    with pytest.raises(settings.UnsafeConfiguration):
        settings.load({"KIBAN_MODE": "production", "KIBAN_SECRET_KEY": "x" * 40})


def test_production_with_real_secret_and_postgres() -> None:
    s = settings.load({"KIBAN_MODE": "production", "KIBAN_SECRET_KEY": "s" * 40,
                       "KIBAN_DATABASE_URL": "postgresql://kiban_app@db/kiban"})
    assert s.cookie_secure and s.database_url.startswith("postgresql+psycopg://")


def test_dev_defaults_to_sqlite_under_var() -> None:
    s = settings.load({})
    assert s.database_url.endswith("var/kiban.db") and not s.is_postgres
