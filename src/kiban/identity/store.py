"""Identity tables and queries: card links to resident records, their revocations, the change
feed cursor, and OpenID Connect authorization codes. Every query names its municipality.

`identity_card_index` is the one table without personal data and without row-level security:
certificate serial -> municipality, so a login (which presents only the authentication
certificate) knows which municipality's tenant to open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    PrimaryKeyConstraint,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kiban.platform.db import metadata, tenant_table_kwargs

# A certificate (signing or authentication) linked to the resident record it names.
card_links = Table(
    "identity_card_links", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("serial", String(40), nullable=False),  # hexadecimal, upper case
    Column("kind", String(20), nullable=False),  # signing | authentication
    Column("resident_id", String(32), nullable=False),
    Column("juminhyo_code", String(11), nullable=False),
    Column("card_id", String(40), nullable=False),  # the signing serial: both certificates of a card
    Column("linked_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revocation_reason", String(40), nullable=True),  # the registry change kind
    Column("revoked_by_event", String(32), nullable=True),
    PrimaryKeyConstraint("lgcode", "serial"),
    **tenant_table_kwargs("identity_card_links"),
)

# How far the change feed has been processed, per municipality.
feed_cursors = Table(
    "identity_feed_cursors", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("after_seq", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("lgcode"),
    **tenant_table_kwargs("identity_feed_cursors"),
)

# One row per login challenge answered: the code it produced (hashed), single use.
oidc_codes = Table(
    "identity_oidc_codes", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("challenge_id", String(64), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("client_id", String(100), nullable=False),
    Column("redirect_uri", String(500), nullable=False),
    Column("code_challenge", String(100), nullable=False),
    Column("nonce", String(200), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("serial", String(40), nullable=False),  # the authentication certificate's
    Column("auth_time", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("lgcode", "challenge_id"),
    **tenant_table_kwargs("identity_oidc_codes"),
)

card_index = Table(
    "identity_card_index", metadata,
    Column("serial", String(40), nullable=False),
    Column("lgcode", String(6), nullable=False),
    PrimaryKeyConstraint("serial"),
)


def _upsert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def link(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Link (or re-link, after a reissue) certificates; a revoked link stays revoked."""
    for row in rows:
        statement = _upsert(conn)(card_links).values(**row)
        conn.execute(statement.on_conflict_do_update(
            index_elements=["lgcode", "serial"],
            set_={"resident_id": statement.excluded.resident_id,
                  "juminhyo_code": statement.excluded.juminhyo_code,
                  "linked_at": statement.excluded.linked_at}))


def index_serials(conn: Connection, lgcode: str, serials: list[str]) -> None:
    for serial in serials:
        conn.execute(_upsert(conn)(card_index).values(serial=serial, lgcode=lgcode)
                     .on_conflict_do_nothing(index_elements=["serial"]))


def lgcode_of(conn: Connection, serial: str) -> str | None:
    found = conn.execute(select(card_index.c.lgcode).where(card_index.c.serial == serial)).scalar()
    return str(found) if found else None


def get_link(conn: Connection, lgcode: str, serial: str) -> dict[str, Any] | None:
    row = conn.execute(select(card_links).where(card_links.c.lgcode == lgcode,
                                                card_links.c.serial == serial)).first()
    return dict(row._mapping) if row else None


def links_of(conn: Connection, lgcode: str, resident_ids: list[str]) -> list[dict[str, Any]]:
    if not resident_ids:
        return []
    c = card_links.c
    return [dict(r._mapping) for r in conn.execute(
        select(card_links).where(c.lgcode == lgcode, c.resident_id.in_(resident_ids))
        .order_by(c.linked_at, c.serial))]


def mark_revoked(conn: Connection, lgcode: str, serial: str, at: datetime, reason: str,
                 event_id: str) -> bool:
    """True when this call revoked it (False: already revoked)."""
    c = card_links.c
    result = conn.execute(update(card_links).where(c.lgcode == lgcode, c.serial == serial,
                                                   c.revoked_at.is_(None))
                          .values(revoked_at=at, revocation_reason=reason, revoked_by_event=event_id))
    return bool(result.rowcount)


def cursor(conn: Connection, lgcode: str) -> int:
    found = conn.execute(select(feed_cursors.c.after_seq).where(feed_cursors.c.lgcode == lgcode)).scalar()
    return int(found or 0)


def set_cursor(conn: Connection, lgcode: str, after_seq: int, at: datetime) -> None:
    statement = _upsert(conn)(feed_cursors).values(lgcode=lgcode, after_seq=after_seq, updated_at=at)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["lgcode"], set_={"after_seq": after_seq, "updated_at": at}))


def add_code(conn: Connection, row: dict[str, Any]) -> bool:
    """False when the challenge was already answered (a replayed challenge)."""
    # RETURNING, not rowcount: the driver's rowcount for ON CONFLICT DO NOTHING is not reliable.
    inserted = conn.execute(_upsert(conn)(oidc_codes).values(**row)
                            .on_conflict_do_nothing(index_elements=["lgcode", "challenge_id"])
                            .returning(oidc_codes.c.challenge_id)).first()
    return inserted is not None


def take_code(conn: Connection, lgcode: str, code_hash: str, at: datetime) -> tuple[dict[str, Any] | None, bool]:
    """The code's row and whether this call was its first use (marking it used)."""
    c = oidc_codes.c
    row = conn.execute(select(oidc_codes).where(c.lgcode == lgcode, c.code_hash == code_hash)).first()
    if row is None:
        return None, False
    first = conn.execute(update(oidc_codes).where(c.lgcode == lgcode, c.code_hash == code_hash,
                                                  c.used_at.is_(None)).values(used_at=at)).rowcount
    return dict(row._mapping), bool(first)
