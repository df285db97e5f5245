"""Platform tables: municipalities, their 町字 master, staff, sessions, the ledger,
idempotency keys."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from kiban.platform.db import metadata, tenant_table_kwargs

municipalities = Table(
    "municipalities", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("prefecture", String(20), nullable=False),
    Column("name_kana", String(200), nullable=False, default=""),
    Column("settings", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # "active" or "retired"; "conformance" marks a throwaway municipality of the kit.
    Column("status", String(10), nullable=False, server_default="active"),
    Column("purpose", String(20), nullable=False, server_default=""),
)

towns = Table(
    "towns", metadata,  # 町字 master: public data, scoped by municipality
    Column("lgcode", String(6), nullable=False),
    Column("code", String(12), nullable=False),
    Column("name", String(100), nullable=False),
    Column("name_kana", String(200), nullable=False, default=""),
    Column("postcode", String(7), nullable=False, default=""),
    PrimaryKeyConstraint("lgcode", "code"),
)

staff = Table(
    "staff", metadata,
    Column("id", String(32), primary_key=True),
    Column("lgcode", String(6), nullable=True),  # NULL for platform administrators
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("department", String(100), nullable=False, default=""),
    Column("password_hash", String(200), nullable=False),
    Column("roles", String(200), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("staff_id", String(32), nullable=False, index=True),
    Column("kind", String(10), nullable=False),  # "browser" or "api"
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

login_failures = Table(
    "login_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),  # hash of username + client address
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_login_failures_key_at", "key", "at"),
)

ledger_entries = Table(
    "ledger_entries", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("recorded_at", String(40), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("lgcode", "seq"),
    **tenant_table_kwargs("ledger_entries"),
)

ledger_heads = Table(
    "ledger_heads", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("lgcode"),
    **tenant_table_kwargs("ledger_heads"),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("lgcode", "key"),
    **tenant_table_kwargs("idempotency_keys"),
)
