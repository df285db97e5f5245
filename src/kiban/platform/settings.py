"""Configuration from KIBAN_* environment variables. Production refuses default secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEV_SECRET = "kiban-dev-secret-not-for-production"  # noqa: S105 - refused in production
PROJECT_ROOT = Path(__file__).resolve().parents[3]


class UnsafeConfiguration(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    mode: str  # "dev", "test" or "production"
    database_url: str
    admin_database_url: str  # owner of the tables: migrations, backup, restore
    app_role: str  # the PostgreSQL role the application connects as (owns nothing)
    secret_key: str
    cookie_secure: bool
    login_attempts: int  # failures allowed per username and address in the window
    login_window_seconds: int

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    def check_production(self) -> None:
        if self.mode != "production":
            return
        if self.secret_key == DEV_SECRET or len(self.secret_key) < 32:
            raise UnsafeConfiguration(
                "KIBAN_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production mode")
        if not self.is_postgres:
            raise UnsafeConfiguration("production mode needs PostgreSQL (KIBAN_DATABASE_URL)")


def default_sqlite_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'var' / 'kiban.db'}"


def normalise_url(url: str) -> str:
    """postgresql:// URLs use psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def load(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    mode = env.get("KIBAN_MODE", "dev")
    url = normalise_url(env.get("KIBAN_DATABASE_URL") or default_sqlite_url())
    settings = Settings(
        mode=mode,
        database_url=url,
        admin_database_url=normalise_url(env.get("KIBAN_DATABASE_ADMIN_URL") or url),
        app_role=env.get("KIBAN_APP_ROLE", "kiban_app"),
        secret_key=env.get("KIBAN_SECRET_KEY", DEV_SECRET),
        cookie_secure=env.get("KIBAN_COOKIE_SECURE", "1" if mode == "production" else "0") == "1",
        login_attempts=int(env.get("KIBAN_LOGIN_ATTEMPTS", "5")),
        login_window_seconds=int(env.get("KIBAN_LOGIN_WINDOW_SECONDS", "900")),
    )
    settings.check_production()
    return settings
