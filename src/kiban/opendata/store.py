"""Tables of open data: datasets (one per municipality and standard schema), their published
versions (history), and each version's records. Public data, not personal: one national
list, not partitioned, no row policies."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from kiban.platform.db import metadata
from kiban.platform.tables import municipalities

opendata_datasets = Table(
    "opendata_datasets", metadata,
    Column("id", String(80), primary_key=True),  # "{lgcode}-{schema}": the CKAN name too
    Column("lgcode", String(6), nullable=False),
    Column("schema_name", String(60), nullable=False),
    Column("title", String(200), nullable=False),
    Column("notes", Text, nullable=False, default=""),
    Column("category", String(40), nullable=False, default=""),
    Column("current_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_opendata_datasets_lgcode", "lgcode", "schema_name", unique=True),
)

opendata_versions = Table(
    "opendata_versions", metadata,
    Column("dataset_id", String(80), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("schema_version", String(20), nullable=False),
    Column("columns", Text, nullable=False),  # JSON list: standard then the municipality's own
    Column("extra_columns", Text, nullable=False),  # JSON list
    Column("row_count", Integer, nullable=False),
    Column("encoding", String(20), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("filename", String(200), nullable=False, default=""),
    Column("published_by", String(32), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["dataset_id"], ["opendata_datasets.id"]),
)

opendata_records = Table(
    "opendata_records", metadata,
    Column("dataset_id", String(80), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("row", Integer, primary_key=True),  # 1-based, the datastore's _id
    Column("data", Text, nullable=False),  # JSON object
    ForeignKeyConstraint(["dataset_id", "version"],
                         ["opendata_versions.dataset_id", "opendata_versions.version"]),
)

# Developer access: data users' API keys (only a SHA-256 of each key is kept) and their
# usage per day. Not municipal data: national, unpartitioned, no row policies.
opendata_api_keys = Table(
    "opendata_api_keys", metadata,
    Column("id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown to its owner to tell keys apart
    Column("name", String(100), nullable=False),
    Column("contact", String(200), nullable=False),
    Column("purpose", Text, nullable=False, default=""),
    Column("per_minute", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_opendata_api_keys_hash", "key_hash", unique=True),
)

opendata_api_usage = Table(
    "opendata_api_usage", metadata,
    Column("key_id", String(32), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("requests", Integer, nullable=False),
    ForeignKeyConstraint(["key_id"], ["opendata_api_keys.id"]),
)

_DATASET_COLUMNS = [*opendata_datasets.c, municipalities.c.name.label("org_title"),
                    municipalities.c.prefecture]


def dataset(conn: Connection, dataset_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(*_DATASET_COLUMNS).join(
        municipalities, municipalities.c.lgcode == opendata_datasets.c.lgcode).where(
        opendata_datasets.c.id == dataset_id)).mappings().first()
    return dict(row) if row else None


def search(conn: Connection, *, text: str = "", lgcodes: list[str] | None = None,
           names: list[str] | None = None, schemas: list[str] | None = None,
           categories: list[str] | None = None, order: list[tuple[str, bool]] | None = None,
           limit: int = 10, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Datasets matching every given condition; (count, one page)."""
    query = select(*_DATASET_COLUMNS).join(
        municipalities, municipalities.c.lgcode == opendata_datasets.c.lgcode)
    for word in text.split():
        like = f"%{word}%"
        query = query.where(or_(opendata_datasets.c.title.like(like),
                                opendata_datasets.c.notes.like(like),
                                opendata_datasets.c.id.like(like),
                                municipalities.c.name.like(like)))
    if lgcodes is not None:
        query = query.where(opendata_datasets.c.lgcode.in_(lgcodes))
    if names is not None:
        query = query.where(opendata_datasets.c.id.in_(names))
    if schemas is not None:
        query = query.where(opendata_datasets.c.schema_name.in_(schemas))
    if categories is not None:
        query = query.where(opendata_datasets.c.category.in_(categories))
    count = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    columns = {"name": opendata_datasets.c.id, "title": opendata_datasets.c.title,
               "metadata_modified": opendata_datasets.c.updated_at,
               "metadata_created": opendata_datasets.c.created_at}
    for key, descending in order or [("metadata_modified", True)]:
        query = query.order_by(columns[key].desc() if descending else columns[key].asc())
    query = query.order_by(opendata_datasets.c.id).limit(limit).offset(offset)
    return count, [dict(r) for r in conn.execute(query).mappings()]


def organizations(conn: Connection) -> list[dict[str, Any]]:
    """Municipalities that publish at least one dataset, with their dataset counts."""
    query = select(municipalities.c.lgcode, municipalities.c.name, municipalities.c.prefecture,
                   municipalities.c.created_at, func.count(opendata_datasets.c.id).label("count")
                   ).join(opendata_datasets, opendata_datasets.c.lgcode == municipalities.c.lgcode
                          ).group_by(municipalities.c.lgcode, municipalities.c.name,
                                     municipalities.c.prefecture, municipalities.c.created_at
                                     ).order_by(municipalities.c.lgcode)
    return [dict(r) for r in conn.execute(query).mappings()]


