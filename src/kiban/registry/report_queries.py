"""Queries behind the registry's statistics, feeds, reports and extracts (kiban.registry.reports).
Every query names its municipality (`lgcode`), and runs in a tenant unit of work, so on
PostgreSQL row-level security limits it to that municipality as well.

The tables are defined in `store`, a sibling layer this module may not import: they are looked
up by name on the shared MetaData, where `store` registers them when it is imported (and
`reports`, the only user of this module, imports it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Table,
    and_,
    cast,
    distinct,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy import extract as sql_extract

from kiban.platform.db import metadata
from kiban.registry.model import ChangeKind, Status


def _table(name: str) -> Table:
    return metadata.tables[name]


def _day_number(column: Any) -> Any:
    """A date as the integer YYYYMMDD (on SQLite and PostgreSQL alike), for ages in SQL."""
    return (cast(sql_extract("year", column), Integer) * 10000
            + cast(sql_extract("month", column), Integer) * 100
            + cast(sql_extract("day", column), Integer))


def _resident_on(residents: Table, lgcode: str, as_of: date) -> list[Any]:
    """A resident record that was current on `as_of`: a resident by then and not yet
    removed (a 除票 counts until its removal date; void records never)."""
    c = residents.c
    return [c.lgcode == lgcode,
            c.status.in_([Status.ACTIVE.value, Status.REMOVED.value]),
            c.resident_since <= as_of,
            or_(c.removed_on.is_(None), c.removed_on > as_of)]


# --- statistics (JR-0601, JR-0602) ---------------------------------------------------------------


def population_by_town(conn: Connection, lgcode: str, as_of: date
                       ) -> list[tuple[str, str, int, int]]:
    """(town_code, sex, age // 5, count) of residents on `as_of`, by the town of their
    household. Ages are computed in the database, so this never loads a resident."""
    residents, households = _table("residents"), _table("households")
    c = residents.c
    age = (literal(as_of.year * 10000 + as_of.month * 100 + as_of.day, Integer)
           - _day_number(c.birth_date)) // 10000
    band = (age // 5).label("band")
    query = (select(households.c.town_code, c.sex, band, func.count().label("n"))
             .select_from(residents.join(households, and_(
                 households.c.lgcode == c.lgcode, households.c.id == c.household_id)))
             .where(*_resident_on(residents, lgcode, as_of), households.c.lgcode == lgcode)
             .group_by(households.c.town_code, c.sex, band))
    return [(r.town_code, r.sex, int(r.band), int(r.n)) for r in conn.execute(query)]


def households_by_town(conn: Connection, lgcode: str, as_of: date) -> dict[str, int]:
    """Households with at least one resident on `as_of`, by town."""
    residents, households = _table("residents"), _table("households")
    c = residents.c
    query = (select(households.c.town_code, func.count(distinct(c.household_id)).label("n"))
             .select_from(residents.join(households, and_(
                 households.c.lgcode == c.lgcode, households.c.id == c.household_id)))
             .where(*_resident_on(residents, lgcode, as_of), households.c.lgcode == lgcode)
             .group_by(households.c.town_code))
    return {r.town_code: int(r.n) for r in conn.execute(query)}


def change_counts(conn: Connection, lgcode: str, start: date, end: date
                  ) -> tuple[dict[str, int], int]:
    """Changes whose 異動日 falls within [start, end], by kind, leaving out cancelled changes
    and the cancellations themselves; and how many changes of the period were cancelled."""
    events = _table("change_events")
    c = events.c
    period = [c.lgcode == lgcode, c.occurred_on >= start, c.occurred_on <= end,
              c.kind != ChangeKind.CANCELLATION.value]
    counts = {r.kind: int(r.n) for r in conn.execute(
        select(c.kind, func.count().label("n")).where(*period, c.cancelled_by.is_(None))
        .group_by(c.kind))}
    cancelled = conn.execute(select(func.count()).select_from(events).where(
        *period, c.cancelled_by.is_not(None))).scalar_one()
    return counts, int(cancelled)


# --- change events for feeds and reports (JR-0701, 0703, 0704, 0902) -------------------------------


def events_since(conn: Connection, lgcode: str, since: datetime, after_seq: int, limit: int
                 ) -> list[dict[str, Any]]:
    """Change events recorded at or after `since` and after ledger entry `after_seq`, in
    ledger order (the order they committed in: the ledger head serialises them), at most
    `limit`."""
    events = _table("change_events")
    c = events.c
    query = (select(events).where(c.lgcode == lgcode, c.recorded_at >= since,
                                  c.ledger_seq > after_seq)
             .order_by(c.ledger_seq).limit(limit))
    return [dict(r._mapping) for r in conn.execute(query)]


def events_recorded_between(conn: Connection, lgcode: str, start: datetime, end: datetime
                            ) -> list[dict[str, Any]]:
    """Change events recorded in [start, end), in ledger order."""
    events = _table("change_events")
    c = events.c
    query = (select(events).where(c.lgcode == lgcode, c.recorded_at >= start,
                                  c.recorded_at < end).order_by(c.ledger_seq))
    return [dict(r._mapping) for r in conn.execute(query)]


# --- batch lists (JR-0901) --------------------------------------------------------------------------


def residence_expired(conn: Connection, lgcode: str, as_of: date) -> list[dict[str, Any]]:
    """Active foreign residents whose period of stay ended before `as_of` (the expiry is an
    ISO date inside the JSON column, so text order is date order), oldest expiry first."""
    residents, households = _table("residents"), _table("households")
    c = residents.c
    expiry = c.foreign["expiry"].as_string()
    query = (select(residents, households.c.town_code, households.c.banchi,
                    households.c.katagaki)
             .select_from(residents.outerjoin(households, and_(
                 households.c.lgcode == c.lgcode, households.c.id == c.household_id)))
             .where(c.lgcode == lgcode, c.status == Status.ACTIVE.value,
                    expiry.is_not(None), expiry < as_of.isoformat())
             .order_by(expiry, c.id))
    return [dict(r._mapping) for r in conn.execute(query)]


# --- extraction (JR-1004) ------------------------------------------------------------------------------


def extract_rows(conn: Connection, lgcode: str, *, statuses: list[str],
            kana_key: str | None = None, kanji_key: str | None = None,
            birth_date: date | None = None, born_from: date | None = None,
            born_to: date | None = None, sex: str | None = None, town_code: str | None = None,
            foreign: bool | None = None) -> Iterator[dict[str, Any]]:
    """Resident records matching every condition given, with their household's address and
    head's name, ordered by reading; streamed."""
    residents, households = _table("residents"), _table("households")
    head = residents.alias("head")
    c = residents.c
    where: list[Any] = [c.lgcode == lgcode, c.status.in_(statuses)]
    if kana_key:
        where.append(or_(and_(c.full_kana_key >= kana_key,
                              c.full_kana_key < kana_key + "\U0010ffff"),
                         and_(c.given_kana_key >= kana_key,
                              c.given_kana_key < kana_key + "\U0010ffff")))
    if kanji_key:
        where.append(or_(and_(c.full_name_key >= kanji_key,
                              c.full_name_key < kanji_key + "\U0010ffff"),
                         and_(c.given_name_key >= kanji_key,
                              c.given_name_key < kanji_key + "\U0010ffff")))
    if birth_date:
        where.append(c.birth_date == birth_date)
    if born_from:
        where.append(c.birth_date >= born_from)
    if born_to:
        where.append(c.birth_date <= born_to)
    if sex:
        where.append(c.sex == sex)
    if town_code:
        where.append(households.c.town_code == town_code)
    if foreign is not None:
        expiry = c.foreign["expiry"].as_string()
        where.append(expiry.is_not(None) if foreign else expiry.is_(None))
    query = (select(residents, households.c.town_code, households.c.banchi,
                    households.c.katagaki, head.c.family_name.label("head_family_name"),
                    head.c.given_name.label("head_given_name"))
             .select_from(residents
                          .outerjoin(households, and_(households.c.lgcode == c.lgcode,
                                                      households.c.id == c.household_id))
                          .outerjoin(head, and_(head.c.lgcode == c.lgcode,
                                                head.c.id == households.c.head_id)))
             .where(*where).order_by(c.full_kana_key, c.id))
    for row in conn.execute(query).yield_per(2000):
        yield dict(row._mapping)


# --- the 町字 master (JR-1006) ------------------------------------------------------------------------


def town_codes_in_use(conn: Connection, lgcode: str) -> set[str]:
    """町字 codes that some household (除票 included) records as its address."""
    households = _table("households")
    return set(conn.execute(select(households.c.town_code).distinct().where(
        households.c.lgcode == lgcode,
        households.c.status != Status.VOID.value)).scalars())
