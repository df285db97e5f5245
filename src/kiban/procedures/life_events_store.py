"""Tables and queries of the life events (引越しワンストップ, 出生).

Every table carries the municipality's 地方公共団体コード and, on PostgreSQL, is
hash-partitioned by it with the `tenant_isolation` row policy (migration 0016): a
municipality sees only its own moves, arrivals, slots and tasks. The one platform table,
`life_portal_index`, holds no personal data: a hash of the portal subject (itself an HMAC
pseudonym) and the move it may see.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kiban.platform.db import metadata, tenant_table_kwargs

# At the departure municipality: an approved online 転出届 and what became of sending its data.
life_moves = Table(
    "life_moves", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("id", String(32), primary_key=True),
    Column("application_id", String(64), nullable=True),
    Column("dest_lgcode", String(6), nullable=False),
    Column("resident_ids", JSON, nullable=False),
    Column("planned_on", Date, nullable=False),
    Column("registry_event_id", String(32), nullable=False),
    Column("status", String(20), nullable=False),  # sent | send_failed
    Column("reason", String(200), nullable=False),
    Column("reference", String(64), nullable=True),  # the destination's booking reference
    Column("certificates", JSON, nullable=False),  # kept until sent (retry), then emptied
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("lgcode", "application_id", name="uq_life_moves_application"),
    **tenant_table_kwargs("life_moves"),
)

# At the destination: a household's move-out data received through the hub, one row a move.
life_arrivals = Table(
    "life_arrivals", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("move_id", String(32), primary_key=True),
    Column("from_lgcode", String(6), nullable=False),
    Column("total", Integer, nullable=False),
    Column("reference", String(64), nullable=False),
    Column("planned_on", Date, nullable=False),
    Column("status", String(20), nullable=False),  # received | completing | completed
    Column("slot_id", String(32), nullable=True),
    Column("booked_at", DateTime(timezone=True), nullable=True),
    Column("household_id", String(32), nullable=True),
    Column("registry_event_id", String(32), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    **tenant_table_kwargs("life_arrivals"),
)

# At the destination: each person's 転出証明書情報 (personal data).
life_incoming = Table(
    "life_incoming", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("move_id", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("person", JSON, nullable=False),
    Column("juminhyo_code", String(11), nullable=False),
    Column("relationship", String(20), nullable=False),
    Column("previous_address", String(300), nullable=False),
    Column("peer_code", String(24), nullable=True),  # the destination's own code, when remote
    Column("resident_id", String(32), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    **tenant_table_kwargs("life_incoming"),
)

life_slots = Table(
    "life_slots", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("id", String(32), primary_key=True),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("booked", Integer, nullable=False),
    Column("created_by", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_life_slots_starts", "lgcode", "starts_at"),
    **tenant_table_kwargs("life_slots"),
)

life_tasks = Table(
    "life_tasks", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("id", String(32), primary_key=True),
    Column("household_id", String(32), nullable=False),
    Column("resident_id", String(32), nullable=False),  # whom the task is about
    Column("procedure_id", String(64), nullable=False),
    Column("trigger", String(20), nullable=False),  # move_in | birth
    Column("source_event", String(32), nullable=False),  # the registry change event
    Column("state", String(20), nullable=False),  # todo | applied | done (as last set by staff)
    Column("evidence", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("lgcode", "source_event", "household_id", "procedure_id",
                     name="uq_life_tasks_source"),
    Index("ix_life_tasks_household", "lgcode", "household_id"),
    **tenant_table_kwargs("life_tasks"),
)

life_cursors = Table(
    "life_cursors", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("after_seq", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    **tenant_table_kwargs("life_cursors"),
)

life_portal_index = Table(
    "life_portal_index", metadata,
    Column("subject_hash", String(64), primary_key=True),
    Column("move_id", String(32), primary_key=True),
    Column("lgcode", String(6), nullable=False),  # the departure municipality
    Column("dest_lgcode", String(6), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


def _one(conn: Connection, query: Any) -> dict[str, Any] | None:
    row = conn.execute(query).first()
    return dict(row._mapping) if row is not None else None


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Inserts the rows not already there (by primary key or unique constraint)."""
    if not rows:
        return 0
    upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    return int(conn.execute(upsert(table).on_conflict_do_nothing(), rows).rowcount or 0)


# --- moves (departure) --------------------------------------------------------------------

def move_of_application(conn: Connection, lgcode: str, application_id: str) -> dict[str, Any] | None:
    return _one(conn, select(life_moves).where(life_moves.c.lgcode == lgcode,
                                               life_moves.c.application_id == application_id))


def get_move(conn: Connection, lgcode: str, move_id: str) -> dict[str, Any] | None:
    return _one(conn, select(life_moves).where(life_moves.c.lgcode == lgcode, life_moves.c.id == move_id))


def moves(conn: Connection, lgcode: str, limit: int = 100) -> list[dict[str, Any]]:
    return _rows(conn, select(life_moves).where(life_moves.c.lgcode == lgcode)
                 .order_by(life_moves.c.created_at.desc()).limit(limit))


def update_move(conn: Connection, lgcode: str, move_id: str, **values: Any) -> None:
    conn.execute(update(life_moves).where(life_moves.c.lgcode == lgcode, life_moves.c.id == move_id)
                 .values(**values))


def index_subjects(conn: Connection, rows: list[dict[str, Any]]) -> None:
    insert_ignore(conn, life_portal_index, rows)


