"""Storage of the annual assessment: income records, import reports and their bad lines,
assessments with every version, option sets, runs and the job queue.

Personal-data tables (tax_income_records, tax_import_errors, tax_assessments,
tax_assessment_versions) carry `lgcode`, are hash-partitioned by it on PostgreSQL and guarded
by row-level security (migration 0008), like the registry's. Runs and jobs hold only counts
and id ranges: a worker must see every municipality's queued jobs to share them out, so
tax_jobs has no row policy, and tax_runs/tax_option_sets are scoped by `lgcode` in every query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kiban.platform.db import metadata, tenant_table_kwargs

income_records = Table(
    "tax_income_records", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),  # batch_model.record_key
    Column("fiscal_year", Integer, nullable=False),
    Column("record_type", String(10), nullable=False),
    Column("payer_number", String(20), nullable=False),
    Column("record_id", String(40), nullable=False),
    Column("payer_name", String(200), nullable=False),
    Column("resident_id", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("import_id", String(32), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_tax_income_records_resident", "lgcode", "fiscal_year", "resident_id"),
    **tenant_table_kwargs("tax_income_records"),
)

imports = Table(
    "tax_imports", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("filename", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("lines", Integer, nullable=False),
    Column("added", Integer, nullable=False),
    Column("corrected", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(32), nullable=False),
    PrimaryKeyConstraint("lgcode", "id"),
    **tenant_table_kwargs("tax_imports"),
)

import_errors = Table(
    "tax_import_errors", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("import_id", String(32), nullable=False),
    Column("line", Integer, nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("errors", JSON, nullable=False),  # [{field, ja, en}]
    Column("raw", JSON, nullable=False),  # the line's cells, kept to be corrected
    Column("resolved", Boolean, nullable=False),
    PrimaryKeyConstraint("lgcode", "import_id", "line"),
    **tenant_table_kwargs("tax_import_errors"),
)

assessments = Table(
    "tax_assessments", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("resident_id", String(32), nullable=True),  # None: made through the API alone
    Column("taxpayer_number", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("family_name", String(100), nullable=False),
    Column("given_name", String(100), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_tax_assessments_year", "lgcode", "fiscal_year", "resident_id"),
    **tenant_table_kwargs("tax_assessments"),
)

# The figures of each version (so histories, differences and lists need no recomputation)
# and everything the result depends on: the request, the collection, the option set. Forms
# recompute the details from these with the engine, and check that the total agrees.
VERSION_FIGURES = ("total", "income_levy_municipal", "income_levy_prefectural",
                   "per_capita_municipal", "per_capita_prefectural", "forest_environment_tax",
                   "taxable_income", "total_income")
versions = Table(
    "tax_assessment_versions", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("assessment_id", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("input", JSON, nullable=False),
    Column("collection", JSON, nullable=False),
    Column("options_key", String(32), nullable=False),
    Column("input_hash", String(64), nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in VERSION_FIGURES),
    Column("non_taxable", String(12), nullable=False),
    Column("reason", String(400), nullable=True),
    Column("previous_total", BigInteger, nullable=True),
    Column("run_id", String(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(32), nullable=False),
    PrimaryKeyConstraint("lgcode", "assessment_id", "version"),
    **tenant_table_kwargs("tax_assessment_versions"),
)

option_sets = Table(
    "tax_option_sets", metadata,  # the tax settings an assessment was made with
    Column("lgcode", String(6), nullable=False),
    Column("key", String(32), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("options", JSON, nullable=False),
    PrimaryKeyConstraint("lgcode", "key"),
)

runs = Table(
    "tax_runs", metadata,
    Column("lgcode", String(6), nullable=False),
    Column("id", String(32), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("taxpayers", Integer, nullable=False),
    Column("jobs", Integer, nullable=False),
    Column("options_key", String(32), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(32), nullable=False),
    PrimaryKeyConstraint("lgcode", "id"),
    Index("ix_tax_runs_year", "lgcode", "fiscal_year", "started_at"),
)

jobs = Table(
    "tax_jobs", metadata,  # the queue: claimed with SELECT … FOR UPDATE SKIP LOCKED
    Column("run_id", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("lgcode", String(6), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("first_id", String(32), nullable=False),
    Column("last_id", String(32), nullable=False),
    Column("status", String(10), nullable=False),  # queued | done
    Column("taxpayers", Integer, nullable=False),
    Column("created", Integer, nullable=False),
    Column("corrected", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("histogram", JSON, nullable=False),
    Column("problems", JSON, nullable=False),  # [{resident_id, field, en}] (ids only)
    Column("worker", String(64), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("run_id", "seq"),
    Index("ix_tax_jobs_status", "status", "lgcode"),
)


def upsert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


# --- income records ---------------------------------------------------------------------------

def existing_records(conn: Connection, lgcode: str, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """id -> (content_hash, version) of the records among `ids` already stored."""
    found: dict[str, tuple[str, int]] = {}
    c = income_records.c
    for start in range(0, len(ids), 5000):
        chunk = list(ids[start:start + 5000])
        for row in conn.execute(select(c.id, c.content_hash, c.version)
                                .where(c.lgcode == lgcode, c.id.in_(chunk))):
            found[row.id] = (row.content_hash, row.version)
    return found


def insert_records(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(income_records), rows)


def replace_records(conn: Connection, lgcode: str, rows: list[dict[str, Any]]) -> None:
    c = income_records.c
    for row in rows:
        conn.execute(update(income_records).where(c.lgcode == lgcode, c.id == row["id"])
                     .values({k: v for k, v in row.items() if k not in ("lgcode", "id")}))


def records_between(conn: Connection, lgcode: str, fiscal_year: int, first_id: str | None,
                    last_id: str | None) -> list[Any]:
    c = income_records.c
    query = (select(c.resident_id, c.record_type, c.payer_number, c.payer_name, c.record_id,
                    c.data, c.content_hash)
             .where(c.lgcode == lgcode, c.fiscal_year == fiscal_year))
    if first_id is not None:
        query = query.where(c.resident_id >= first_id)
    if last_id is not None:
        query = query.where(c.resident_id <= last_id)
    return list(conn.execute(query))


def insert_import(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(imports).values(**row))


def insert_import_errors(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(import_errors), rows)


def list_imports(conn: Connection, lgcode: str, fiscal_year: int) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(
        select(imports).where(imports.c.lgcode == lgcode, imports.c.fiscal_year == fiscal_year)
        .order_by(imports.c.imported_at.desc()).limit(50))]


def open_errors(conn: Connection, lgcode: str, fiscal_year: int, limit: int = 200
                ) -> list[dict[str, Any]]:
    c = import_errors.c
    return [dict(r._mapping) for r in conn.execute(
        select(import_errors).where(c.lgcode == lgcode, c.fiscal_year == fiscal_year,
                                    c.resolved.is_(False))
        .order_by(c.import_id, c.line).limit(limit))]


def resolve_errors(conn: Connection, lgcode: str, fiscal_year: int,
                   keys: Iterable[tuple[str, str, str]]) -> None:
    """Marks open bad lines resolved whose record key (record_type, payer_number, record_id)
    has now been imported correctly."""
    wanted = set(keys)
    if not wanted:
        return
    c = import_errors.c
    for row in conn.execute(select(c.import_id, c.line, c.raw).where(
            c.lgcode == lgcode, c.fiscal_year == fiscal_year, c.resolved.is_(False))):
        raw = row.raw or {}
        key = (str(raw.get("record_type", "")).strip(), str(raw.get("payer_number", "")).strip(),
               str(raw.get("record_id", "")).strip())
        if key in wanted:
            conn.execute(update(import_errors).where(
                c.lgcode == lgcode, c.import_id == row.import_id, c.line == row.line)
                .values(resolved=True))


# --- assessments -----------------------------------------------------------------------------

def current_between(conn: Connection, lgcode: str, fiscal_year: int, first_id: str | None,
                    last_id: str | None) -> dict[str, tuple[str, int, str, int]]:
    """resident_id -> (assessment id, version, input_hash, total) of a job's range."""
    c = assessments.c
    query = select(c.resident_id, c.id, c.version, c.input_hash, c.total).where(
        c.lgcode == lgcode, c.fiscal_year == fiscal_year, c.resident_id.is_not(None))
    if first_id is not None:
        query = query.where(c.resident_id >= first_id)
    if last_id is not None:
        query = query.where(c.resident_id <= last_id)
    return {r.resident_id: (r.id, r.version, r.input_hash, r.total) for r in conn.execute(query)}