def municipality(conn: Connection, lgcode: str) -> dict[str, Any] | None:
    row = conn.execute(select(municipalities.c.lgcode, municipalities.c.name,
                              municipalities.c.prefecture, municipalities.c.created_at).where(
        municipalities.c.lgcode == lgcode)).mappings().first()
    return dict(row) if row else None


def all_names(conn: Connection, limit: int, offset: int) -> list[str]:
    return list(conn.execute(select(opendata_datasets.c.id).order_by(opendata_datasets.c.id)
                             .limit(limit).offset(offset)).scalars())


def versions(conn: Connection, dataset_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(opendata_versions).where(
        opendata_versions.c.dataset_id == dataset_id).order_by(opendata_versions.c.version.desc()))
    out = []
    for r in rows.mappings():
        d = dict(r)
        d["columns"] = json.loads(d["columns"])
        d["extra_columns"] = json.loads(d["extra_columns"])
        out.append(d)
    return out


def versions_of(conn: Connection, dataset_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The histories of many datasets in one query (newest first each)."""
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in dataset_ids}
    if not dataset_ids:
        return out
    rows = conn.execute(select(opendata_versions).where(
        opendata_versions.c.dataset_id.in_(dataset_ids)).order_by(
        opendata_versions.c.dataset_id, opendata_versions.c.version.desc()))
    for r in rows.mappings():
        d = dict(r)
        d["columns"] = json.loads(d["columns"])
        d["extra_columns"] = json.loads(d["extra_columns"])
        out[d["dataset_id"]].append(d)
    return out


def records(conn: Connection, dataset_id: str, version: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(opendata_records.c.row, opendata_records.c.data).where(
        opendata_records.c.dataset_id == dataset_id, opendata_records.c.version == version
    ).order_by(opendata_records.c.row))
    return [{"_id": r.row, **json.loads(r.data)} for r in rows]


def save_version(conn: Connection, *, dataset_id: str, lgcode: str, schema_name: str, title: str,
                 notes: str, category: str, version: dict[str, Any], rows: list[dict[str, Any]],
                 at: datetime) -> int:
    """Inserts the next version of a dataset (creating the dataset on its first); returns the
    new version number. The dataset row's update is the lock that orders two publications."""
    current = conn.execute(select(opendata_datasets.c.current_version).where(
        opendata_datasets.c.id == dataset_id).with_for_update()).scalar()
    if current is None:
        number = 1
        conn.execute(insert(opendata_datasets).values(
            id=dataset_id, lgcode=lgcode, schema_name=schema_name, title=title, notes=notes,
            category=category, current_version=1, created_at=at, updated_at=at))
    else:
        number = current + 1
        conn.execute(update(opendata_datasets).where(opendata_datasets.c.id == dataset_id).values(
            current_version=number, title=title, notes=notes, updated_at=at))
    conn.execute(insert(opendata_versions).values(
        dataset_id=dataset_id, version=number, schema_version=version["schema_version"],
        columns=json.dumps(version["columns"], ensure_ascii=False),
        extra_columns=json.dumps(version["extra_columns"], ensure_ascii=False),
        row_count=len(rows), encoding=version["encoding"], sha256=version["sha256"],
        filename=version.get("filename", ""), published_by=version["published_by"],
        published_at=at))
    if rows:
        conn.execute(insert(opendata_records), [
            {"dataset_id": dataset_id, "version": number, "row": i,
             "data": json.dumps(r, ensure_ascii=False)} for i, r in enumerate(rows, start=1)])
    return number


def _value(conn: Connection, key: str) -> ColumnElement[Any]:
    """One field of a record's JSON, as SQL: SQLite's `->>` gives it typed (text, integer or
    real); PostgreSQL's gives text. The key is a bound parameter, never spliced into SQL."""
    if conn.dialect.name == "postgresql":
        return cast(opendata_records.c.data, JSONB).op("->>", return_type=Text)(literal(key))
    return opendata_records.c.data.op("->>")(literal(key))


def _as_text(conn: Connection, key: str) -> ColumnElement[Any]:
    return cast(_value(conn, key), Text)


def _contains(expression: ColumnElement[Any], word: str) -> ColumnElement[Any]:
    escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(expression).like(f"%{escaped}%", escape="\\")


def search_records(conn: Connection, dataset_id: str, version: int, *, columns: list[str],
                   numeric: set[str], filters: dict[str, list[str]], words: list[str],
                   field_words: dict[str, str], order: list[tuple[str, bool]], limit: int,
                   offset: int) -> tuple[int, list[dict[str, Any]]]:
    """The datastore query, filtered, sorted and paged in SQL: (total, one page).

    - `filters`: the field's value, as text, is one of the given strings (`_id`: the row);
    - `words`: every word appears, case-folded, in some field; `field_words`: per field;
    - `order`: (field, descending); nulls last either way, then the row number. Numeric fields
      sort as numbers, the rest by code point (PostgreSQL: COLLATE "C", as SQLite's BINARY)."""
    conditions: list[ColumnElement[bool]] = [opendata_records.c.dataset_id == dataset_id,
                                             opendata_records.c.version == version]
    for key, values in filters.items():
        if key == "_id":
            rows = [int(v) for v in values if v.lstrip("-").isdigit()]
            conditions.append(opendata_records.c.row.in_(rows))
        else:
            conditions.append(_as_text(conn, key).in_(values))
    for word in words:
        conditions.append(or_(*[_contains(_as_text(conn, c), word) for c in columns]))
    for key, word in field_words.items():
        conditions.append(_contains(_as_text(conn, key), word))
    where = and_(*conditions)
    total = conn.execute(select(func.count()).select_from(opendata_records).where(where)
                         ).scalar_one()
    query = select(opendata_records.c.row, opendata_records.c.data).where(where)
    postgres = conn.dialect.name == "postgresql"
    for key, descending in order:
        if key == "_id":
            query = query.order_by(opendata_records.c.row.desc() if descending
                                   else opendata_records.c.row.asc())
            continue
        value: ColumnElement[Any] = _value(conn, key)
        if postgres:
            value = cast(value, Numeric) if key in numeric else value.collate("C")
        query = query.order_by(value.is_(None), value.desc() if descending else value.asc())
    query = query.order_by(opendata_records.c.row).limit(limit).offset(offset)
    return total, [{"_id": r.row, **json.loads(r.data)} for r in conn.execute(query)]


def insert_key(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(opendata_api_keys).values(**row))


def key_by_hash(conn: Connection, key_hash: str) -> dict[str, Any] | None:
    row = conn.execute(select(opendata_api_keys).where(
        opendata_api_keys.c.key_hash == key_hash)).mappings().first()
    return dict(row) if row else None


def revoke_key(conn: Connection, key_id: str, at: datetime) -> bool:
    return conn.execute(update(opendata_api_keys).where(
        opendata_api_keys.c.id == key_id, opendata_api_keys.c.revoked_at.is_(None)).values(
        revoked_at=at)).rowcount == 1


def count_use(conn: Connection, key_id: str, day: date, requests: int) -> None:
    """Adds to a key's count for the day: an update, else the day's first row (a racing
    insert loses to the primary key and retries as an update)."""
    done = conn.execute(update(opendata_api_usage).where(
        opendata_api_usage.c.key_id == key_id, opendata_api_usage.c.day == day).values(
        requests=opendata_api_usage.c.requests + requests)).rowcount
    if not done:
        conn.execute(insert(opendata_api_usage).values(key_id=key_id, day=day, requests=requests))


def usage(conn: Connection, key_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(opendata_api_usage.c.day,
                                                 opendata_api_usage.c.requests).where(
        opendata_api_usage.c.key_id == key_id).order_by(opendata_api_usage.c.day.desc())
        ).mappings()]


