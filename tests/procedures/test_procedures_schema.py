"""Migration 0015 builds exactly the tables kiban.procedures.store declares (SQLite and
PostgreSQL), and on PostgreSQL they are partitioned and under row-level security."""

from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

import kiban.procedures.store  # noqa: F401
from kiban.platform.db import make_engine, metadata
from kiban_testkit import Backend

MINE = ("procedure_applications", "procedure_steps", "procedure_notifications")


def test_the_procedures_tables_match_the_migration(backend: Backend) -> None:
    engine = make_engine(backend.settings.admin_database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            if conn.dialect.name == "postgresql":
                for table in MINE:
                    row = conn.execute(text("SELECT relrowsecurity, relkind FROM pg_class WHERE relname = :t"),
                                       {"t": table}).one()
                    assert row.relrowsecurity and row.relkind == "p", table
    finally:
        engine.dispose()
    drift = [d for d in diff if any(t in repr(d) for t in MINE) and not re.search(r"_p\d+\b", repr(d))]
    assert drift == []
