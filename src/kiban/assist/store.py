"""The assistant's tables and queries.

FAQ content is public information written by staff, not personal data: it is keyed by
地方公共団体コード (the shared bank by model.SHARED) but not partitioned or under row-level
security. Every query names the municipality it is for."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)

from kiban.assist.model import Adoption, AdoptionMode, Faq, ReviewState, Settings, Tone
from kiban.platform.db import metadata

assist_faqs = Table(
    "assist_faqs", metadata,
    Column("id", String(40), primary_key=True),
    Column("lgcode", String(6), nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("category", String(100), nullable=False),
    Column("department", String(100), nullable=False, default=""),
    Column("last_reviewed", Date, nullable=False),
    Column("review_state", String(10), nullable=False),
    Column("keywords", Text, nullable=False, default=""),
    Column("url", String(500), nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(32), nullable=False, default=""),
    Column("revision", BigInteger, nullable=False),  # time_ns of the write: rebuilds the index
    Index("ix_assist_faqs_lgcode", "lgcode", "category"),
)

assist_adoptions = Table(
    "assist_adoptions", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("faq_id", String(40), nullable=False),
    Column("mode", String(10), nullable=False),
    Column("answer", Text, nullable=False, default=""),
    Column("last_reviewed", Date, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("revision", BigInteger, nullable=False),
    PrimaryKeyConstraint("lgcode", "faq_id"),
)

assist_settings = Table(
    "assist_settings", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("greeting_ja", Text, nullable=False),
    Column("greeting_en", Text, nullable=False),
    Column("tone", String(10), nullable=False),
    Column("categories", JSON, nullable=False),
    Column("adopt_shared", Boolean, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("inquiry_url", String(500), nullable=False, default=""),
    Column("revision", BigInteger, nullable=False),
)

assist_usage = Table(
    "assist_usage", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("day", Date, nullable=False),
    Column("questions", Integer, nullable=False, default=0),
    Column("answered", Integer, nullable=False, default=0),
    Column("handoffs", Integer, nullable=False, default=0),
    Column("helpful", Integer, nullable=False, default=0),
    Column("not_helpful", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("lgcode", "day"),
)

assist_unanswered = Table(
    "assist_unanswered", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lgcode", String(6), nullable=False),
    Column("question", Text, nullable=False),
    Column("lang", String(2), nullable=False),
    Column("best_ref", String(80), nullable=False, default=""),
    Column("confidence", Float, nullable=False, default=0.0),
    Column("asked_at", DateTime(timezone=True), nullable=False),
    Column("resolved", Boolean, nullable=False, default=False),
    Index("ix_assist_unanswered_lgcode", "lgcode", "resolved", "asked_at"),
)

assist_feedback = Table(
    "assist_feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lgcode", String(6), nullable=False),
    Column("ref", String(80), nullable=False),
    Column("helpful", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_assist_feedback_lgcode", "lgcode", "ref"),
)

assist_vectors = Table(
    "assist_vectors", metadata,
    Column("key", String(64), primary_key=True),  # SHA-256 of the embedded text
    Column("vector", LargeBinary, nullable=False),  # float32, 384 dimensions
)


# -- FAQs ------------------------------------------------------------------------------

def _faq(row: Any) -> Faq:
    return Faq(id=row.id, lgcode=row.lgcode, question=row.question, answer=row.answer,
               category=row.category, department=row.department,
               last_reviewed=row.last_reviewed, review_state=ReviewState(row.review_state),
               keywords=row.keywords, url=row.url)


def faqs(conn: Connection, lgcodes: Sequence[str], approved_only: bool = False) -> list[Faq]:
    query = select(assist_faqs).where(assist_faqs.c.lgcode.in_(list(lgcodes)))
    if approved_only:
        query = query.where(assist_faqs.c.review_state == ReviewState.APPROVED.value)
    return [_faq(r) for r in conn.execute(query.order_by(assist_faqs.c.lgcode,
                                                         assist_faqs.c.category,
                                                         assist_faqs.c.id))]


def faq(conn: Connection, faq_id: str) -> Faq | None:
    row = conn.execute(select(assist_faqs).where(assist_faqs.c.id == faq_id)).first()
    return _faq(row) if row else None


def _faq_values(f: Faq) -> dict[str, Any]:
    return {"lgcode": f.lgcode, "question": f.question, "answer": f.answer,
            "category": f.category, "department": f.department,
            "last_reviewed": f.last_reviewed, "review_state": f.review_state.value,
            "keywords": f.keywords, "url": f.url}


def save_faqs(conn: Connection, items: Iterable[Faq], at: datetime, by: str) -> None:
    for f in items:
        values = {**_faq_values(f), "updated_at": at, "updated_by": by,
                  "revision": time.time_ns()}
        done = conn.execute(update(assist_faqs).where(assist_faqs.c.id == f.id).values(**values))
        if not done.rowcount:
            conn.execute(insert(assist_faqs).values(id=f.id, **values))


def delete_faq(conn: Connection, faq_id: str) -> None:
    """The FAQ and every municipality's adoption of it (when it was a shared one)."""
    conn.execute(delete(assist_adoptions).where(assist_adoptions.c.faq_id == faq_id))
    conn.execute(delete(assist_faqs).where(assist_faqs.c.id == faq_id))