def find_records(conn: Connection, *, words: list[str], lgcodes: list[str] | None,
                 schemas: list[str] | None, date_from: str | None, date_to: str | None,
                 box: tuple[float, float, float, float] | None, limit: int
                 ) -> list[dict[str, Any]]:
    """Records of every dataset's current version across municipalities: every word in the
    record (its JSON text, lower-cased), events overlapping [date_from, date_to] (開始日 to
    終了日), positions inside `box` (south, west, north, east). At most `limit`, ordered by
    dataset and row; each with its dataset's id, title, schema and municipality."""
    d, r = opendata_datasets.c, opendata_records.c
    query = (select(d.id, d.title, d.schema_name, d.lgcode, municipalities.c.name.label("org"),
                    r.row, r.data)
             .select_from(opendata_records.join(opendata_datasets, and_(
                 d.id == r.dataset_id, d.current_version == r.version)).join(
                 municipalities, municipalities.c.lgcode == d.lgcode)))
    for word in words:
        query = query.where(_contains(r.data, word))
    if lgcodes is not None:
        query = query.where(d.lgcode.in_(lgcodes))
    if schemas is not None:
        query = query.where(d.schema_name.in_(schemas))
    if date_from:
        query = query.where(_as_text(conn, "終了日") >= date_from)
    if date_to:
        query = query.where(_as_text(conn, "開始日") <= date_to)
    if box is not None:
        south, west, north, east = box
        lat, lon = cast(_value(conn, "緯度"), Numeric), cast(_value(conn, "経度"), Numeric)
        query = query.where(lat.between(south, north), lon.between(west, east))
    query = query.order_by(d.id, r.row).limit(limit)
    return [{"dataset_id": row.id, "title": row.title, "schema_name": row.schema_name,
             "lgcode": row.lgcode, "org": row.org, "_id": row.row, **json.loads(row.data)}
            for row in conn.execute(query)]
