"""Registry tables and queries. Every query names its municipality (`lgcode`)."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Index,
    Insert,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kiban.platform.db import metadata, tenant_table_kwargs
from kiban.platform.tables import staff, towns
from kiban.registry.model import (
    Address,
    ForeignStatus,
    Household,
    Resident,
    Status,
    Suppression,
    snapshot,
)

# Search keys compare bytewise on PostgreSQL too, so prefix ranges use the b-tree.
Key = String(200).with_variant(String(200, collation="C"), "postgresql")

residents = Table(
    "residents", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("juminhyo_code", String(11), nullable=False),
    Column("my_number", String(12), nullable=True),
    Column("family_name", String(100), nullable=False),
    Column("given_name", String(100), nullable=False),
    Column("family_kana", String(200), nullable=False),
    Column("given_kana", String(200), nullable=False),
    Column("family_kana_key", Key, nullable=False),
    Column("given_kana_key", Key, nullable=False),
    Column("full_kana_key", Key, nullable=False),
    Column("family_name_key", Key, nullable=False),
    Column("given_name_key", Key, nullable=False),
    Column("full_name_key", Key, nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("sex", String(1), nullable=False),
    Column("household_id", String(32), nullable=False),
    Column("relationship", String(20), nullable=False),
    Column("resident_since", Date, nullable=False),
    Column("address_since", Date, nullable=False),
    Column("notified_on", Date, nullable=True),
    Column("status", String(10), nullable=False),
    Column("former_surname", String(100), nullable=False, default=""),
    Column("honseki", String(200), nullable=False, default=""),
    Column("hittosha", String(100), nullable=False, default=""),
    Column("previous_address", String(300), nullable=False, default=""),
    Column("foreign", JSON, nullable=True),
    Column("removed_on", Date, nullable=True),
    Column("removal_reason", String(40), nullable=False, default=""),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("lgcode", "id"),
    # A record voided by a cancelled change frees its 住民票コード for the corrected entry.
    Index("uq_residents_lgcode_juminhyo_code", "lgcode", "juminhyo_code", unique=True,
          sqlite_where=text("status <> 'void'"), postgresql_where=text("status <> 'void'")),
    # Name keys end with id, so a page reads in index order with nothing to sort.
    Index("ix_residents_full_kana", "lgcode", "full_kana_key", "id"),
    Index("ix_residents_given_kana", "lgcode", "given_kana_key", "id"),
    Index("ix_residents_full_name", "lgcode", "full_name_key", "id"),
    Index("ix_residents_given_name", "lgcode", "given_name_key", "id"),
    Index("ix_residents_birth_date", "lgcode", "birth_date"),
    # birth_date too: members come in birth order, and without it SQLite would rather walk
    # the birth-date index over the whole municipality than sort a household of a few.
    Index("ix_residents_household", "lgcode", "household_id", "birth_date"),
    **tenant_table_kwargs("residents"),
)

households = Table(
    "households", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("town_code", String(12), nullable=False),
    Column("banchi", String(60), nullable=False),
    Column("katagaki", String(100), nullable=False, default=""),
    Column("head_id", String(32), nullable=False),
    Column("status", String(10), nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_households_address", "lgcode", "town_code", "banchi"),
    **tenant_table_kwargs("households"),
)

change_events = Table(
    "change_events", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("notified_on", Date, nullable=True),
    Column("late_notice", Boolean, nullable=False),
    Column("detail", JSON, nullable=False),
    Column("before", JSON, nullable=False),
    Column("after", JSON, nullable=False),
    Column("actor", String(32), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("cancels", String(32), nullable=True),
    Column("cancelled_by", String(32), nullable=True),
    Column("ledger_seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_change_events_recorded", "lgcode", "recorded_at"),
    **tenant_table_kwargs("change_events"),
)

event_subjects = Table(
    "event_subjects", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("resident_id", String(32), nullable=False),
    Column("event_id", String(32), nullable=False),
    PrimaryKeyConstraint("lgcode", "resident_id", "event_id"),
    **tenant_table_kwargs("event_subjects"),
)

certificates = Table(
    "certificates", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("serial", String(20), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("resident_ids", JSON, nullable=False),
    Column("options", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("issued_by", String(32), nullable=False),
    # Who asked (JR-0505): {"kind": "self" | "third_party", "name", "purpose"}; None: not said.
    Column("requester", JSON, nullable=True),
    # The issued document is the PAdES-signed PDF (content_hash is the rendered PDF before
    # signing, which the verification code covers); withdrawn: no longer vouched for.
    Column("signed_hash", String(64), nullable=True),
    Column("withdrawn_at", DateTime(timezone=True), nullable=True),
    Column("withdrawn_by", String(32), nullable=True),
    Column("withdrawal_reason", String(200), nullable=True),
    PrimaryKeyConstraint("lgcode", "serial"),
    **tenant_table_kwargs("certificates"),
)

# Each municipality's document-signing certificates, current and past (so documents signed
# before a key change still verify). The private key is kept only for a key the test CA issued
# (test and demo mode); a configured production key stays in its files.
document_signing_keys = Table(
    "document_signing_keys", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("certificate", Text, nullable=False),
    Column("chain", Text, nullable=False),
    Column("private_key", Text, nullable=True),
    Column("source", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("lgcode", "fingerprint"),
    **tenant_table_kwargs("document_signing_keys"),
)

counters = Table(
    "counters", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("name", String(40), nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("lgcode", "name"),
    **tenant_table_kwargs("counters"),
)

# 転出証明書情報 sent ahead for a 特例転入: readable by the departure and the destination.
moveout_transfers = Table(
    "moveout_transfers", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("dest_lgcode", String(6), nullable=False),
    Column("resident_id", String(32), nullable=False),
    Column("juminhyo_code", String(11), nullable=False),
    Column("data", JSON, nullable=False),
    Column("planned_on", Date, nullable=False),
    Column("moved_in_on", Date, nullable=True),
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_moveout_transfers_dest", "dest_lgcode", "juminhyo_code"),
    **tenant_table_kwargs("moveout_transfers"),
)

# 支援措置による抑止 (JR-0301..0303). Ended, never deleted.
suppressions = Table(
    "suppressions", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("resident_id", String(32), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=True),
    Column("ended_on", Date, nullable=True),
    Column("end_reason", String(200), nullable=False, default=""),
    Column("created_by", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("ended_by", String(32), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_suppressions_resident", "lgcode", "resident_id"),
    **tenant_table_kwargs("suppressions"),
)

def lock_resident(conn: Connection, lgcode: str, resident_id: str) -> None:
    """Serialises decisions about one resident (a suppression set once): a row lock on
    PostgreSQL, the write lock on SQLite, before anything is read."""
    conn.execute(update(residents).where(residents.c.lgcode == lgcode,
                                         residents.c.id == resident_id)
                 .values(version=residents.c.version))


# Who read or certified a resident (JR-1005): identifiers only, no personal data.
access_log = Table(
    "access_log", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("staff_id", String(32), nullable=False),
    Column("action", String(20), nullable=False),
    Column("resident_id", String(32), nullable=False),
    Column("subject", String(40), nullable=False, default=""),
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_access_log_resident", "lgcode", "resident_id", "at"),
    **tenant_table_kwargs("access_log"),
)

_KEY_COLUMNS = ("family_kana_key", "given_kana_key", "full_kana_key", "family_name_key",
                "given_name_key", "full_name_key")


def resident_row(r: Resident) -> dict[str, Any]:
    row = snapshot(r)
    row.update(r.search_keys())
    for key in ("birth_date", "resident_since", "address_since", "notified_on", "removed_on"):
        row[key] = getattr(r, key)
    return row


def household_row(h: Household) -> dict[str, Any]:
    return {"lgcode": h.lgcode, "id": h.id, "town_code": h.address.town_code,
            "banchi": h.address.banchi, "katagaki": h.address.katagaki, "head_id": h.head_id,
            "status": h.status.value, "version": h.version}


def to_resident(row: Any) -> Resident:
    r = dict(row._mapping)
    for key in _KEY_COLUMNS:
        r.pop(key, None)
    foreign = r.pop("foreign")
    if foreign:
        foreign = ForeignStatus(**{**foreign, "expiry": date.fromisoformat(foreign["expiry"])})
    return Resident(**{**r, "status": Status(r["status"]), "foreign": foreign})


def to_household(row: Any) -> Household:
    r = row._mapping
    return Household(id=r["id"], lgcode=r["lgcode"],
                     address=Address(r["town_code"], r["banchi"], r["katagaki"]),
                     head_id=r["head_id"], status=Status(r["status"]), version=r["version"])


def get_resident(conn: Connection, lgcode: str, resident_id: str) -> Resident | None:
    row = conn.execute(select(residents).where(residents.c.lgcode == lgcode,
                                               residents.c.id == resident_id)).first()
    return to_resident(row) if row else None


def get_residents(conn: Connection, lgcode: str, ids: Iterable[str]) -> list[Resident]:
    ids = list(ids)
    rows = conn.execute(select(residents).where(residents.c.lgcode == lgcode,
                                                residents.c.id.in_(ids)))
    found = {r.id: to_resident(r) for r in rows}
    return [found[i] for i in ids if i in found]


def by_juminhyo_code(conn: Connection, lgcode: str, code: str) -> Resident | None:
    row = conn.execute(select(residents).where(residents.c.lgcode == lgcode,
                                               residents.c.juminhyo_code == code)).first()
    return to_resident(row) if row else None


def juminhyo_code_taken(conn: Connection, lgcode: str, code: str) -> bool:
    return conn.execute(select(residents.c.id).where(
        residents.c.lgcode == lgcode, residents.c.juminhyo_code == code,
        residents.c.status != Status.VOID.value)).first() is not None


def get_household(conn: Connection, lgcode: str, household_id: str) -> Household | None:
    row = conn.execute(select(households).where(households.c.lgcode == lgcode,
                                                households.c.id == household_id)).first()
    return to_household(row) if row else None


def members(conn: Connection, lgcode: str, household_id: str,
            include_removed: bool = False) -> list[Resident]:
    query = select(residents).where(residents.c.lgcode == lgcode,
                                    residents.c.household_id == household_id)
    if not include_removed:
        query = query.where(residents.c.status == Status.ACTIVE.value)
    return [to_resident(r) for r in conn.execute(query.order_by(residents.c.birth_date))]


def insert_residents(conn: Connection, rows: list[Resident]) -> list[Resident]:
    """Inserts the residents whose 住民票コード is free in the municipality and returns the
    others, not inserted. The partial unique index (void records aside) decides, in the same
    statement: no query beforehand, and two concurrent changes cannot both take one code."""
    if not rows:
        return []
    # ON CONFLICT on that index only: any other constraint still raises. The rows go as
    # parameters (one multi-row statement, "insertmanyvalues"), never as literal VALUES,
    # so the compiled statement is cached.
    upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (upsert(residents)
                 .on_conflict_do_nothing(index_elements=["lgcode", "juminhyo_code"],
                                         index_where=text("status <> 'void'"))
                 .returning(residents.c.id))
    params = [resident_row(r) for r in rows]
    result = conn.execute(statement, params if len(params) > 1 else params[0])
    inserted = set(result.scalars())
    return [r for r in rows if r.id not in inserted]


def insert_households(conn: Connection, rows: list[Household]) -> None:
    if rows:
        conn.execute(insert(households), [household_row(h) for h in rows])


def save_resident(conn: Connection, r: Resident, expected_version: int) -> bool:
    """Optimistic write: False when another change got there first."""
    row = resident_row(r)
    result = conn.execute(update(residents).where(
        residents.c.lgcode == r.lgcode, residents.c.id == r.id,
        residents.c.version == expected_version).values(**row))
    return result.rowcount == 1


def save_household(conn: Connection, h: Household, expected_version: int) -> bool:
    result = conn.execute(update(households).where(
        households.c.lgcode == h.lgcode, households.c.id == h.id,
        households.c.version == expected_version).values(**household_row(h)))
    return result.rowcount == 1


def household_exists(conn: Connection, lgcode: str, household_id: str) -> bool:
    return conn.execute(select(households.c.id).where(
        households.c.lgcode == lgcode, households.c.id == household_id)).first() is not None


def event_inserts(conn: Connection, row: dict[str, Any],
                  subject_ids: Iterable[str]) -> list[Insert]:
    """The statements recording a change event and whom it concerns, as self-contained
    statements (for `ledger.append(also=...)`, which on PostgreSQL sends them as CTEs of one
    statement). On PostgreSQL every value is a bound parameter of a fixed shape (the subjects
    one array), so the compiled statement is cached whatever the number of subjects."""
    statements = [insert(change_events).values(**row)]
    ids = list(dict.fromkeys(subject_ids))
    if ids and conn.dialect.name == "postgresql":
        c = event_subjects.c
        statements.append(insert(event_subjects).from_select(
            [c.lgcode, c.resident_id, c.event_id],
            select(literal(row["lgcode"], String(6)),
                   func.unnest(bindparam("subject_ids", ids, type_=ARRAY(String(32)))),
                   literal(row["id"], String(32)))))
    elif ids:
        statements.append(insert(event_subjects).values(
            [{"lgcode": row["lgcode"], "resident_id": s, "event_id": row["id"]} for s in ids]))
    return statements


def insert_event(conn: Connection, row: dict[str, Any], subject_ids: Iterable[str]) -> None:
    """The change event and its subjects, on any backend."""
    conn.execute(insert(change_events).values(**row))
    subjects = [{"lgcode": row["lgcode"], "resident_id": s, "event_id": row["id"]}
                for s in dict.fromkeys(subject_ids)]
    if subjects:
        conn.execute(insert(event_subjects), subjects)


def get_event(conn: Connection, lgcode: str, event_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(change_events).where(change_events.c.lgcode == lgcode,
                                                   change_events.c.id == event_id)).first()
    return dict(row._mapping) if row else None


def mark_cancelled(conn: Connection, lgcode: str, event_id: str, by: str) -> None:
    conn.execute(update(change_events).where(change_events.c.lgcode == lgcode,
                                             change_events.c.id == event_id)
                 .values(cancelled_by=by))


def events_for(conn: Connection, lgcode: str, resident_id: str) -> list[dict[str, Any]]:
    query = (select(change_events)
             .join(event_subjects, and_(event_subjects.c.lgcode == change_events.c.lgcode,
                                        event_subjects.c.event_id == change_events.c.id))
             .where(event_subjects.c.lgcode == lgcode,
                    event_subjects.c.resident_id == resident_id)
             .order_by(change_events.c.recorded_at, change_events.c.ledger_seq))
    return [dict(r._mapping) for r in conn.execute(query)]


def all_events(conn: Connection, lgcode: str) -> Iterator[dict[str, Any]]:
    query = (select(change_events).where(change_events.c.lgcode == lgcode)
             .order_by(change_events.c.ledger_seq))
    for row in conn.execute(query).yield_per(2000):
        yield dict(row._mapping)


SEARCH_CAP = 1_000  # matches counted at most: beyond it a clerk narrows the search, not counts


def search(conn: Connection, lgcode: str, *, kana_key: str | None, kanji_key: str | None,
           birth_date: date | None, town_code: str | None, banchi: str | None,
           juminhyo_code: str | None, statuses: list[str], limit: int,
           offset: int) -> tuple[list[Resident], int]:
    """Prefix match on the full name (family name first) and then on the given name, so
    'ヤマダ' and 'タロウ' both find ヤマダ タロウ; likewise for kanji; exact date, address, code.

    The two name matches are two index-ordered range scans, full-name matches first, each read
    only as far as the page needs: one OR across both indexes would make the database sort
    every match (seconds for a common prefix among a million residents). Returns a page and
    the count of matches (capped at SEARCH_CAP)."""
    c = residents.c
    where = [c.lgcode == lgcode, c.status.in_(statuses)]

    def prefix(column: Any, key: str) -> Any:
        return and_(column >= key, column < key + "\U0010ffff")

    if birth_date:
        where.append(c.birth_date == birth_date)
    if juminhyo_code:
        where.append(c.juminhyo_code == juminhyo_code)
    if town_code or banchi:
        hh = [households.c.lgcode == lgcode]
        if town_code:
            hh.append(households.c.town_code == town_code)
        if banchi:
            hh.append(households.c.banchi.startswith(banchi, autoescape=True))
        where.append(c.household_id.in_(select(households.c.id).where(*hh)))
    name = ((c.full_kana_key, c.given_kana_key, kana_key) if kana_key else
            (c.full_name_key, c.given_name_key, kanji_key) if kanji_key else None)
    if name is None:
        arms = [(select(residents).where(*where), (c.full_kana_key, c.id))]
    else:
        full, given, key = name
        assert key is not None
        arms = [(select(residents).where(*where, prefix(full, key)), (full, c.id)),
                (select(residents).where(*where, prefix(given, key), ~prefix(full, key)),
                 (given, c.id))]
    rows: list[Resident] = []
    total = 0
    for query, order in arms:
        found = conn.execute(select(func.count()).select_from(
            query.with_only_columns(c.id).limit(SEARCH_CAP).subquery())).scalar_one()
        skip = max(offset - total, 0)
        if len(rows) < limit and skip < found:
            page = conn.execute(query.order_by(*order).limit(limit - len(rows)).offset(skip))
            rows += [to_resident(r) for r in page]
        total += found
    return rows, min(total, SEARCH_CAP)


def town_names(conn: Connection, lgcode: str) -> dict[str, str]:
    return {r.code: r.name for r in conn.execute(
        select(towns.c.code, towns.c.name).where(towns.c.lgcode == lgcode))}


def town_names_for(conn: Connection, lgcode: str, codes: Iterable[object]) -> dict[str, str]:
    """Only the named 町字 that are in the municipality's master (one index lookup each),
    for checking an address without loading the whole master."""
    wanted = {c for c in codes if isinstance(c, str) and c}
    if not wanted:
        return {}
    return {r.code: r.name for r in conn.execute(
        select(towns.c.code, towns.c.name).where(towns.c.lgcode == lgcode,
                                                 towns.c.code.in_(sorted(wanted))))}


def next_counter(conn: Connection, lgcode: str, name: str) -> int:
    query = select(counters.c.value).where(counters.c.lgcode == lgcode, counters.c.name == name)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    current = conn.execute(query).scalar()
    if current is None:
        conn.execute(insert(counters).values(lgcode=lgcode, name=name, value=1))
        return 1
    conn.execute(update(counters).where(counters.c.lgcode == lgcode, counters.c.name == name)
                 .values(value=current + 1))
    return int(current) + 1


def insert_certificate(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(certificates).values(**row))


def get_certificate(conn: Connection, lgcode: str, serial: str) -> dict[str, Any] | None:
    row = conn.execute(select(certificates).where(certificates.c.lgcode == lgcode,
                                                  certificates.c.serial == serial)).first()
    return dict(row._mapping) if row else None


def withdraw_certificate(conn: Connection, lgcode: str, serial: str, values: dict[str, Any]) -> None:
    conn.execute(update(certificates).where(certificates.c.lgcode == lgcode, certificates.c.serial == serial)
                 .values(**values))


def document_keys(conn: Connection, lgcode: str) -> list[dict[str, Any]]:
    """Newest first."""
    return [dict(r._mapping) for r in conn.execute(
        select(document_signing_keys).where(document_signing_keys.c.lgcode == lgcode)
        .order_by(document_signing_keys.c.created_at.desc()))]


def add_document_key(conn: Connection, row: dict[str, Any]) -> None:
    upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(upsert(document_signing_keys).values(**row)
                 .on_conflict_do_nothing(index_elements=["lgcode", "fingerprint"]))


def list_certificates(conn: Connection, lgcode: str, limit: int = 50) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(
        select(certificates).where(certificates.c.lgcode == lgcode)
        .order_by(certificates.c.issued_at.desc()).limit(limit))]


# --- suppressions (JR-0301..0303) -----------------------------------------------------------


def _to_suppression(row: Any) -> Suppression:
    r = row._mapping
    return Suppression(id=r["id"], lgcode=r["lgcode"], resident_id=r["resident_id"],
                       reason=r["reason"], starts_on=r["starts_on"], ends_on=r["ends_on"],
                       ended_on=r["ended_on"])


def insert_suppression(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(suppressions).values(**row))


def get_suppression(conn: Connection, lgcode: str, suppression_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(suppressions).where(suppressions.c.lgcode == lgcode,
                                                  suppressions.c.id == suppression_id)).first()
    return dict(row._mapping) if row else None


def end_suppression(conn: Connection, lgcode: str, suppression_id: str, ended_on: date,
                    reason: str, by: str, at: Any) -> bool:
    result = conn.execute(update(suppressions).where(
        suppressions.c.lgcode == lgcode, suppressions.c.id == suppression_id,
        suppressions.c.ended_on.is_(None)).values(
        ended_on=ended_on, end_reason=reason, ended_by=by, ended_at=at))
    return result.rowcount == 1


def list_suppressions(conn: Connection, lgcode: str, *, resident_id: str | None = None,
                      active_on: date | None = None, limit: int = 200) -> list[dict[str, Any]]:
    c = suppressions.c
    query = select(suppressions).where(c.lgcode == lgcode)
    if resident_id:
        query = query.where(c.resident_id == resident_id)
    if active_on is not None:
        query = query.where(*_active(active_on))
    return [dict(r._mapping) for r in conn.execute(
        query.order_by(c.created_at.desc(), c.id).limit(limit))]


def _active(day: date) -> list[Any]:
    c = suppressions.c
    return [c.ended_on.is_(None), c.starts_on <= day,
            (c.ends_on.is_(None)) | (c.ends_on >= day)]


def suppressed_among(conn: Connection, lgcode: str, resident_ids: Iterable[str],
                     day: date) -> set[str]:
    """Which of the residents have a suppression in force on `day` (one query)."""
    ids = sorted(set(resident_ids))
    if not ids:
        return set()
    c = suppressions.c
    return set(conn.execute(select(c.resident_id).where(
        c.lgcode == lgcode, c.resident_id.in_(ids), *_active(day))).scalars())


def suppressions_of(conn: Connection, lgcode: str, resident_id: str) -> list[Suppression]:
    return [_to_suppression(r) for r in conn.execute(select(suppressions).where(
        suppressions.c.lgcode == lgcode, suppressions.c.resident_id == resident_id))]


# --- access log (JR-1005) -------------------------------------------------------------------


def log_access(conn: Connection, lgcode: str, rows: list[dict[str, Any]]) -> None:
    """One INSERT (one row per resident) in the caller's transaction."""
    if rows:
        conn.execute(insert(access_log), [{"lgcode": lgcode, **r} for r in rows])


