"""Storage: one SQLAlchemy MetaData, engines, and units of work scoped to a municipality.

Every personal-data table carries `lgcode`. On PostgreSQL those tables are hash-partitioned
by it and guarded by row-level security on the setting `kiban.lgcode`, which each tenant unit
of work sets for its transaction; the application connects as a role that owns nothing, so the
policies apply to it. On SQLite the scoping is the `WHERE lgcode = ...` every store query has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.pool import NullPool

from kiban.platform.settings import Settings

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

def tenant_table_kwargs(name: str) -> dict[str, Any]:
    """Table options for a personal-data table (`name` documents which): hash-partitioned by
    lgcode on PostgreSQL. Its partitions and row-level policies are the migrations' work."""
    del name
    return {"postgresql_partition_by": "HASH (lgcode)"}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               poolclass=NullPool if path == ":memory:" else None,
                               hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # hide_parameters: a database error's message would otherwise quote personal data.
    # No pool_pre_ping: it costs a round trip on every checkout. Connections are recycled
    # after 30 minutes instead (before idle timeouts of proxies and firewalls), and a
    # connection found dead is invalidated by SQLAlchemy when its statement fails.
    return create_engine(url, pool_size=pool_size, max_overflow=20, pool_recycle=1800,
                         hide_parameters=True)


# The unit of work that `Database.tenant` calls join instead of opening their own transaction
# (see `Database.unit_of_work`): (database, lgcode, connection).
_AMBIENT: ContextVar[tuple[Database, str, Connection] | None] = ContextVar(
    "kiban_unit_of_work", default=None)
_BEFORE_COMMIT = "kiban.before_commit"


def before_commit(conn: Connection, step: Callable[[Connection], None]) -> None:
    """Runs `step` as the last thing of the transaction, just before its COMMIT (after the
    rest of the unit of work, joined units included). For writes that take a hot lock, such
    as the ledger head: the later the lock is taken, the shorter others wait for it. Steps
    run in the order registered; a failure rolls the whole transaction back."""
    conn.info.setdefault(_BEFORE_COMMIT, []).append(step)


def _run_before_commit(conn: Connection) -> None:
    steps = conn.info.pop(_BEFORE_COMMIT, None)
    while steps:
        steps.pop(0)(conn)


class Database:
    """The application's handle on storage."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self._admin_engine: Engine | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def admin_engine(self) -> Engine:
        """The table owner's connection: migrations, backup, restore, cross-tenant jobs."""
        if self.settings.admin_database_url == self.settings.database_url:
            return self.engine
        if self._admin_engine is None:
            self._admin_engine = make_engine(self.settings.admin_database_url, pool_size=2)
        return self._admin_engine

    @contextmanager
    def tenant(self, lgcode: str) -> Iterator[Connection]:
        """A transaction that sees only `lgcode`'s personal data (RLS on PostgreSQL). Inside
        a `unit_of_work` for the same municipality, the unit's transaction instead."""
        ambient = _AMBIENT.get()
        if ambient is not None and ambient[0] is self and ambient[1] == lgcode:
            yield ambient[2]  # the unit commits or rolls back, not this block
            return
        with self.engine.begin() as conn:
            try:
                if self.is_postgres:
                    conn.execute(text("SELECT set_config('kiban.lgcode', :c, true)"),
                                 {"c": lgcode})
                yield conn
                _run_before_commit(conn)
            finally:
                conn.info.pop(_BEFORE_COMMIT, None)

    @contextmanager
    def unit_of_work(self, lgcode: str) -> Iterator[Connection]:
        """One transaction for `lgcode` that every `tenant(lgcode)` opened inside it (in the
        same thread or task) joins: a request's own bookkeeping (an idempotency record) and
        the change it runs commit together, or not at all."""
        with self.tenant(lgcode) as conn:
            token = _AMBIENT.set((self, lgcode, conn))
            try:
                yield conn
            finally:
                _AMBIENT.reset(token)

    @contextmanager
    def platform(self) -> Iterator[Connection]:
        """A transaction over platform tables only (municipalities, staff, sessions). Inside a
        `unit_of_work`, the unit's transaction (platform tables have no row policies), so a
        request's idempotency record commits with the platform-table change it answers."""
        ambient = _AMBIENT.get()
        if ambient is not None and ambient[0] is self:
            yield ambient[2]
            return
        with self.engine.begin() as conn:
            if self.is_postgres:
                conn.execute(text("SELECT set_config('kiban.lgcode', '', true)"))
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
        if self._admin_engine is not None:
            self._admin_engine.dispose()


def switch_tenant(conn: Connection, lgcode: str) -> None:
    """Within one transaction, act for another municipality (a system-to-system step such as
    the 転入通知 back to the departure municipality). Only services call this."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT set_config('kiban.lgcode', :c, true)"), {"c": lgcode})


def bypasses_row_security(conn: Connection) -> bool:
    """True when this connection reads past the row-level policies: a superuser, a BYPASSRLS
    role or the tables' owner (RLS is enabled, not forced). Backups need that; the
    application must never have it."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(text(
        "SELECT r.rolsuper OR r.rolbypassrls OR pg_has_role(current_user, t.tableowner, 'USAGE') "
        "FROM pg_roles r, pg_tables t WHERE r.rolname = current_user "
        "AND t.tablename = 'residents'")).scalar())