def next_number(conn: Connection, lgcode: str) -> int:
    count = conn.execute(select(func.count()).select_from(assist_faqs)
                         .where(assist_faqs.c.lgcode == lgcode)).scalar_one()
    return int(count) + 1


def fingerprint(conn: Connection) -> tuple[Any, ...]:
    """Changes when any FAQ, adoption or setting is written or removed (the index is rebuilt
    then): each write stamps its row with the wall clock's nanoseconds, not the injectable
    clock, which tests fix."""
    found: list[Any] = []
    for table in (assist_faqs, assist_adoptions, assist_settings):
        found += conn.execute(select(func.count(), func.max(table.c.revision))).one()
    return tuple(found)


# -- adoptions and settings ------------------------------------------------------------

def adoptions(conn: Connection, lgcode: str | None = None) -> dict[str, dict[str, Adoption]]:
    """Per municipality: faq id → adoption."""
    query = select(assist_adoptions)
    if lgcode is not None:
        query = query.where(assist_adoptions.c.lgcode == lgcode)
    found: dict[str, dict[str, Adoption]] = {}
    for r in conn.execute(query):
        found.setdefault(r.lgcode, {})[r.faq_id] = Adoption(
            r.faq_id, AdoptionMode(r.mode), r.answer, r.last_reviewed)
    return found


def set_adoption(conn: Connection, lgcode: str, adoption: Adoption | None, faq_id: str,
                 at: datetime) -> None:
    conn.execute(delete(assist_adoptions).where(assist_adoptions.c.lgcode == lgcode,
                                                assist_adoptions.c.faq_id == faq_id))
    if adoption is not None:
        conn.execute(insert(assist_adoptions).values(
            lgcode=lgcode, faq_id=faq_id, mode=adoption.mode.value, answer=adoption.answer,
            last_reviewed=adoption.last_reviewed, updated_at=at, revision=time.time_ns()))


def settings(conn: Connection, lgcode: str) -> Settings:
    row = conn.execute(select(assist_settings).where(assist_settings.c.lgcode == lgcode)).first()
    if row is None:
        return Settings(lgcode)
    return Settings(lgcode, row.greeting_ja, row.greeting_en, Tone(row.tone),
                    list(row.categories), row.adopt_shared, row.threshold, row.inquiry_url)


def all_settings(conn: Connection) -> dict[str, Settings]:
    return {r.lgcode: settings(conn, r.lgcode) for r in conn.execute(select(
        assist_settings.c.lgcode))}


