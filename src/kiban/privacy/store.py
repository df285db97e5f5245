"""Privacy tables and queries. The access records are personal data (who looked at whom):
partitioned by 地方公共団体コード with row-level security like the registry's tables. Calls,
proposals, budgets and releases concern data users and aggregates: plain tables, every query
scoped by `lgcode`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from kiban.platform.db import metadata, tenant_table_kwargs

# Every read of personal data by staff: who, when, which record, which fields, for which
# purpose, through which screen or API; a read outside the reader's purposes is flagged.
access_records = Table(
    "privacy_access_records", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("staff_id", String(32), nullable=False),
    Column("department", String(100), nullable=False),
    Column("roles", String(200), nullable=False),
    Column("resident_id", String(32), nullable=False),  # "*" for a bulk extract
    Column("fields", JSON, nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("channel", String(200), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("flagged", Boolean, nullable=False),
    Column("detail", JSON, nullable=True),  # bulk reads: conditions and count, no values
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_privacy_access_records_resident", "lgcode", "resident_id", "at"),
    Index("ix_privacy_access_records_flagged", "lgcode", "flagged", "at"),
    **tenant_table_kwargs("privacy_access_records"),
)

proposal_calls = Table(
    "privacy_proposal_calls", metadata,
    Column("id", String(32), primary_key=True),
    Column("lgcode", String(6), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("opens_on", Date, nullable=False),
    Column("closes_on", Date, nullable=False),
    Column("files", JSON, nullable=False),
    Column("created_by", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

proposals = Table(
    "privacy_proposals", metadata,
    Column("id", String(32), primary_key=True),
    Column("lgcode", String(6), nullable=False, index=True),
    Column("call_id", String(32), nullable=False),
    Column("file_id", String(40), nullable=False),
    Column("proposer", JSON, nullable=False),  # organisation, contact: a data user's own
    Column("purpose", Text, nullable=False),
    Column("items", JSON, nullable=False),
    Column("sensitive", String(40), nullable=True),
    Column("k", Integer, nullable=False),
    Column("l", Integer, nullable=False),
    Column("use_from", Date, nullable=False),
    Column("use_to", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("refusals", JSON, nullable=False),
    Column("screening", JSON, nullable=True),
    Column("processing", JSON, nullable=True),  # levels, loss, risk, coding: the record
    Column("contract", JSON, nullable=True),
    Column("dataset_csv", Text, nullable=True),
    Column("dataset_sha256", String(64), nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

budgets = Table(
    "privacy_budgets", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("dataset", String(60), nullable=False),
    Column("epsilon_total", Float, nullable=False),
    Column("epsilon_spent", Float, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("lgcode", "dataset"),
)

releases = Table(
    "privacy_releases", metadata,
    Column("id", String(32), primary_key=True),
    Column("lgcode", String(6), nullable=False),
    Column("dataset", String(60), nullable=False),
    Column("query", JSON, nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("result", JSON, nullable=False),
    Column("released_by", String(32), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=False),
    Index("ix_privacy_releases_dataset", "lgcode", "dataset", "released_at"),
)


def record_access(conn: Connection, lgcode: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(access_records), [{"lgcode": lgcode, **r} for r in rows])


def accesses(conn: Connection, lgcode: str, *, resident_id: str | None = None,
             flagged: bool | None = None, limit: int = 100, offset: int = 0
             ) -> list[dict[str, Any]]:
    c = access_records.c
    query = select(access_records).where(c.lgcode == lgcode)
    if resident_id is not None:
        query = query.where(c.resident_id == resident_id)
    if flagged is not None:
        query = query.where(c.flagged == flagged)
    return [dict(r._mapping) for r in conn.execute(
        query.order_by(c.at.desc(), c.id).limit(limit).offset(offset))]


def count_accesses(conn: Connection, lgcode: str) -> int:
    return int(conn.execute(select(func.count()).select_from(access_records)
                            .where(access_records.c.lgcode == lgcode)).scalar() or 0)


def insert_call(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(proposal_calls).values(**row))


def calls(conn: Connection, lgcode: str) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(
        select(proposal_calls).where(proposal_calls.c.lgcode == lgcode)
        .order_by(proposal_calls.c.opens_on.desc()))]


def get_call(conn: Connection, lgcode: str, call_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(proposal_calls).where(
        proposal_calls.c.lgcode == lgcode, proposal_calls.c.id == call_id)).first()
    return dict(row._mapping) if row else None


def insert_proposal(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(proposals).values(**row))


def get_proposal(conn: Connection, lgcode: str, proposal_id: str, *, lock: bool = False
                 ) -> dict[str, Any] | None:
    query = select(proposals).where(proposals.c.lgcode == lgcode, proposals.c.id == proposal_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def list_proposals(conn: Connection, lgcode: str, statuses: list[str] | None = None
                   ) -> list[dict[str, Any]]:
    c = proposals.c
    query = select(*[col for col in proposals.c if col.name != "dataset_csv"]).where(
        c.lgcode == lgcode)
    if statuses:
        query = query.where(c.status.in_(statuses))
    return [dict(r._mapping) for r in conn.execute(query.order_by(c.submitted_at.desc()))]


def update_proposal(conn: Connection, lgcode: str, proposal_id: str, **values: Any) -> None:
    conn.execute(update(proposals).where(proposals.c.lgcode == lgcode,
                                         proposals.c.id == proposal_id).values(**values))


def get_budget(conn: Connection, lgcode: str, dataset: str, *, lock: bool = False
               ) -> dict[str, Any] | None:
    query = select(budgets).where(budgets.c.lgcode == lgcode, budgets.c.dataset == dataset)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def set_budget(conn: Connection, lgcode: str, dataset: str, total: float, at: datetime) -> None:
    if get_budget(conn, lgcode, dataset) is None:
        conn.execute(insert(budgets).values(lgcode=lgcode, dataset=dataset, epsilon_total=total,
                                            epsilon_spent=0.0, updated_at=at))
    else:
        conn.execute(update(budgets).where(budgets.c.lgcode == lgcode,
                                           budgets.c.dataset == dataset)
                     .values(epsilon_total=total, updated_at=at))


def spend(conn: Connection, lgcode: str, dataset: str, epsilon: float, at: datetime) -> None:
    conn.execute(update(budgets).where(budgets.c.lgcode == lgcode, budgets.c.dataset == dataset)
                 .values(epsilon_spent=budgets.c.epsilon_spent + epsilon, updated_at=at))


def all_budgets(conn: Connection, lgcode: str) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(
        select(budgets).where(budgets.c.lgcode == lgcode).order_by(budgets.c.dataset))]


def insert_release(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(releases).values(**row))


def list_releases(conn: Connection, lgcode: str, dataset: str | None = None
                  ) -> list[dict[str, Any]]:
    query = select(releases).where(releases.c.lgcode == lgcode)
    if dataset:
        query = query.where(releases.c.dataset == dataset)
    return [dict(r._mapping) for r in conn.execute(query.order_by(releases.c.released_at.desc()))]


def personal_tables() -> dict[str, list[str]]:
    """Every personal-data table the application declares (made with `tenant_table_kwargs`:
    partitioned by 地方公共団体コード), with its columns, from the shared metadata."""
    return {t.name: [c.name for c in t.columns] for t in metadata.sorted_tables
            if t.dialect_options["postgresql"].get("partition_by")}
