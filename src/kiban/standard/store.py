"""Tables of the deviation register and of change proposals. Both are public records about
municipalities' choices, not personal data: one national list, not partitioned."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    DateTime,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    insert,
    select,
    text,
    update,
)

from kiban.platform.db import metadata

standard_deviations = Table(
    "standard_deviations", metadata,
    Column("id", String(32), primary_key=True),
    Column("lgcode", String(6), nullable=False),
    Column("requirement", String(10), nullable=False),
    Column("what", Text, nullable=False),  # what differs from the requirement
    Column("reason", Text, nullable=False),
    Column("decided_by", String(100), nullable=False),  # who decided (office, title)
    Column("decided_on", Date, nullable=False),
    Column("review_on", Date, nullable=False),
    Column("setting", String(40), nullable=False, default=""),  # the switch it turns, if any
    Column("value", String(40), nullable=False, default=""),
    Column("status", String(10), nullable=False),  # active | withdrawn
    Column("recorded_by", String(32), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("withdrawn_at", DateTime(timezone=True), nullable=True),
    Index("ix_standard_deviations_lgcode", "lgcode", "requirement"),
    # One deviation in force per municipality and requirement.
    Index("uq_standard_deviations_active", "lgcode", "requirement", unique=True,
          sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
)

standard_proposals = Table(
    "standard_proposals", metadata,
    Column("id", String(32), primary_key=True),
    Column("requirement", String(10), nullable=True),  # None: a new requirement
    Column("title", String(200), nullable=False),
    Column("proposed_text", Text, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("lgcode", String(6), nullable=False),
    Column("proposed_by", String(32), nullable=False),
    Column("status", String(10), nullable=False),  # open | accepted | rejected
    Column("decision_reason", Text, nullable=False, default=""),
    Column("decided_by", String(32), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("target_version", String(20), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_standard_proposals_status", "status", "created_at"),
)

standard_endorsements = Table(
    "standard_endorsements", metadata,
    Column("proposal_id", String(32), nullable=False),
    Column("lgcode", String(6), nullable=False),
    Column("staff_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("proposal_id", "lgcode"),
)

standard_comments = Table(
    "standard_comments", metadata,
    Column("id", String(32), primary_key=True),
    Column("proposal_id", String(32), nullable=False, index=True),
    Column("lgcode", String(6), nullable=True),
    Column("staff_id", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


def rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


def deviations(conn: Connection, lgcode: str | None = None,
               include_withdrawn: bool = False) -> list[dict[str, Any]]:
    query = select(standard_deviations).order_by(standard_deviations.c.lgcode,
                                                 standard_deviations.c.requirement,
                                                 standard_deviations.c.recorded_at)
    if lgcode:
        query = query.where(standard_deviations.c.lgcode == lgcode)
    if not include_withdrawn:
        query = query.where(standard_deviations.c.status == "active")
    return rows(conn, query)


def deviation(conn: Connection, deviation_id: str) -> dict[str, Any] | None:
    found = rows(conn, select(standard_deviations).where(standard_deviations.c.id == deviation_id))
    return found[0] if found else None


def insert_deviation(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(standard_deviations).values(**values))


def withdraw_deviation(conn: Connection, deviation_id: str, at: Any) -> None:
    conn.execute(update(standard_deviations).where(standard_deviations.c.id == deviation_id)
                 .values(status="withdrawn", withdrawn_at=at))


def proposals(conn: Connection, status: str | None = None) -> list[dict[str, Any]]:
    query = select(standard_proposals).order_by(standard_proposals.c.created_at.desc(),
                                                standard_proposals.c.id)
    if status:
        query = query.where(standard_proposals.c.status == status)
    return rows(conn, query)


def proposal(conn: Connection, proposal_id: str) -> dict[str, Any] | None:
    found = rows(conn, select(standard_proposals).where(standard_proposals.c.id == proposal_id))
    return found[0] if found else None


def insert_proposal(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(standard_proposals).values(**values))


def decide(conn: Connection, proposal_id: str, values: dict[str, Any]) -> bool:
    """Records the decision if the proposal is still open; False if another came first."""
    done = conn.execute(update(standard_proposals).where(
        standard_proposals.c.id == proposal_id, standard_proposals.c.status == "open")
        .values(**values))
    return bool(done.rowcount)


def endorsements(conn: Connection, proposal_id: str) -> list[dict[str, Any]]:
    return rows(conn, select(standard_endorsements).where(
        standard_endorsements.c.proposal_id == proposal_id).order_by(standard_endorsements.c.at))


def endorsement_counts(conn: Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in conn.execute(select(standard_endorsements.c.proposal_id)):
        counts[r.proposal_id] = counts.get(r.proposal_id, 0) + 1
    return counts


def insert_endorsement(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(standard_endorsements).values(**values))


def comments(conn: Connection, proposal_id: str) -> list[dict[str, Any]]:
    return rows(conn, select(standard_comments).where(
        standard_comments.c.proposal_id == proposal_id).order_by(standard_comments.c.at,
                                                                 standard_comments.c.id))


def insert_comment(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(standard_comments).values(**values))
