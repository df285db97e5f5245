"""The `tax_settings` table: each municipality's options per fiscal year (級地, 指定都市,
ordinance rates). Public, non-personal facts (ordinances are promulgated): a plain table
keyed by lgcode + fiscal_year, reached through the platform connection; the service checks
that staff act only for their own municipality."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Integer,
    String,
    Table,
    delete,
    insert,
    select,
)

from kiban.platform.db import metadata

tax_settings = Table(
    "tax_settings", metadata,
    Column("lgcode", String(6), primary_key=True),
    Column("fiscal_year", Integer, primary_key=True),
    Column("grade", String(1), nullable=False),
    Column("designated_city", Boolean, nullable=False),
    Column("municipal_income_rate", String(10), nullable=False),  # percent, decimal string
    Column("prefectural_income_rate", String(10), nullable=False),
    Column("municipal_per_capita", Integer, nullable=False),
    Column("prefectural_per_capita", Integer, nullable=False),
    Column("ordinance_name", String(200), nullable=True),
    Column("ordinance_promulgated_on", Date, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False),
)


def get(conn: Connection, lgcode: str, fiscal_year: int) -> dict[str, Any] | None:
    row = conn.execute(select(tax_settings).where(
        (tax_settings.c.lgcode == lgcode) & (tax_settings.c.fiscal_year == fiscal_year))).first()
    return None if row is None else dict(row._mapping)


def put(conn: Connection, row: dict[str, Any], at: datetime, by: str) -> None:
    conn.execute(delete(tax_settings).where(
        (tax_settings.c.lgcode == row["lgcode"])
        & (tax_settings.c.fiscal_year == row["fiscal_year"])))
    conn.execute(insert(tax_settings).values(**row, updated_at=at, updated_by=by))
