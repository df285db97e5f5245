"""Tables of open data: datasets (one per municipality and standard schema), their published
versions (history), and each version's records. Public data, not personal: one national
list, not partitioned, no row policies."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    or_,
    select,
    update,
)

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
