"""Specialist-pool tables and queries.

These rows are not residents' data and a joint need or engagement belongs to several
municipalities at once, so they are not partitioned by one 地方公共団体コード; the service
decides who may see what (docs/decisions/0005-talent-pool-tenancy.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from kiban.platform.db import metadata
from kiban.talent.model import Engagement, EngagementStatus, Need, NeedStatus, Profile, Share

talent_skills = Table(
    "talent_skills", metadata,
    Column("code", String(40), primary_key=True),
    Column("name_ja", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)

talent_specialists = Table(
    "talent_specialists", metadata,
    Column("id", String(32), primary_key=True),
    Column("staff_id", String(32), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("skills", JSON, nullable=False),
    Column("experience", Text, nullable=False, default=""),
    Column("regions", JSON, nullable=False),
    Column("onsite", Boolean, nullable=False),
    Column("remote", Boolean, nullable=False),
    Column("days_per_month", Integer, nullable=False),
    Column("rate_per_day", Integer, nullable=False),
    Column("hidden", JSON, nullable=False),
    Column("listed", Boolean, nullable=False, default=True),
    Column("version", Integer, nullable=False, default=1),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

talent_needs = Table(
    "talent_needs", metadata,
    Column("id", String(32), primary_key=True),
    Column("lead_lgcode", String(6), nullable=False),
    Column("title", String(100), nullable=False),
    Column("tasks", Text, nullable=False),
    Column("required_skills", JSON, nullable=False),
    Column("preferred_skills", JSON, nullable=False),
    Column("days_per_month", Integer, nullable=False),
    Column("start_month", String(7), nullable=False),
    Column("end_month", String(7), nullable=False),
    Column("onsite_percent", Integer, nullable=False),
    Column("budget_per_month", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    Column("created_by", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_talent_needs_status", "status", "start_month"),
)

talent_need_shares = Table(
    "talent_need_shares", metadata,
    Column("need_id", String(32), nullable=False),
    Column("lgcode", String(6), nullable=False),
    Column("days", Integer, nullable=False),
    Column("confirmed", Boolean, nullable=False),
    PrimaryKeyConstraint("need_id", "lgcode"),
    Index("ix_talent_need_shares_lgcode", "lgcode"),
)

talent_engagements = Table(
    "talent_engagements", metadata,
    Column("id", String(32), primary_key=True),
    Column("need_id", String(32), nullable=False, index=True),
    Column("specialist_id", String(32), nullable=False, index=True),
    Column("start_month", String(7), nullable=False),
    Column("end_month", String(7), nullable=False),
    Column("ended_month", String(7), nullable=True),
    Column("days", JSON, nullable=False),  # {lgcode: days per month}
    Column("status", String(10), nullable=False),
    Column("offered_by", String(32), nullable=False),
    Column("offered_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)

talent_reports = Table(
    "talent_reports", metadata,
    Column("engagement_id", String(32), nullable=False),
    Column("month", String(7), nullable=False),
    Column("days", JSON, nullable=False),  # {lgcode: days worked}
    Column("summary", Text, nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("engagement_id", "month"),
)

talent_evaluations = Table(
    "talent_evaluations", metadata,
    Column("engagement_id", String(32), nullable=False),
    Column("lgcode", String(6), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment", Text, nullable=False),
    Column("by_staff", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("engagement_id", "lgcode"),
)


def skill_names(conn: Connection, active_only: bool = True) -> dict[str, str]:
    query = select(talent_skills.c.code, talent_skills.c.name_ja).order_by(talent_skills.c.code)
    if active_only:
        query = query.where(talent_skills.c.active.is_(True))
    return {r.code: r.name_ja for r in conn.execute(query)}


def skill_rows(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(
        select(talent_skills).order_by(talent_skills.c.code))]


def add_skill(conn: Connection, code: str, name_ja: str, name_en: str) -> None:
    conn.execute(insert(talent_skills).values(code=code, name_ja=name_ja, name_en=name_en,
                                              active=True))


def _profile(row: Any) -> Profile:
    return Profile(id=row.id, display_name=row.display_name, skills=frozenset(row.skills),
                   experience=row.experience, regions=frozenset(row.regions),
                   onsite=row.onsite, remote=row.remote, days_per_month=row.days_per_month,
                   rate_per_day=row.rate_per_day, hidden=frozenset(row.hidden),
                   listed=row.listed)


def profile_by_staff(conn: Connection, staff_id: str) -> Profile | None:
    row = conn.execute(select(talent_specialists).where(
        talent_specialists.c.staff_id == staff_id)).first()
    return _profile(row) if row else None


def profile(conn: Connection, specialist_id: str) -> Profile | None:
    row = conn.execute(select(talent_specialists).where(
        talent_specialists.c.id == specialist_id)).first()
    return _profile(row) if row else None


def profiles(conn: Connection) -> list[Profile]:
    return [_profile(r) for r in conn.execute(
        select(talent_specialists).order_by(talent_specialists.c.id))]


def lock_specialist(conn: Connection, specialist_id: str) -> bool:
    """Serialises every change to one specialist's commitments: the row write takes a row
    lock on PostgreSQL and the write lock on SQLite before anything is read."""
    done = conn.execute(update(talent_specialists).where(
        talent_specialists.c.id == specialist_id).values(
        version=talent_specialists.c.version + 1))
    return bool(done.rowcount)


def save_profile(conn: Connection, specialist_id: str, staff_id: str, fields: dict[str, Any],
                 at: datetime, exists: bool) -> None:
    values = {**fields, "updated_at": at}
    if exists:
        conn.execute(update(talent_specialists).where(
            talent_specialists.c.id == specialist_id).values(**values))
    else:
        conn.execute(insert(talent_specialists).values(id=specialist_id, staff_id=staff_id,
                                                       version=1, **values))


def _need(row: Any, shares: Sequence[Share]) -> Need:
    return Need(id=row.id, lead_lgcode=row.lead_lgcode, title=row.title, tasks=row.tasks,
                required_skills=tuple(row.required_skills),
                preferred_skills=tuple(row.preferred_skills),
                days_per_month=row.days_per_month, start=row.start_month, end=row.end_month,
                onsite_percent=row.onsite_percent, budget_per_month=row.budget_per_month,
                shares=tuple(shares), status=NeedStatus(row.status))


def _shares_of(conn: Connection, ids: Iterable[str]) -> dict[str, list[Share]]:
    found: dict[str, list[Share]] = {}
    ids = list(ids)
    if not ids:
        return found
    for r in conn.execute(select(talent_need_shares).where(
            talent_need_shares.c.need_id.in_(ids)).order_by(talent_need_shares.c.need_id,
                                                            talent_need_shares.c.lgcode)):
        found.setdefault(r.need_id, []).append(Share(r.lgcode, r.days, r.confirmed))
    return found


def need(conn: Connection, need_id: str) -> tuple[Need, dict[str, Any]] | None:
    row = conn.execute(select(talent_needs).where(talent_needs.c.id == need_id)).first()
    if row is None:
        return None
    return _need(row, _shares_of(conn, [need_id]).get(need_id, [])), {
        "created_at": row.created_at, "created_by": row.created_by}


def needs(conn: Connection, *, statuses: Sequence[str] | None = None,
          lgcode: str | None = None, limit: int | None = None) -> list[Need]:
    query = select(talent_needs).order_by(talent_needs.c.start_month, talent_needs.c.id)
    if limit is not None:
        query = query.limit(limit)
    if statuses:
        query = query.where(talent_needs.c.status.in_(list(statuses)))
    if lgcode:
        query = query.where(talent_needs.c.id.in_(select(talent_need_shares.c.need_id).where(
            talent_need_shares.c.lgcode == lgcode)))
    rows = conn.execute(query).all()
    shares = _shares_of(conn, [r.id for r in rows])
    return [_need(r, shares.get(r.id, [])) for r in rows]


def insert_need(conn: Connection, need_value: Need, actor: str, at: datetime) -> None:
    conn.execute(insert(talent_needs).values(
        id=need_value.id, lead_lgcode=need_value.lead_lgcode, title=need_value.title,
        tasks=need_value.tasks, required_skills=list(need_value.required_skills),
        preferred_skills=list(need_value.preferred_skills),
        days_per_month=need_value.days_per_month, start_month=need_value.start,
        end_month=need_value.end, onsite_percent=need_value.onsite_percent,
        budget_per_month=need_value.budget_per_month, status=need_value.status.value,
        created_by=actor, created_at=at))
    conn.execute(insert(talent_need_shares), [
        {"need_id": need_value.id, "lgcode": s.lgcode, "days": s.days, "confirmed": s.confirmed}
        for s in need_value.shares])


def lock_need(conn: Connection, need_id: str) -> None:
    """Serialises changes to one need (its shares' confirmations, its status)."""
    conn.execute(update(talent_needs).where(talent_needs.c.id == need_id).values(
        status=talent_needs.c.status))


def confirm_share(conn: Connection, need_id: str, lgcode: str) -> None:
    conn.execute(update(talent_need_shares).where(
        talent_need_shares.c.need_id == need_id, talent_need_shares.c.lgcode == lgcode
    ).values(confirmed=True))


def set_need_status(conn: Connection, need_id: str, status: NeedStatus) -> None:
    conn.execute(update(talent_needs).where(talent_needs.c.id == need_id).values(
        status=status.value))


def _engagement(row: Any) -> Engagement:
    return Engagement(id=row.id, need_id=row.need_id, specialist_id=row.specialist_id,
                      start=row.start_month, end=row.end_month, days=dict(row.days),
                      status=EngagementStatus(row.status), ended_month=row.ended_month)


def engagement(conn: Connection, engagement_id: str) -> tuple[Engagement, dict[str, Any]] | None:
    row = conn.execute(select(talent_engagements).where(
        talent_engagements.c.id == engagement_id)).first()
    if row is None:
        return None
    return _engagement(row), {"offered_at": row.offered_at, "decided_at": row.decided_at,
                              "offered_by": row.offered_by}


def engagements(conn: Connection, *, specialist_id: str | None = None,
                need_ids: Sequence[str] | None = None) -> list[Engagement]:
    query = select(talent_engagements).order_by(talent_engagements.c.start_month,
                                                talent_engagements.c.id)
    if specialist_id is not None:
        query = query.where(talent_engagements.c.specialist_id == specialist_id)
    if need_ids is not None:
        query = query.where(talent_engagements.c.need_id.in_(list(need_ids)))
    return [_engagement(r) for r in conn.execute(query)]


def insert_engagement(conn: Connection, e: Engagement, actor: str, at: datetime) -> None:
    conn.execute(insert(talent_engagements).values(
        id=e.id, need_id=e.need_id, specialist_id=e.specialist_id, start_month=e.start,
        end_month=e.end, ended_month=None, days=dict(e.days), status=e.status.value,
        offered_by=actor, offered_at=at, decided_at=None))


def update_engagement(conn: Connection, e: Engagement, at: datetime,
                      expected: EngagementStatus) -> bool:
    """Moves an engagement on from `expected`; False when a concurrent change came first."""
    done = conn.execute(update(talent_engagements).where(
        talent_engagements.c.id == e.id, talent_engagements.c.status == expected.value).values(
        status=e.status.value, ended_month=e.ended_month, decided_at=at))
    return bool(done.rowcount)


def reports(conn: Connection, engagement_id: str) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(talent_reports).where(
        talent_reports.c.engagement_id == engagement_id).order_by(talent_reports.c.month))]


def insert_report(conn: Connection, engagement_id: str, month: str, days: dict[str, int],
                  summary: str, at: datetime) -> None:
    conn.execute(insert(talent_reports).values(engagement_id=engagement_id, month=month,
                                               days=days, summary=summary, submitted_at=at))


def evaluations(conn: Connection, engagement_id: str) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(talent_evaluations).where(
        talent_evaluations.c.engagement_id == engagement_id).order_by(
        talent_evaluations.c.lgcode))]


def insert_evaluation(conn: Connection, engagement_id: str, lgcode: str, rating: int,
                      comment: str, actor: str, at: datetime) -> None:
    conn.execute(insert(talent_evaluations).values(
        engagement_id=engagement_id, lgcode=lgcode, rating=rating, comment=comment,
        by_staff=actor, at=at))
