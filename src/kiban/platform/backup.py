"""Whole-database backup and restore as JSON Lines, portable between SQLite and PostgreSQL.

Runs as the table owner, so it sees every municipality. The first line names the format and
the schema revision; each further line is one row: {"t": table, "r": {column: value}}.
"""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Date, DateTime, Integer, delete, insert, select, text

import kiban.platform.tables  # noqa: F401 - registers the platform tables
from kiban.platform.db import Database, bypasses_row_security, metadata

FORMAT = "kiban-backup/1"


def _tables() -> list[Any]:
    """Every table registered so far: the caller (CLI, app) has imported the domains' stores."""
    return list(metadata.sorted_tables)


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return path.open(mode, encoding="utf-8")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class BackupRefused(RuntimeError):
    pass


def dump(db: Database, path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    engine = db.admin_engine
    if engine.dialect.name == "postgresql":
        # One snapshot for every table: the backup is consistent even while the app writes.
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with engine.connect() as conn, _open(path, "w") as out:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # one read snapshot (WAL) for every table
        if not bypasses_row_security(conn):
            raise BackupRefused("the admin connection cannot read every municipality's rows: "
                                "set KIBAN_DATABASE_ADMIN_URL to the tables' owner")
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        out.write(json.dumps({"format": FORMAT, "revision": revision}) + "\n")
        for table in _tables():
            n = 0
            for row in conn.execute(select(table)).yield_per(5000):
                record = {k: _encode(v) for k, v in row._mapping.items()}
                out.write(json.dumps({"t": table.name, "r": record}, ensure_ascii=False) + "\n")
                n += 1
            counts[table.name] = n
    return counts


def load(db: Database, path: Path) -> dict[str, int]:
    tables = {t.name: t for t in _tables()}
    decoders: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        decoders[name] = {}
        for column in table.columns:
            if isinstance(column.type, DateTime):
                decoders[name][column.name] = datetime.fromisoformat
            elif isinstance(column.type, Date):
                decoders[name][column.name] = date.fromisoformat
    counts: dict[str, int] = {name: 0 for name in tables}
    with db.admin_engine.begin() as conn, _open(path, "r") as source:
        if not bypasses_row_security(conn):
            raise BackupRefused("the admin connection cannot write every municipality's rows: "
                                "set KIBAN_DATABASE_ADMIN_URL to the tables' owner")
        header = json.loads(source.readline() or "{}")
        if header.get("format") != FORMAT:
            raise BackupRefused(f"not a {FORMAT} file")
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if header.get("revision") != revision:
            raise BackupRefused(f"the backup is of schema {header.get('revision')}, the database "
                                f"is at {revision}: migrate first")
        for table in reversed(list(tables.values())):
            conn.execute(delete(table))
        batch: list[dict[str, Any]] = []
        current: str | None = None

        def flush() -> None:
            if batch and current:
                conn.execute(insert(tables[current]), batch)
                counts[current] += len(batch)
                batch.clear()

        for line in source:
            item = json.loads(line)
            if item["t"] != current or len(batch) >= 5000:
                flush()
                current = item["t"]
            row = item["r"]
            for column, decode in decoders[item["t"]].items():
                if row.get(column) is not None:
                    row[column] = decode(row[column])
            batch.append(row)
        flush()
        if conn.dialect.name == "postgresql":
            _reset_sequences(conn, list(tables.values()))
    return {k: v for k, v in counts.items() if v}


def _reset_sequences(conn: Connection, tables: list[Any]) -> None:
    """Restored rows keep their ids; the sequences must continue after them."""
    for table in tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True or (
                    column.autoincrement == "auto" and isinstance(column.type, Integer)
                    and len(table.primary_key.columns) == 1):
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"COALESCE((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"))
