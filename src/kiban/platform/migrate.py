"""Run the Alembic migrations (as the table owner)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from kiban.platform.settings import PROJECT_ROOT, Settings


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["url"] = url
    return config


def upgrade(settings: Settings) -> None:
    command.upgrade(alembic_config(settings.admin_database_url), "heads")
