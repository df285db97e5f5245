"""Tables and queries of online procedures. Every table holds personal data and carries
`lgcode`: hash-partitioned and under row-level security on PostgreSQL (migration 0015); every
query here is scoped by it as well."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)

from kiban.platform.db import metadata, tenant_table_kwargs

procedure_applications = Table(
    "procedure_applications", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("procedure_id", String(64), nullable=False),
    Column("resident_id", String(32), nullable=False),
    Column("state", String(24), nullable=False),
    Column("form", JSON, nullable=False),
    Column("payload", LargeBinary, nullable=True),      # the signed original, byte for byte
    Column("signature", LargeBinary, nullable=True),    # detached CMS (DER)
    Column("content_hash", String(64), nullable=True),  # SHA-256 of the payload
    Column("idempotency_key", String(64), nullable=True),  # SHA-256 of resident + key
    Column("signer", JSON, nullable=True),              # verified identity (serial, 4 items)
    Column("evidence", JSON, nullable=True),            # fetched items, refusals with reasons
    Column("claimed_by", String(32), nullable=True),
    Column("reason", Text, nullable=True),              # rejection / correction request
    Column("last_error", JSON, nullable=True),          # why the last submission stopped
    Column("notify_email", String(254), nullable=True),
    Column("document_serial", String(64), nullable=True),
    Column("document", LargeBinary, nullable=True),     # the delivered signed PDF
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("revision", Integer, nullable=False),
    PrimaryKeyConstraint("lgcode", "id"),
    UniqueConstraint("lgcode", "content_hash", name="uq_procedure_applications_hash"),
    UniqueConstraint("lgcode", "idempotency_key", name="uq_procedure_applications_idem"),
    Index("ix_procedure_applications_queue", "lgcode", "procedure_id", "state", "submitted_at"),
    Index("ix_procedure_applications_resident", "lgcode", "resident_id", "updated_at"),
    **tenant_table_kwargs("procedure_applications"),
)

procedure_steps = Table(
    "procedure_steps", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("application_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),   # staff id, or "resident"
    Column("action", String(32), nullable=False),
    Column("state", String(24), nullable=False),   # the state after the step
    Column("message", Text, nullable=True),
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_procedure_steps_application", "lgcode", "application_id", "at"),
    **tenant_table_kwargs("procedure_steps"),
)

procedure_notifications = Table(
    "procedure_notifications", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("resident_id", String(32), nullable=False),
    Column("application_id", String(32), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("message_ja", Text, nullable=False),
    Column("message_en", Text, nullable=False),
    Column("read_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_procedure_notifications_resident", "lgcode", "resident_id", "at"),
    **tenant_table_kwargs("procedure_notifications"),
)

A = procedure_applications
SUMMARY = [A.c.id, A.c.procedure_id, A.c.resident_id, A.c.state, A.c.claimed_by, A.c.content_hash,
           A.c.submitted_at, A.c.updated_at, A.c.created_at, A.c.revision, A.c.reason,
           A.c.document_serial]


def add_application(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(A).values(row))


def get_application(conn: Connection, lgcode: str, app_id: str, lock: bool = False
                    ) -> dict[str, Any] | None:
    query = select(A).where(A.c.lgcode == lgcode, A.c.id == app_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def by_hash_or_key(conn: Connection, lgcode: str, content_hash: str, key: str | None
                   ) -> dict[str, Any] | None:
    cond = A.c.content_hash == content_hash
    if key:
        cond = cond | (A.c.idempotency_key == key)
    row = conn.execute(select(*SUMMARY, A.c.idempotency_key).where(A.c.lgcode == lgcode, cond)).first()
    return dict(row._mapping) if row else None


def update_application(conn: Connection, lgcode: str, app_id: str, revision: int | None,
                       values: dict[str, Any]) -> bool:
    query = update(A).where(A.c.lgcode == lgcode, A.c.id == app_id)
    if revision is not None:
        query = query.where(A.c.revision == revision)
    done = conn.execute(query.values(**values, revision=A.c.revision + 1)).rowcount
    return bool(done)


def queue(conn: Connection, lgcode: str, procedure_id: str | None, state: str | None,
          limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    cond = [A.c.lgcode == lgcode, A.c.state != "draft"]
    if procedure_id:
        cond.append(A.c.procedure_id == procedure_id)
    if state:
        cond.append(A.c.state == state)
    rows = conn.execute(select(*SUMMARY).where(*cond).order_by(A.c.submitted_at, A.c.id)
                        .limit(limit).offset(offset)).all()
    total = conn.execute(select(func.count()).select_from(A).where(*cond)).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


def of_resident(conn: Connection, lgcode: str, resident_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(*SUMMARY).where(A.c.lgcode == lgcode, A.c.resident_id == resident_id)
                        .order_by(A.c.updated_at.desc(), A.c.id)).all()
    return [dict(r._mapping) for r in rows]


def add_step(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(procedure_steps).values(row))


def steps(conn: Connection, lgcode: str, app_id: str) -> list[dict[str, Any]]:
    s = procedure_steps
    rows = conn.execute(select(s.c.at, s.c.actor, s.c.action, s.c.state, s.c.message)
                        .where(s.c.lgcode == lgcode, s.c.application_id == app_id)
                        .order_by(s.c.at, s.c.id)).all()
    return [dict(r._mapping) for r in rows]


def add_notification(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(procedure_notifications).values(row))


def notifications(conn: Connection, lgcode: str, resident_id: str, limit: int = 50) -> list[dict[str, Any]]:
    n = procedure_notifications
    rows = conn.execute(select(n.c.id, n.c.application_id, n.c.at, n.c.kind, n.c.message_ja,
                               n.c.message_en, n.c.read_at)
                        .where(n.c.lgcode == lgcode, n.c.resident_id == resident_id)
                        .order_by(n.c.at.desc(), n.c.id.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in rows]


def mark_read(conn: Connection, lgcode: str, resident_id: str, at: datetime) -> int:
    n = procedure_notifications
    return int(conn.execute(update(n).where(n.c.lgcode == lgcode, n.c.resident_id == resident_id,
                                            n.c.read_at.is_(None)).values(read_at=at)).rowcount)