def moves_of_subject(conn: Connection, subject_hash: str) -> list[dict[str, Any]]:
    return _rows(conn, select(life_portal_index).where(life_portal_index.c.subject_hash == subject_hash)
                 .order_by(life_portal_index.c.created_at.desc()))


# --- arrivals (destination) ---------------------------------------------------------------

def get_arrival(conn: Connection, lgcode: str, move_id: str) -> dict[str, Any] | None:
    return _one(conn, select(life_arrivals).where(life_arrivals.c.lgcode == lgcode,
                                                  life_arrivals.c.move_id == move_id))


def arrival_by_reference(conn: Connection, lgcode: str, reference: str) -> dict[str, Any] | None:
    return _one(conn, select(life_arrivals).where(life_arrivals.c.lgcode == lgcode,
                                                  life_arrivals.c.reference == reference))


def arrivals(conn: Connection, lgcode: str, limit: int = 200) -> list[dict[str, Any]]:
    return _rows(conn, select(life_arrivals).where(life_arrivals.c.lgcode == lgcode)
                 .order_by(life_arrivals.c.received_at.desc()).limit(limit))


def incoming(conn: Connection, lgcode: str, move_id: str) -> list[dict[str, Any]]:
    return _rows(conn, select(life_incoming).where(life_incoming.c.lgcode == lgcode,
                                                   life_incoming.c.move_id == move_id)
                 .order_by(life_incoming.c.seq))


def set_arrival_status(conn: Connection, lgcode: str, move_id: str, allowed: tuple[str, ...],
                       **values: Any) -> bool:
    """A conditional update: True when the arrival was in one of `allowed` states."""
    done = conn.execute(update(life_arrivals).where(
        life_arrivals.c.lgcode == lgcode, life_arrivals.c.move_id == move_id,
        life_arrivals.c.status.in_(allowed)).values(**values)).rowcount
    return bool(done)


def set_incoming_resident(conn: Connection, lgcode: str, move_id: str, seq: int, resident_id: str) -> None:
    conn.execute(update(life_incoming).where(
        life_incoming.c.lgcode == lgcode, life_incoming.c.move_id == move_id,
        life_incoming.c.seq == seq).values(resident_id=resident_id))


# --- slots --------------------------------------------------------------------------------

def slots(conn: Connection, lgcode: str, after: datetime) -> list[dict[str, Any]]:
    return _rows(conn, select(life_slots).where(life_slots.c.lgcode == lgcode, life_slots.c.starts_at > after)
                 .order_by(life_slots.c.starts_at).limit(500))


def get_slot(conn: Connection, lgcode: str, slot_id: str) -> dict[str, Any] | None:
    return _one(conn, select(life_slots).where(life_slots.c.lgcode == lgcode, life_slots.c.id == slot_id))


def take_seat(conn: Connection, lgcode: str, slot_id: str) -> bool:
    """One seat of the slot, if one is free (a conditional update: no overbooking)."""
    done = conn.execute(update(life_slots).where(
        life_slots.c.lgcode == lgcode, life_slots.c.id == slot_id,
        life_slots.c.booked < life_slots.c.capacity).values(booked=life_slots.c.booked + 1)).rowcount
    return bool(done)


# --- tasks --------------------------------------------------------------------------------

def tasks_of(conn: Connection, lgcode: str, household_ids: list[str]) -> list[dict[str, Any]]:
    return _rows(conn, select(life_tasks).where(life_tasks.c.lgcode == lgcode,
                                                life_tasks.c.household_id.in_(household_ids))
                 .order_by(life_tasks.c.created_at, life_tasks.c.procedure_id))


def get_task(conn: Connection, lgcode: str, task_id: str) -> dict[str, Any] | None:
    return _one(conn, select(life_tasks).where(life_tasks.c.lgcode == lgcode, life_tasks.c.id == task_id))


def has_tasks(conn: Connection, lgcode: str, source_event: str, household_id: str) -> set[str]:
    return {r["procedure_id"] for r in _rows(conn, select(life_tasks.c.procedure_id).where(
        life_tasks.c.lgcode == lgcode, life_tasks.c.source_event == source_event,
        life_tasks.c.household_id == household_id))}


def set_task_state(conn: Connection, lgcode: str, task_id: str, state: str, at: datetime) -> None:
    conn.execute(update(life_tasks).where(life_tasks.c.lgcode == lgcode, life_tasks.c.id == task_id)
                 .values(state=state, updated_at=at))


# --- the change-feed cursor ---------------------------------------------------------------

def cursor(conn: Connection, lgcode: str) -> int:
    value = conn.execute(select(life_cursors.c.after_seq).where(life_cursors.c.lgcode == lgcode)).scalar()
    return int(value or 0)


def set_cursor(conn: Connection, lgcode: str, before: int, after_seq: int, at: datetime) -> bool:
    """Moves the cursor on from `before`; False when another worker moved it meanwhile."""
    if before == 0 and insert_ignore(conn, life_cursors, [{"lgcode": lgcode, "after_seq": after_seq,
                                                           "updated_at": at}]):
        return True
    done = conn.execute(update(life_cursors).where(
        life_cursors.c.lgcode == lgcode, life_cursors.c.after_seq == before).values(
            after_seq=after_seq, updated_at=at)).rowcount
    return bool(done)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