def insert_assessments(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(assessments), rows)


def insert_versions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(versions), rows)


def advance(conn: Connection, lgcode: str, rows: list[dict[str, Any]]) -> None:
    """Points assessments at their new version (id, version, total, input_hash, updated_at)."""
    c = assessments.c
    for row in rows:
        conn.execute(update(assessments).where(c.lgcode == lgcode, c.id == row["id"]).values(
            version=row["version"], total=row["total"], input_hash=row["input_hash"],
            updated_at=row["updated_at"]))


def get_assessment(conn: Connection, lgcode: str, assessment_id: str,
                   lock: bool = False) -> dict[str, Any] | None:
    query = select(assessments).where(assessments.c.lgcode == lgcode,
                                      assessments.c.id == assessment_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def version_rows(conn: Connection, lgcode: str, assessment_id: str) -> list[dict[str, Any]]:
    c = versions.c
    return [dict(r._mapping) for r in conn.execute(
        select(versions).where(c.lgcode == lgcode, c.assessment_id == assessment_id)
        .order_by(c.version))]


def search_assessments(conn: Connection, lgcode: str, fiscal_year: int, name: str | None,
                       limit: int = 50) -> list[dict[str, Any]]:
    c = assessments.c
    query = select(assessments).where(c.lgcode == lgcode, c.fiscal_year == fiscal_year)
    if name:
        query = query.where((c.family_name + c.given_name).like(f"{name}%"))
    return [dict(r._mapping) for r in conn.execute(query.order_by(c.family_name, c.id)
                                                   .limit(limit))]


def save_options(conn: Connection, lgcode: str, key: str, fiscal_year: int,
                 options: dict[str, Any]) -> None:
    conn.execute(upsert(conn)(option_sets).values(
        lgcode=lgcode, key=key, fiscal_year=fiscal_year, options=options).on_conflict_do_nothing())


def get_options(conn: Connection, lgcode: str, key: str) -> dict[str, Any] | None:
    row = conn.execute(select(option_sets.c.options).where(
        option_sets.c.lgcode == lgcode, option_sets.c.key == key)).first()
    return dict(row.options) if row else None


# --- runs and the queue --------------------------------------------------------------------

def unfinished_run(conn: Connection, lgcode: str, fiscal_year: int) -> dict[str, Any] | None:
    """The latest run of the year if some of its jobs are still queued."""
    row = conn.execute(select(runs).where(runs.c.lgcode == lgcode,
                                          runs.c.fiscal_year == fiscal_year)
                       .order_by(runs.c.started_at.desc()).limit(1)).first()
    if row is None:
        return None
    queued = conn.execute(select(func.count()).select_from(jobs).where(
        jobs.c.run_id == row.id, jobs.c.status == "queued")).scalar_one()
    return dict(row._mapping) if queued else None


def insert_run(conn: Connection, run: dict[str, Any], job_rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(runs).values(**run))
    if job_rows:
        conn.execute(insert(jobs), job_rows)


def claim(conn: Connection, lgcode: str | None = None, run_id: str | None = None
          ) -> dict[str, Any] | None:
    """The next queued job, locked for this transaction; jobs other workers hold are skipped
    (PostgreSQL; SQLite has one writer, so there is nothing to skip)."""
    query = select(jobs).where(jobs.c.status == "queued")
    if lgcode is not None:
        query = query.where(jobs.c.lgcode == lgcode)
    if run_id is not None:
        query = query.where(jobs.c.run_id == run_id)
    row = conn.execute(query.order_by(jobs.c.run_id, jobs.c.seq).limit(1)
                       .with_for_update(skip_locked=True)).first()
    return dict(row._mapping) if row else None


def peek(conn: Connection, run_id: str | None = None) -> str | None:
    """The municipality of some queued job (unlocked: a hint where to claim next)."""
    query = select(jobs.c.lgcode).where(jobs.c.status == "queued")
    if run_id is not None:
        query = query.where(jobs.c.run_id == run_id)
    row = conn.execute(query.limit(1)).first()
    return str(row.lgcode) if row else None


def finish_job(conn: Connection, run_id: str, seq: int, values: dict[str, Any]) -> None:
    conn.execute(update(jobs).where(jobs.c.run_id == run_id, jobs.c.seq == seq)
                 .values(status="done", **values))


def get_run(conn: Connection, lgcode: str, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(runs).where(runs.c.lgcode == lgcode, runs.c.id == run_id)).first()
    return dict(row._mapping) if row else None


def list_runs(conn: Connection, lgcode: str, limit: int = 20) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(
        select(runs).where(runs.c.lgcode == lgcode).order_by(runs.c.started_at.desc())
        .limit(limit))]