def access_entries(conn: Connection, lgcode: str, *, resident_id: str | None,
                   staff_id: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
    """Newest first, with the staff member's name (platform table: no personal data)."""
    c = access_log.c
    query = (select(c.id, c.at, c.staff_id, c.action, c.resident_id, c.subject,
                    staff.c.username, staff.c.display_name)
             .outerjoin(staff, staff.c.id == c.staff_id)
             .where(c.lgcode == lgcode))
    if resident_id:
        query = query.where(c.resident_id == resident_id)
    if staff_id:
        query = query.where(c.staff_id == staff_id)
    return [dict(r._mapping) for r in conn.execute(
        query.order_by(c.at.desc(), c.id).limit(limit).offset(offset))]


def insert_transfer(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(moveout_transfers).values(**row))


def transfers_to(conn: Connection, dest_lgcode: str, juminhyo_code: str | None = None
                 ) -> list[dict[str, Any]]:
    query = select(moveout_transfers).where(moveout_transfers.c.dest_lgcode == dest_lgcode,
                                            moveout_transfers.c.moved_in_on.is_(None))
    if juminhyo_code:
        query = query.where(moveout_transfers.c.juminhyo_code == juminhyo_code)
    return [dict(r._mapping) for r in conn.execute(query)]


def get_transfer(conn: Connection, transfer_id: str, dest_lgcode: str) -> dict[str, Any] | None:
    row = conn.execute(select(moveout_transfers).where(
        moveout_transfers.c.id == transfer_id,
        moveout_transfers.c.dest_lgcode == dest_lgcode)).first()
    return dict(row._mapping) if row else None


def get_own_transfer(conn: Connection, lgcode: str, transfer_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(moveout_transfers).where(
        moveout_transfers.c.lgcode == lgcode, moveout_transfers.c.id == transfer_id)).first()
    return dict(row._mapping) if row else None


def delete_transfer(conn: Connection, lgcode: str, transfer_id: str) -> None:
    conn.execute(delete(moveout_transfers).where(moveout_transfers.c.lgcode == lgcode,
                                                 moveout_transfers.c.id == transfer_id))


def reopen_transfer(conn: Connection, transfer: dict[str, Any]) -> None:
    conn.execute(update(moveout_transfers).where(
        moveout_transfers.c.lgcode == transfer["lgcode"],
        moveout_transfers.c.id == transfer["id"]).values(moved_in_on=None))


def mark_transfer_used(conn: Connection, transfer: dict[str, Any], moved_in_on: date) -> None:
    conn.execute(update(moveout_transfers).where(
        moveout_transfers.c.lgcode == transfer["lgcode"],
        moveout_transfers.c.id == transfer["id"]).values(moved_in_on=moved_in_on))


def population(conn: Connection, lgcode: str) -> list[tuple[date, str, int]]:
    """(birth date, sex, count) over active residents: at most ~40,000 distinct dates, however
    large the municipality, so the pyramid never loads every resident."""
    return [(r.birth_date, r.sex, r.n) for r in conn.execute(
        select(residents.c.birth_date, residents.c.sex, func.count().label("n")).where(
            residents.c.lgcode == lgcode, residents.c.status == Status.ACTIVE.value)
        .group_by(residents.c.birth_date, residents.c.sex))]


def counts(conn: Connection, lgcode: str) -> dict[str, int]:
    active = conn.execute(select(func.count()).select_from(residents).where(
        residents.c.lgcode == lgcode, residents.c.status == Status.ACTIVE.value)).scalar_one()
    removed = conn.execute(select(func.count()).select_from(residents).where(
        residents.c.lgcode == lgcode, residents.c.status == Status.REMOVED.value)).scalar_one()
    hh = conn.execute(select(func.count()).select_from(households).where(
        households.c.lgcode == lgcode, households.c.status == Status.ACTIVE.value)).scalar_one()
    return {"residents": active, "removed": removed, "households": hh}


def iter_residents(conn: Connection, lgcode: str) -> Iterator[Resident]:
    query = select(residents).where(residents.c.lgcode == lgcode).order_by(residents.c.id)
    for row in conn.execute(query).yield_per(5000):
        yield to_resident(row)


def iter_households(conn: Connection, lgcode: str) -> Iterator[Household]:
    query = select(households).where(households.c.lgcode == lgcode).order_by(households.c.id)
    for row in conn.execute(query).yield_per(5000):
        yield to_household(row)


def existing_codes(conn: Connection, lgcode: str) -> set[str]:
    return set(conn.execute(select(residents.c.juminhyo_code)
                            .where(residents.c.lgcode == lgcode)).scalars())


# --- bulk migration (kiban.registry.migration) --------------------------------------------------


def _binary_order(conn: Connection, column: Any) -> Any:
    """Code-point order on every backend, so an export is byte-identical wherever it runs
    and the migration can merge two ordered cursors by comparing ids in Python."""
    return column.collate("C") if conn.dialect.name == "postgresql" else column


def export_households(conn: Connection, lgcode: str) -> Iterator[Any]:
    """Every household (any status) as raw rows, ordered by id."""
    query = (select(households).where(households.c.lgcode == lgcode)
             .order_by(_binary_order(conn, households.c.id)))
    yield from conn.execute(query).yield_per(5000).mappings()


def export_residents(conn: Connection, lgcode: str) -> Iterator[Any]:
    """Every resident record (removed and void too) as raw rows, by household then id."""
    c = residents.c
    query = (select(*[col for col in residents.c if col.name not in _KEY_COLUMNS])
             .where(c.lgcode == lgcode)
             .order_by(_binary_order(conn, c.household_id), _binary_order(conn, c.id)))
    yield from conn.execute(query).yield_per(5000).mappings()


def registry_identifiers(conn: Connection, lgcode: str) -> dict[str, set[str]]:
    """What an import must not repeat: resident and household ids, 住民票コード, and the
    個人番号 of active residents. One query each, so validation needs no per-row query."""
    c = residents.c
    return {
        "resident_ids": set(conn.execute(select(c.id).where(c.lgcode == lgcode)).scalars()),
        "household_ids": set(conn.execute(select(households.c.id).where(
            households.c.lgcode == lgcode)).scalars()),
        "juminhyo_codes": set(conn.execute(select(c.juminhyo_code).where(
            c.lgcode == lgcode, c.status != Status.VOID.value)).scalars()),
        "my_numbers": set(conn.execute(select(c.my_number).where(
            c.lgcode == lgcode, c.status == Status.ACTIVE.value,
            c.my_number.is_not(None))).scalars()),
    }


def bulk_insert(conn: Connection, household_rows: list[dict[str, Any]],
                resident_rows: list[dict[str, Any]]) -> None:
    """Prepared rows (every column, search keys included), straight to the driver's
    executemany: SQLAlchemy's per-value bind processing costs more than the insert itself
    at migration volumes. Values are converted here exactly as the column types would."""
    for table, rows in ((households, household_rows), (residents, resident_rows)):
        if not rows:
            continue
        names = [c.name for c in table.columns]
        json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
        raw = conn.connection.dbapi_connection
        assert raw is not None
        if conn.dialect.name == "postgresql":
            from psycopg.types.json import Json

            wrap: Any = Json
            marks = ", ".join(["%s"] * len(names))
        else:
            wrap = json.dumps
            marks = ", ".join(["?"] * len(names))
        columns = ", ".join(f'"{n}"' for n in names)
        for row in rows:
            for n in json_columns:
                row[n] = wrap(row.get(n))
        pick = operator.itemgetter(*names)  # one C call per row, not one lookup per value
        params = [pick(row) for row in rows]
        cursor = raw.cursor()
        try:
            cursor.executemany(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", params)
        finally:
            cursor.close()


def get_households(conn: Connection, lgcode: str, ids: Iterable[str]) -> dict[str, Household]:
    """Many households in one query (a search page's addresses)."""
    ids = list(ids)
    if not ids:
        return {}
    rows = conn.execute(select(households).where(households.c.lgcode == lgcode,
                                                 households.c.id.in_(ids)))
    return {r.id: to_household(r) for r in rows}


class BulkWrites:
    """For a bulk import on SQLite: a page cache large enough to keep the index pages in
    memory (about a third less CPU per row at 100k rows); the default comes back after."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.previous: int | None = None

    def __enter__(self) -> None:
        if self.conn.dialect.name == "sqlite":
            self.previous = int(self.conn.exec_driver_sql("PRAGMA cache_size").scalar() or -2000)
            self.conn.exec_driver_sql("PRAGMA cache_size=-262144")  # KiB: 256 MiB at most

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            self.conn.exec_driver_sql(f"PRAGMA cache_size={self.previous}")


# --- taxpayers on a date (read by the resident tax through Registry.taxpayers_on) -----------------


def residents_on(conn: Connection, lgcode: str, day: date, first_id: str | None = None,
                 last_id: str | None = None) -> list[tuple[Any, ...]]:
    """(id, juminhyo_code, my_number, family_name, given_name, birth_date, sex, town_code,
    banchi, katagaki) of every resident on `day` (a resident by then, not removed before it;
    a 除票 counts until its removal date), ids in [first_id, last_id], in id order. Plain
    tuples: a municipality's whole population is read at once by the annual assessment.
    The households are read by primary key in a second query, not joined: right after a
    bulk import the planner has no statistics and may pick a nested loop over an index."""
    r = residents.c
    query = (select(r.id, r.juminhyo_code, r.my_number, r.family_name, r.given_name,
                    r.birth_date, r.sex, r.household_id)
             .where(r.lgcode == lgcode,
                    r.status.in_([Status.ACTIVE.value, Status.REMOVED.value]),
                    r.resident_since <= day,
                    or_(r.removed_on.is_(None), r.removed_on > day))
             .order_by(r.id))
    if first_id is not None:
        query = query.where(r.id >= first_id)
    if last_id is not None:
        query = query.where(r.id <= last_id)
    people = conn.execute(query).all()
    wanted = sorted({p[7] for p in people})
    places: dict[str, tuple[str, str, str]] = {}
    h = households.c
    for start in range(0, len(wanted), 5000):
        for row in conn.execute(select(h.id, h.town_code, h.banchi, h.katagaki).where(
                h.lgcode == lgcode, h.id.in_(wanted[start:start + 5000]))):
            places[row[0]] = (row[1], row[2], row[3])
    empty = ("", "", "")
    return [(*p[:7], *places.get(p[7], empty)) for p in people]


def population_by_town(conn: Connection, lgcode: str) -> list[tuple[str, date, str, int]]:
    """(town code, birth date, sex, count) over active residents, by the town of their
    household: counts only, never a person (the open dataset 地域・年齢別人口)."""
    r, h = residents.c, households.c
    query = (select(h.town_code, r.birth_date, r.sex, func.count().label("n"))
             .select_from(residents.join(households, and_(h.lgcode == r.lgcode,
                                                          h.id == r.household_id)))
             .where(r.lgcode == lgcode, r.status == Status.ACTIVE.value,
                    h.lgcode == lgcode)
             .group_by(h.town_code, r.birth_date, r.sex))
    return [(row.town_code, row.birth_date, row.sex, int(row.n)) for row in conn.execute(query)]