def save_settings(conn: Connection, s: Settings) -> None:
    values = {"greeting_ja": s.greeting_ja, "greeting_en": s.greeting_en, "tone": s.tone.value,
              "categories": list(s.categories), "adopt_shared": s.adopt_shared,
              "threshold": s.threshold, "inquiry_url": s.inquiry_url,
              "revision": time.time_ns()}
    done = conn.execute(update(assist_settings).where(assist_settings.c.lgcode == s.lgcode)
                        .values(**values))
    if not done.rowcount:
        conn.execute(insert(assist_settings).values(lgcode=s.lgcode, **values))


# -- usage, feedback, unanswered -------------------------------------------------------

def count_use(conn: Connection, lgcode: str, day: date, **increments: int) -> None:
    t = assist_usage.c
    done = conn.execute(update(assist_usage).where(t.lgcode == lgcode, t.day == day).values(
        **{name: getattr(t, name) + n for name, n in increments.items()}))
    if not done.rowcount:
        counters = {name: 0 for name in ("questions", "answered", "handoffs", "helpful",
                                          "not_helpful")}
        conn.execute(insert(assist_usage).values(lgcode=lgcode, day=day,
                                                 **{**counters, **increments}))


def usage(conn: Connection, lgcode: str | None, since: date, until: date) -> list[dict[str, Any]]:
    t = assist_usage.c
    query = (select(t.lgcode, func.sum(t.questions).label("questions"),
                    func.sum(t.answered).label("answered"), func.sum(t.handoffs).label("handoffs"),
                    func.sum(t.helpful).label("helpful"),
                    func.sum(t.not_helpful).label("not_helpful"))
             .where(t.day >= since, t.day <= until).group_by(t.lgcode).order_by(t.lgcode))
    if lgcode is not None:
        query = query.where(t.lgcode == lgcode)
    return [{k: (int(v) if k != "lgcode" else v) for k, v in r._mapping.items()}
            for r in conn.execute(query)]


def add_feedback(conn: Connection, lgcode: str, ref: str, helpful: bool, at: datetime) -> None:
    conn.execute(insert(assist_feedback).values(lgcode=lgcode, ref=ref, helpful=helpful, at=at))


def feedback_by_ref(conn: Connection, lgcode: str) -> dict[str, tuple[int, int]]:
    t = assist_feedback.c
    found: dict[str, tuple[int, int]] = {}
    for r in conn.execute(select(t.ref, t.helpful, func.count()).where(t.lgcode == lgcode)
                          .group_by(t.ref, t.helpful)):
        yes, no = found.get(r[0], (0, 0))
        found[r[0]] = (yes + r[2], no) if r[1] else (yes, no + r[2])
    return found


def add_unanswered(conn: Connection, lgcode: str, question: str, lang: str, best_ref: str,
                   conf: float, at: datetime) -> None:
    conn.execute(insert(assist_unanswered).values(
        lgcode=lgcode, question=question, lang=lang, best_ref=best_ref, confidence=conf,
        asked_at=at, resolved=False))


def unanswered(conn: Connection, lgcode: str, limit: int = 200) -> list[dict[str, Any]]:
    t = assist_unanswered.c
    rows = conn.execute(select(t.id, t.question, t.lang, t.best_ref, t.confidence, t.asked_at)
                        .where(t.lgcode == lgcode, t.resolved.is_(False))
                        .order_by(t.asked_at.desc(), t.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def resolve_unanswered(conn: Connection, lgcode: str, item_id: int) -> bool:
    t = assist_unanswered.c
    done = conn.execute(update(assist_unanswered).where(t.lgcode == lgcode, t.id == item_id)
                        .values(resolved=True))
    return bool(done.rowcount)


# -- vectors ---------------------------------------------------------------------------

def vectors(conn: Connection, keys: Sequence[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for start in range(0, len(keys), 500):
        chunk = list(keys[start:start + 500])
        for r in conn.execute(select(assist_vectors).where(assist_vectors.c.key.in_(chunk))):
            found[r.key] = np.frombuffer(r.vector, dtype=np.float32)
    return found


def save_vectors(conn: Connection, items: dict[str, np.ndarray]) -> None:
    if items:
        conn.execute(insert(assist_vectors), [
            {"key": k, "vector": v.astype(np.float32).tobytes()} for k, v in items.items()])