def run_jobs(conn: Connection, lgcode: str, run_id: str) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(
        select(jobs).where(jobs.c.lgcode == lgcode, jobs.c.run_id == run_id)
        .order_by(jobs.c.seq))]


def job_progress(conn: Connection, run_id: str) -> tuple[int, int]:
    """(jobs done, jobs) of a run."""
    done = conn.execute(select(func.count()).select_from(jobs).where(
        jobs.c.run_id == run_id, jobs.c.status == "done")).scalar_one()
    total = conn.execute(select(func.count()).select_from(jobs).where(
        jobs.c.run_id == run_id)).scalar_one()
    return int(done), int(total)



def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]],
                page: int = 1000) -> None:
    """Many rows with the driver's executemany (SQLite) or multi-row VALUES statements
    (PostgreSQL), values converted by the columns' own bind processors: SQLAlchemy's per-row
    work costs more than the rows themselves at a million rows. Equal values are converted
    once (a run's timestamp, its option set)."""
    if not rows:
        return
    dialect = conn.dialect
    names = list(rows[0])
    processors = [table.c[name].type.bind_processor(dialect) for name in names]
    cache: list[dict[Any, Any]] = [{} for _ in names]

    def convert(i: int, value: Any) -> Any:
        process = processors[i]
        if isinstance(value, (dict, list)):
            # psycopg's dialect leaves JSON to the driver's adapters, which a raw
            # executemany does not apply: the text is sent, PostgreSQL casts it.
            return process(value) if process else json.dumps(value, ensure_ascii=False)
        if process is None or value is None:
            return value
        seen = cache[i]
        if value not in seen:
            seen[value] = process(value)
        return seen[value]

    # Only the columns with a converter or holding JSON are touched value by value.
    touched = [i for i, name in enumerate(names)
               if processors[i] is not None or isinstance(rows[0][name], (dict, list))
               or isinstance(table.c[name].type, JSON)]
    if touched:
        data = []
        for row in rows:
            values = list(row.values())
            for i in touched:
                values[i] = convert(i, values[i])
            data.append(tuple(values))
    else:
        data = [tuple(row.values()) for row in rows]
    columns = ", ".join(names)
    if dialect.name == "postgresql":
        one = "(" + ", ".join(["%s"] * len(names)) + ")"
        for start in range(0, len(data), page):
            chunk = data[start:start + page]
            flat = [value for row in chunk for value in row]
            conn.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) VALUES "
                                 + ", ".join([one] * len(chunk)), tuple(flat))
        return
    marks = ", ".join(["?"] * len(names))
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", data)


