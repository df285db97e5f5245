"""Tables and queries of the exchange hub.

Platform tables (no personal data): members and their services, the versioned permission
table, the hub's code register (member code -> the hub's pseudonym, never a name or a
number), the public log and its signed tree heads. Personal-data tables, keyed and (on
PostgreSQL) partitioned and row-secured by lgcode: `linkage_residents` (a municipality's own
mapping of its registry code to its resident, as the 中間サーバー keeps it) and
`linkage_resident_exchanges` (each exchange about one of its residents, for the resident's
view), so a municipality sees only its residents' exchanges.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    select,
)

from kiban.linkage import model
from kiban.platform.db import metadata, tenant_table_kwargs

linkage_members = Table(
    "linkage_members", metadata,
    Column("id", String(200), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("lgcode", String(6), nullable=True),
    Column("endpoint", String(500), nullable=False),  # "" for subsystems served in-process
    Column("certificate", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("joined_at", DateTime(timezone=True), nullable=False),
)

linkage_services = Table(
    "linkage_services", metadata,
    Column("member_id", String(200), primary_key=True),
    Column("item", String(100), primary_key=True),
    Column("description", String(300), nullable=False),
)

linkage_permission_versions = Table(
    "linkage_permission_versions", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("published_by", String(100), nullable=False),
    Column("note", String(500), nullable=False),
    Column("digest", String(64), nullable=False),
)

linkage_permissions = Table(
    "linkage_permissions", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("requester", String(200), nullable=False),
    Column("provider", String(200), nullable=False),
    Column("item", String(100), nullable=False),
    Column("procedure", String(64), nullable=False),
    Column("legal_basis", String(200), nullable=False),
)

linkage_codes = Table(
    "linkage_codes", metadata,
    Column("member_id", String(200), primary_key=True),
    Column("code", String(24), primary_key=True),
    Column("person", String(32), nullable=False),
    Column("home_lgcode", String(6), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Index("ix_linkage_codes_person", "person", "member_id", unique=True),
)

linkage_log = Table(
    "linkage_log", metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_hash", String(64), nullable=False),
    Column("entry", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("client", String(200), nullable=False),
    Column("provider", String(200), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("reason", String(40), nullable=False),
    Index("ix_linkage_log_at", "at"),
    Index("ix_linkage_log_leaf_hash", "leaf_hash"),
)

linkage_tree_heads = Table(
    "linkage_tree_heads", metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("root_hash", String(64), nullable=False),
    Column("signature", Text, nullable=False),
)

linkage_residents = Table(
    "linkage_residents", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("person", String(32), primary_key=True),
    Column("resident_id", String(32), nullable=False),
    Column("code", String(24), nullable=False),
    Column("enrolled_at", DateTime(timezone=True), nullable=False),
    Index("ix_linkage_residents_code", "lgcode", "code", unique=True),
    Index("ix_linkage_residents_resident", "lgcode", "resident_id"),
    **tenant_table_kwargs("linkage_residents"),
)

linkage_resident_exchanges = Table(
    "linkage_resident_exchanges", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("resident_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("client", String(200), nullable=False),
    Column("provider", String(200), nullable=False),
    Column("item", String(100), nullable=False),
    Column("procedure", String(64), nullable=False),
    Column("legal_basis", String(200), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("reason", String(40), nullable=False),
    Index("ix_linkage_resident_exchanges_resident", "lgcode", "resident_id", "at"),
    **tenant_table_kwargs("linkage_resident_exchanges"),
)


def rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


# --- members and services ---------------------------------------------------------------

def members(conn: Connection) -> list[dict[str, Any]]:
    return rows(conn, select(linkage_members).order_by(linkage_members.c.id))


def member(conn: Connection, member_id: str) -> dict[str, Any] | None:
    found = rows(conn, select(linkage_members).where(linkage_members.c.id == member_id))
    return found[0] if found else None


def services(conn: Connection) -> list[dict[str, Any]]:
    return rows(conn, select(linkage_services).order_by(linkage_services.c.member_id, linkage_services.c.item))


# --- the permission table ----------------------------------------------------------------

def current_version(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(linkage_permission_versions.c.version), 0))).scalar_one())


def permission_rules(conn: Connection, version: int) -> list[model.Rule]:
    query = (select(linkage_permissions).where(linkage_permissions.c.version == version)
             .order_by(linkage_permissions.c.seq))
    return [model.Rule(r["requester"], r["provider"], r["item"], r["procedure"], r["legal_basis"])
            for r in rows(conn, query)]


def publish(conn: Connection, version: int, rules: list[model.Rule], at: datetime, by: str, note: str) -> None:
    conn.execute(insert(linkage_permission_versions).values(
        version=version, published_at=at, published_by=by, note=note, digest=model.table_digest(rules)))
    if rules:
        conn.execute(insert(linkage_permissions), [
            {"version": version, "seq": i, "requester": r.requester, "provider": r.provider, "item": r.item,
             "procedure": r.procedure, "legal_basis": r.legal_basis} for i, r in enumerate(rules)])


def versions(conn: Connection) -> list[dict[str, Any]]:
    return rows(conn, select(linkage_permission_versions).order_by(linkage_permission_versions.c.version.desc()))


# --- codes ------------------------------------------------------------------------------

def code_owner(conn: Connection, member_id: str, code: str) -> dict[str, Any] | None:
    found = rows(conn, select(linkage_codes.c.person, linkage_codes.c.home_lgcode).where(
        linkage_codes.c.member_id == member_id, linkage_codes.c.code == code))
    return found[0] if found else None


def has_code(conn: Connection, member_id: str, person: str) -> bool:
    return conn.execute(select(linkage_codes.c.code).where(
        linkage_codes.c.member_id == member_id, linkage_codes.c.person == person)).first() is not None


def resident_of(conn: Connection, lgcode: str, code: str) -> str | None:
    value = conn.execute(select(linkage_residents.c.resident_id).where(
        linkage_residents.c.lgcode == lgcode, linkage_residents.c.code == code)).scalar()
    return str(value) if value is not None else None


def resident_person(conn: Connection, lgcode: str, person: str) -> str | None:
    value = conn.execute(select(linkage_residents.c.resident_id).where(
        linkage_residents.c.lgcode == lgcode, linkage_residents.c.person == person)).scalar()
    return str(value) if value is not None else None


# --- the log ----------------------------------------------------------------------------

def leaf_hashes(conn: Connection) -> list[bytes]:
    return [bytes.fromhex(h) for h in conn.execute(
        select(linkage_log.c.leaf_hash).order_by(linkage_log.c.leaf_index)).scalars()]


def recent_request_ids(conn: Connection, since: datetime) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(
        select(linkage_log.c.client, linkage_log.c.request_id).where(linkage_log.c.at >= since))]


def entries(conn: Connection, start: int, end: int) -> list[dict[str, Any]]:
    return rows(conn, select(linkage_log.c.leaf_index, linkage_log.c.entry, linkage_log.c.leaf_hash).where(
        linkage_log.c.leaf_index >= start, linkage_log.c.leaf_index <= end).order_by(linkage_log.c.leaf_index))


def index_of_hash(conn: Connection, leaf_hash_hex: str) -> int | None:
    value = conn.execute(select(func.min(linkage_log.c.leaf_index)).where(
        linkage_log.c.leaf_hash == leaf_hash_hex)).scalar()
    return int(value) if value is not None else None


def latest_head(conn: Connection) -> dict[str, Any] | None:
    found = rows(conn, select(linkage_tree_heads).order_by(linkage_tree_heads.c.tree_size.desc()).limit(1))
    return found[0] if found else None


def volumes(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    """Exchanges per requesting member, day and outcome since `since`."""
    day = func.substr(func.cast(linkage_log.c.at, String), 1, 10)
    query = (select(linkage_log.c.client, day.label("day"), linkage_log.c.outcome, func.count().label("n"))
             .where(linkage_log.c.at >= since)
             .group_by(linkage_log.c.client, day, linkage_log.c.outcome).order_by(day, linkage_log.c.client))
    return rows(conn, query)


def refused(conn: Connection, limit: int, members: Iterable[str] | None = None) -> list[dict[str, Any]]:
    query = select(linkage_log).where(linkage_log.c.outcome == "refused")
    if members is not None:
        wanted = list(members)
        query = query.where(linkage_log.c.client.in_(wanted) | linkage_log.c.provider.in_(wanted))
    return rows(conn, query.order_by(linkage_log.c.leaf_index.desc()).limit(limit))


def resident_exchanges(conn: Connection, lgcode: str, resident_id: str) -> list[dict[str, Any]]:
    return rows(conn, select(linkage_resident_exchanges).where(
        linkage_resident_exchanges.c.lgcode == lgcode,
        linkage_resident_exchanges.c.resident_id == resident_id).order_by(linkage_resident_exchanges.c.leaf_index))