def statistics_rows(conn: Connection, lgcode: str, fiscal_year: int
                    ) -> list[tuple[str | None, int, int, int, int]]:
    """(resident_id, 所得割 municipal, prefectural, total_income, total) of the current
    version of every assessment of the year: for aggregate statistics only (issue 9)."""
    a, v = assessments.c, versions.c
    query = select(a.resident_id, v.income_levy_municipal, v.income_levy_prefectural,
                   v.total_income, v.total).join(
        versions, (v.lgcode == a.lgcode) & (v.assessment_id == a.id) & (v.version == a.version)
    ).where(a.lgcode == lgcode, a.fiscal_year == fiscal_year)
    return [(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in conn.execute(query)]


class Same:
    """A column value shared by every row of a `bulk_insert_columns` call (converted once)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def bulk_insert_columns(conn: Connection, table: Table, columns: dict[str, Any],
                        page: int = 20_000) -> None:
    """The rows of `bulk_insert` given column by column: each value a list (one per row) or
    `Same(value)`. Every column is converted as a whole (JSON text, the dialect's bind
    processors, a shared value once); no dict per row. SQLite: the rows zipped into tuples for
    executemany. PostgreSQL: `INSERT … SELECT * FROM unnest(%s::type[], …)`, one array per
    column (sent in binary) and one statement per `page` rows, since psycopg parses a
    multi-row VALUES
    statement's placeholders on the client, which costs more than the rows (COPY is refused
    under row-level security). The values written are those `bulk_insert` writes."""
    lists = [v for v in columns.values() if not isinstance(v, Same)]
    n = len(lists[0]) if lists else 0
    if n == 0:
        return
    dialect = conn.dialect
    names = list(columns)
    converted: list[list[Any]] = []
    for name, values in columns.items():
        column_type = table.c[name].type
        process = column_type.bind_processor(dialect)
        is_json = isinstance(column_type, JSON)
        if isinstance(values, Same):
            value = values.value
            if isinstance(value, (dict, list)):
                value = process(value) if process else json.dumps(value, ensure_ascii=False)
            elif process is not None and value is not None:
                value = process(value)
            converted.append([value] * n)
        elif is_json and process is not None:
            converted.append([None if v is None else process(v) for v in values])
        elif is_json:  # psycopg: JSON as text, cast by PostgreSQL (as in bulk_insert)
            converted.append([json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list))
                              else v for v in values])
        elif process is not None:
            converted.append([None if v is None else process(v) for v in values])
        else:
            converted.append(list(values))
    column_list = ", ".join(names)
    if dialect.name == "postgresql":
        arrays = ", ".join(f"%b::{table.c[name].type.compile(dialect=dialect)}[]"
                           for name in names)
        statement = f"INSERT INTO {table.name} ({column_list}) SELECT * FROM unnest({arrays})"
        # Binary parameters (%b): the driver sends arrays without quoting and escaping each
        # element as text does (most of the cost for the JSON of the stored requests).
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            for start in range(0, n, page):
                cursor.execute(statement, tuple(c[start:start + page] for c in converted))
        finally:
            cursor.close()
        return
    marks = ", ".join(["?"] * len(names))
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({column_list}) VALUES ({marks})",
                         list(zip(*converted, strict=True)))
