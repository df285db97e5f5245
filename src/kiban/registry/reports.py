"""Statistics, integration feeds, batch reports, data extraction and the 町字 master import of
the resident registry (standard ch. 3.6, 3.7, 3.9, 3.10). Read-only use cases open one tenant
unit of work each; the towns import replaces the master in one transaction, all or nothing.

Nothing here logs: the results hold personal data and go only to the caller."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TextIO

from kiban.core.clock import JST, Clock, today_jst
from kiban.core.errors import FieldError, Forbidden, RuleViolation, ValidationFailed
from kiban.core.text import clean_name, fold_kana, fold_kanji, is_kana_reading
from kiban.platform import ledger
from kiban.platform.auth import Permission, StaffMember
from kiban.platform.db import Database
from kiban.platform.tenants import Municipalities
from kiban.registry import report_queries as queries
from kiban.registry import store  # also registers the tables report_queries reads
from kiban.registry.model import CHANGE_LABELS, ChangeKind, Status, age_band

FEED_LIMIT = 1000  # change events per page of a feed, by default
FEED_MAX = 5000
BANDS = 21  # 0-4, 5-9, ..., 95-99, 100+

# Items a 住基ネット update carries (本人確認情報, 住基法 30条の6) and those a 附票 notice
# carries (住基法 19条: 氏名, 住所, 住所を定めた年月日, 生年月日, 性別, 住民票コード, 本籍).
JUKI_ITEMS = ("family_name", "given_name", "family_kana", "given_kana", "birth_date", "sex",
              "juminhyo_code", "my_number", "address_since")
FUHYO_ITEMS = ("family_name", "given_name", "birth_date", "sex", "juminhyo_code",
               "address_since", "honseki", "hittosha")

# Extraction columns: the standard's item IDs (standard/specs/items.yaml) and where each is.
_PERSON = {
    "person.family_name": "family_name", "person.given_name": "given_name",
    "person.family_kana": "family_kana", "person.given_kana": "given_kana",
    "person.former_surname": "former_surname", "person.birth_date": "birth_date",
    "person.sex": "sex", "person.relationship": "relationship",
    "person.juminhyo_code": "juminhyo_code", "person.my_number": "my_number",
    "person.honseki": "honseki", "person.hittosha": "hittosha",
    "person.resident_since": "resident_since", "person.notified_on": "notified_on",
    "person.previous_address": "previous_address", "person.status": "status",
    "person.removed_on": "removed_on", "person.removal_reason": "removal_reason",
    "address.town_code": "town_code", "address.banchi": "banchi",
    "address.katagaki": "katagaki", "address.address_since": "address_since",
    "household.id": "household_id",
}
_FOREIGN = {
    "person.nationality": "nationality", "person.foreign_category": "category",
    "person.residence_status": "residence_status", "person.residence_period": "period",
    "person.residence_expiry": "expiry", "person.residence_card_number": "card_number",
    "person.alias": "alias",
}
EXTRACT_COLUMNS = (*_PERSON, *_FOREIGN, "household.head")
EXTRACT_STATUSES = (Status.ACTIVE.value, Status.REMOVED.value)
TOWN_COLUMNS = ("code", "name", "name_kana", "postcode")


def _bad(name: str, ja: str, en: str) -> ValidationFailed:
    return ValidationFailed([FieldError(name, ja, en)])


def _utc(at: datetime) -> datetime:
    """A stored timestamp as an aware UTC time (SQLite gives it back naive, in UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _start_of(day: date) -> datetime:
    """The first instant of a Japanese business day, in UTC (timestamps are stored in UTC)."""
    return datetime.combine(day, time(), JST).astimezone(UTC)


def parse_since(value: str) -> datetime:
    """`since` of a feed: an ISO date (from the start of that day, JST) or date-time (without
    an offset: JST)."""
    try:
        at = datetime.fromisoformat(value.strip())
        return (at.replace(tzinfo=JST) if at.tzinfo is None else at).astimezone(UTC)
    except (ValueError, AttributeError, OverflowError):
        raise _bad("since", "since は日付(YYYY-MM-DD)か日時(ISO 8601)で指定してください。",
                   "since must be an ISO date (YYYY-MM-DD) or date-time.") from None


def _address_text(address: dict[str, Any] | None, towns: dict[str, str]) -> str:
    if not address:
        return ""
    text = f"{towns.get(address.get('town_code', ''), '')}{address.get('banchi', '')}"
    return text + (f" {address['katagaki']}" if address.get("katagaki") else "")


def _address_of(household: dict[str, Any] | None) -> dict[str, Any] | None:
    """The address of a household snapshot (event JSON) or table row."""
    if not household:
        return None
    if "address" in household:
        return dict(household["address"])
    return {k: household.get(k, "") for k in ("town_code", "banchi", "katagaki")}


def _notice(before: dict[str, Any] | None, after: dict[str, Any]) -> tuple[str, str] | None:
    """The kind of update a change makes to a record: 記載 (entered, or restored), 消除
    (removed, or its entry cancelled) or 修正; None when the status did not change."""
    was = before["status"] if before else None
    now = after["status"]
    if was == now:
        return None
    if now == Status.ACTIVE.value:
        return "entry", "記載"
    if was == Status.ACTIVE.value:
        return "removal", "消除"
    return "update", "修正"


class Reports:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def today(self) -> date:
        return today_jst(self.clock)

    # --- statistics ---------------------------------------------------------------------------

    def population(self, actor: StaffMember, lgcode: str, as_of: date | None = None
                   ) -> dict[str, Any]:
        """JR-0601: residents on `as_of` (default today) by 町字, sex and 5-year age band,
        and households by 町字. A resident counts from 住民となった年月日 until the removal
        date. Addresses are the households' current ones: a household that moved within the
        municipality after `as_of` is counted at its new 町字."""
        actor.require(Permission.DASHBOARD, lgcode)
        day = as_of or self.today()
        if day > self.today():
            raise RuleViolation("基準日が未来の日付です。", "as_of is in the future.", field="as_of")
        with self.db.tenant(lgcode) as conn:
            names = Municipalities.towns_in(conn, lgcode)
            rows = queries.population_by_town(conn, lgcode, day)
            households = queries.households_by_town(conn, lgcode, day)
        towns: dict[str, dict[str, Any]] = {}

        def town(code: str) -> dict[str, Any]:
            if code not in towns:
                towns[code] = {"town_code": code, "town": names.get(code, ""), "male": 0,
                               "female": 0, "total": 0, "households": households.get(code, 0),
                               "age_bands": [[0, 0] for _ in range(BANDS)]}
            return towns[code]

        for code in names:
            town(code)
        overall = [[0, 0] for _ in range(BANDS)]
        for code, sex, band, count in rows:
            row = town(code)
            which = 0 if sex == "1" else 1
            row["male" if which == 0 else "female"] += count
            row["total"] += count
            band = min(max(band, 0), BANDS - 1)
            row["age_bands"][band][which] += count
            overall[band][which] += count

        def bands(counts: list[list[int]]) -> list[dict[str, Any]]:
            return [{"band": age_band(i * 5), "male": m, "female": f, "total": m + f}
                    for i, (m, f) in enumerate(counts)]

        listed = [{**t, "age_bands": bands(t["age_bands"])}
                  for t in sorted(towns.values(), key=lambda t: t["town_code"])]
        male = sum(t["male"] for t in listed)
        female = sum(t["female"] for t in listed)
        return {"lgcode": lgcode, "as_of": day.isoformat(),
                "totals": {"male": male, "female": female, "total": male + female,
                           "households": sum(households.values())},
                "towns": listed, "age_bands": bands(overall)}

    def changes(self, actor: StaffMember, lgcode: str, start: date, end: date
                ) -> dict[str, Any]:
        """JR-0602: changes by kind whose 異動日 is within [start, end]. A cancelled change
        is left out (and counted under `cancelled`), as is the cancellation itself."""
        actor.require(Permission.DASHBOARD, lgcode)
        if start > end:
            raise RuleViolation("期間の開始日が終了日より後です。", "from is after to.", field="from")
        with self.db.tenant(lgcode) as conn:
            found, cancelled = queries.change_counts(conn, lgcode, start, end)
        kinds = [k for k in ChangeKind if k is not ChangeKind.CANCELLATION]
        counts = {k.value: found.get(k.value, 0) for k in kinds}
        return {"lgcode": lgcode, "from": start.isoformat(), "to": end.isoformat(),
                "counts": counts, "labels": {k.value: CHANGE_LABELS[k] for k in kinds},
                "total": sum(counts.values()), "cancelled": cancelled}

    # --- integration feeds --------------------------------------------------------------------

    def _feed_events(self, actor: StaffMember, lgcode: str, since: str, after_seq: int,
                     limit: int) -> tuple[datetime, list[dict[str, Any]], dict[str, str],
                                          dict[str, Any]]:
        actor.require(Permission.REGISTRY_EXPORT, lgcode)
        at = parse_since(since)
        errors = []
        if after_seq < 0:
            errors.append(FieldError("after_seq", "after_seq は0以上です。", "after_seq must be >= 0."))
        if not 1 <= limit <= FEED_MAX:
            errors.append(FieldError("limit", f"limit は1〜{FEED_MAX}です。",
                                     f"limit must be 1..{FEED_MAX}."))
        if errors:
            raise ValidationFailed(errors)
        with self.db.tenant(lgcode) as conn:
            events = queries.events_since(conn, lgcode, at, after_seq, limit)
            towns = store.town_names(conn, lgcode)
            wanted = {s["household_id"] for e in events for s in e["after"]["residents"].values()}
            current = {h.id: {"town_code": h.address.town_code, "banchi": h.address.banchi,
                              "katagaki": h.address.katagaki}
                       for h in store.get_households(conn, lgcode, wanted).values()}
        return at, events, towns, current

    @staticmethod
    def _page(at: datetime, events: list[dict[str, Any]], limit: int,
              items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"since": at.isoformat(), "items": items, "count": len(items),
                "next_after_seq": events[-1]["ledger_seq"] if events else None,
                "has_more": len(events) == limit}

    def change_feed(self, actor: StaffMember, lgcode: str, since: str, after_seq: int = 0,
                    limit: int = FEED_LIMIT) -> dict[str, Any]:
        """JR-0703: the changes recorded since `since` for other systems (tax, welfare), with
        each concerned resident's record as the change left it. Page on with
        `after_seq=next_after_seq` while `has_more`."""
        at, events, towns, current = self._feed_events(actor, lgcode, since, after_seq, limit)
        show_number = actor.can(Permission.MY_NUMBER_READ)
        items = []
        for e in events:
            households = e["after"].get("households", {})
            residents = []
            for rid, snap in e["after"]["residents"].items():
                person = {k: v for k, v in snap.items() if k != "lgcode"}
                if not show_number:
                    person.pop("my_number", None)
                address = _address_of(households.get(snap["household_id"])) or \
                    current.get(snap["household_id"])
                residents.append({**person, "resident_id": rid, "address": {
                    **(address or {}), "text": _address_text(address, towns)}})
            items.append({
                "event_id": e["id"], "kind": e["kind"],
                "label": CHANGE_LABELS.get(ChangeKind(e["kind"]), e["kind"]),
                "occurred_on": e["occurred_on"].isoformat(),
                "notified_on": e["notified_on"].isoformat() if e["notified_on"] else None,
                "recorded_at": _utc(e["recorded_at"]).isoformat(), "ledger_seq": e["ledger_seq"],
                "cancels": e["cancels"], "cancelled_by": e["cancelled_by"],
                "resident_ids": list(e["after"]["residents"]),
                "household_ids": list(households), "residents": residents})
        return self._page(at, events, limit, items)

    def _notifications(self, events: list[dict[str, Any]], towns: dict[str, str],
                       current: dict[str, Any], fields: tuple[str, ...],
                       keep: Any) -> Iterator[dict[str, Any]]:
        """One notice per resident whose notified items a change entered, removed or
        altered (address included)."""
        for e in events:
            before_rs, after_rs = e["before"].get("residents", {}), e["after"]["residents"]
            before_hs, after_hs = e["before"].get("households", {}), e["after"].get(
                "households", {})
            for rid, after in after_rs.items():
                before = before_rs.get(rid)
                if not keep(before, after):
                    continue
                address = _address_of(after_hs.get(after["household_id"])) or \
                    current.get(after["household_id"])
                changed = [f for f in fields if before is None or before.get(f) != after.get(f)]
                if before is not None:
                    was = _address_of(before_hs.get(before["household_id"]))
                    now = _address_of(after_hs.get(after["household_id"]))
                    if was is not None and now is not None and was != now:
                        changed.append("address")
                notice = _notice(before, after)
                if notice is None:
                    if not changed:
                        continue
                    notice = ("update", "修正")
                yield {"event_id": e["id"], "kind": e["kind"], "notice": notice[0],
                       "notice_label": notice[1], "occurred_on": e["occurred_on"].isoformat(),
                       "recorded_at": _utc(e["recorded_at"]).isoformat(),
                       "resident_id": rid, "status": after["status"],
                       "changed": changed if before is not None else [],
                       "address": {**(address or {}), "text": _address_text(address, towns)},
                       **{f: after.get(f) for f in fields}}

    def juki_net_notifications(self, actor: StaffMember, lgcode: str, since: str,
                               after_seq: int = 0, limit: int = FEED_LIMIT) -> dict[str, Any]:
        """JR-0701: 本人確認情報 updates for the 住基ネット (住基法 30条の6): every record a
        change entered, removed, or whose name, birth date, sex, codes or address it altered,
        with the items as they now stand."""
        at, events, towns, current = self._feed_events(actor, lgcode, since, after_seq, limit)
        fields = JUKI_ITEMS if actor.can(Permission.MY_NUMBER_READ) else tuple(
            f for f in JUKI_ITEMS if f != "my_number")
        items = list(self._notifications(events, towns, current, fields,
                                         lambda before, after: True))
        return self._page(at, events, limit, items)

    def fuhyo_notifications(self, actor: StaffMember, lgcode: str, since: str,
                            after_seq: int = 0, limit: int = FEED_LIMIT) -> dict[str, Any]:
        """JR-0704: notices to the 本籍地 for its 戸籍の附票 (住基法 19条): the same updates,
        for Japanese residents with a 本籍, with the 附票's items. `honseki` says where each
        notice goes."""
        at, events, towns, current = self._feed_events(actor, lgcode, since, after_seq, limit)

        def japanese_with_honseki(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
            return not after.get("foreign") and bool(after.get("honseki") or (
                before or {}).get("honseki"))

        items = list(self._notifications(events, towns, current, FUHYO_ITEMS,
                                         japanese_with_honseki))
        return self._page(at, events, limit, items)

    # --- batch reports --------------------------------------------------------------------------

    def residence_expired(self, actor: StaffMember, lgcode: str, as_of: date | None = None
                          ) -> dict[str, Any]:
        """JR-0901: active foreign residents whose period of stay (在留期間の満了の日) is past on
        `as_of` (default today), for the survey before a 職権消除 (住基法 30条の45)."""
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        day = as_of or self.today()
        with self.db.tenant(lgcode) as conn:
            rows = queries.residence_expired(conn, lgcode, day)
            towns = store.town_names(conn, lgcode)
        items = []
        for r in rows:
            foreign = r["foreign"] or {}
            expiry = date.fromisoformat(foreign["expiry"])
            items.append({
                "resident_id": r["id"], "juminhyo_code": r["juminhyo_code"],
                "family_name": r["family_name"], "given_name": r["given_name"],
                "family_kana": r["family_kana"], "given_kana": r["given_kana"],
                "birth_date": r["birth_date"].isoformat(), "sex": r["sex"],
                "household_id": r["household_id"],
                "address": _address_text(_address_of(r) if r["town_code"] else None, towns),
                "nationality": foreign.get("nationality", ""),
                "residence_status": foreign.get("residence_status", ""),
                "period": foreign.get("period", ""), "expiry": expiry.isoformat(),
                "card_number": foreign.get("card_number", ""),
                "category": foreign.get("category", ""), "days_past": (day - expiry).days})
        return {"lgcode": lgcode, "as_of": day.isoformat(), "count": len(items), "items": items}

    def daily_changes(self, actor: StaffMember, lgcode: str, on: date | None = None
                      ) -> dict[str, Any]:
        """JR-0902: every change recorded on day `on` (default today, Japanese time), in the
        order recorded, with the residents each concerns."""
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        day = on or self.today()
        if not date(1900, 1, 1) <= day <= date(9998, 12, 31):
            raise _bad("on", "日付が範囲外です。", "on is out of range.")
        with self.db.tenant(lgcode) as conn:
            events = queries.events_recorded_between(conn, lgcode, _start_of(day),
                                                     _start_of(day + timedelta(days=1)))
        items = []
        for e in events:
            items.append({
                "event_id": e["id"], "kind": e["kind"],
                "label": CHANGE_LABELS.get(ChangeKind(e["kind"]), e["kind"]),
                "occurred_on": e["occurred_on"].isoformat(),
                "notified_on": e["notified_on"].isoformat() if e["notified_on"] else None,
                "late_notice": e["late_notice"],
                "recorded_at": _utc(e["recorded_at"]).isoformat(), "actor": e["actor"],
                "cancels": e["cancels"], "cancelled_by": e["cancelled_by"],
                "residents": [{"resident_id": rid, "juminhyo_code": s["juminhyo_code"],
                               "family_name": s["family_name"], "given_name": s["given_name"],
                               "family_kana": s["family_kana"], "given_kana": s["given_kana"],
                               "birth_date": s["birth_date"], "sex": s["sex"],
                               "relationship": s["relationship"], "status": s["status"]}
                              for rid, s in e["after"]["residents"].items()]})
        return {"lgcode": lgcode, "on": day.isoformat(), "count": len(items), "items": items}

    # --- extraction -----------------------------------------------------------------------------

    def extract_csv(self, actor: StaffMember, lgcode: str, columns: list[str],
                    conditions: dict[str, Any], out: TextIO) -> int:
        """JR-1004: the records matching `conditions`, as CSV with the standard's item IDs
        as the header and `columns` in the order asked. Recorded in the ledger (the columns,
        which conditions, how many rows and a digest; never the values). Returns the rows."""
        actor.require(Permission.REGISTRY_EXPORT, lgcode)
        errors = [FieldError(f"columns[{i}]", "抽出できない項目です。",
                             f"{name} is not an item that can be extracted.")
                  for i, name in enumerate(columns) if name not in EXTRACT_COLUMNS]
        if not columns:
            errors.append(FieldError("columns", "出力項目を指定してください。", "columns is required."))
        elif len(set(columns)) != len(columns):
            errors.append(FieldError("columns", "出力項目が重複しています。", "columns repeat."))
        statuses = conditions.get("status") or [Status.ACTIVE.value]
        for i, status in enumerate(statuses):
            if status not in EXTRACT_STATUSES:
                errors.append(FieldError(f"conditions.status[{i}]", "状態は active か removed です。",
                                         "status must be 'active' or 'removed'."))
        name = clean_name(str(conditions.get("name") or ""))
        if len(name) > 100 or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
            errors.append(FieldError("conditions.name", "氏名の条件が不正です(長すぎるか制御文字)。",
                                     "conditions.name is too long or has control characters."))
        if errors:
            raise ValidationFailed(errors)
        if "person.my_number" in columns and not actor.can(Permission.MY_NUMBER_READ):
            raise Forbidden("個人番号を抽出する権限がありません。",
                            "Your roles do not allow extracting the 個人番号.")
        kana_key = fold_kana(name) if name and is_kana_reading(name) else None
        kanji_key = fold_kanji(name) if name and not kana_key else None
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        digest = hashlib.sha256()
        count = 0
        at = self.clock.now()
        with self.db.tenant(lgcode) as conn:
            for row in queries.extract_rows(
                    conn, lgcode, statuses=list(statuses), kana_key=kana_key, kanji_key=kanji_key,
                    birth_date=conditions.get("birth_date"), born_from=conditions.get("born_from"),
                    born_to=conditions.get("born_to"), sex=conditions.get("sex"),
                    town_code=conditions.get("town_code"), foreign=conditions.get("foreign")):
                values = [_cell(row, name) for name in columns]
                writer.writerow(values)
                digest.update(repr(values).encode())
                count += 1
            ledger.append(conn, lgcode, "registry.extract", uuid.uuid4().hex, {
                "columns": columns, "conditions": sorted(k for k, v in conditions.items()
                                                         if v not in (None, "", [])),
                "rows": count, "sha256": digest.hexdigest()}, actor.id, at)
        return count

    # --- 町字 master import ------------------------------------------------------------------------

    def import_towns(self, actor: StaffMember, lgcode: str, text: str) -> dict[str, Any]:
        """JR-1006: replaces the 町字 master with a CSV file (header `code,name` and optionally
        `name_kana`, `postcode`). Every bad line is named; a 町字 that a household's address
        uses may not be left out. All or nothing."""
        actor.require(Permission.MUNICIPALITY_MANAGE, lgcode)
        rows = parse_towns_csv(text)
        with self.db.unit_of_work(lgcode) as conn:
            before = set(Municipalities.towns_in(conn, lgcode))
            codes = {r["code"] for r in rows}
            missing = sorted(queries.town_codes_in_use(conn, lgcode) - codes)
            if missing:
                raise RuleViolation(
                    f"住所に使われている町字が取込みファイルにありません: {', '.join(missing[:20])}",
                    f"Towns used by households' addresses are missing from the file: "
                    f"{', '.join(missing[:20])}", field="rows")
            count = Municipalities(self.db).set_towns(lgcode, rows, self.clock.now(), actor.id)
        return {"lgcode": lgcode, "count": count, "added": len(codes - before),
                "removed": len(before - codes)}


def _cell(row: dict[str, Any], name: str) -> str:
    if name == "household.head":
        if row.get("head_family_name") is None:
            return ""
        return f"{row['head_family_name']} {row['head_given_name']}".strip()
    if name in _FOREIGN:
        value = (row.get("foreign") or {}).get(_FOREIGN[name])
    else:
        value = row.get(_PERSON[name])
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)


def parse_towns_csv(text: str) -> list[dict[str, str]]:
    """The rows of a 町字 master CSV, each checked; every bad line named (`lines[N].column`)."""
    try:
        return _parse_towns(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    except csv.Error:
        raise _bad("body", "CSVとして読めません。", "The body is not readable as CSV.") from None


def _parse_towns(reader: Any) -> list[dict[str, str]]:
    header = [h.strip() for h in next(reader, [])]
    if not header or any(not h for h in header):
        raise _bad("header", "1行目に列見出し(code,name など)が必要です。",
                   "The first line must name the columns (code,name, ...).")
    unknown = [h for h in header if h not in TOWN_COLUMNS]
    if unknown or len(set(header)) != len(header) or not {"code", "name"} <= set(header):
        raise _bad("header", "列見出しは code,name と任意の name_kana,postcode です(重複不可)。",
                   f"The columns are code and name, optionally name_kana and postcode, each "
                   f"once (unknown: {', '.join(unknown) or '-'}).")
    rows: list[dict[str, str]] = []
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        where = f"lines[{line}]"
        if len(header) > len(values) >= 2 and all(
                h not in ("code", "name") for h in header[len(values):]):
            values = values + [""] * (len(header) - len(values))  # optional columns left off
        if len(values) != len(header):
            errors.append(FieldError(where, f"列の数が{len(header)}ではありません。",
                                     f"The line does not have {len(header)} columns."))
            continue
        row = {name: value.strip() for name, value in zip(header, values, strict=True)}
        code, name = row["code"], clean_name(row["name"])
        kana, postcode = clean_name(row.get("name_kana", "")), row.get("postcode", "")
        if not (code.isascii() and code.isdigit() and len(code) <= 12):
            errors.append(FieldError(f"{where}.code", "町字コードは12桁以内の数字です。",
                                     "code must be up to 12 digits."))
        elif code in seen:
            errors.append(FieldError(f"{where}.code", f"町字コードが重複しています({seen[code]}行目)。",
                                     f"code repeats line {seen[code]}."))
        else:
            seen[code] = line
        if not name or len(name) > 100:
            errors.append(FieldError(f"{where}.name", "町字名を100文字以内で入力してください。",
                                     "name is required (up to 100 characters)."))
        if kana and (len(kana) > 200 or not is_kana_reading(kana)):
            errors.append(FieldError(f"{where}.name_kana", "町字名のフリガナはカタカナです。",
                                     "name_kana must be a kana reading."))
        if postcode and not (postcode.isascii() and postcode.isdigit() and len(postcode) == 7):
            errors.append(FieldError(f"{where}.postcode", "郵便番号は7桁の数字です。",
                                     "postcode must be 7 digits."))
        rows.append({"code": code, "name": name, "name_kana": kana, "postcode": postcode})
    if errors:
        raise ValidationFailed(errors[:200])
    if not rows:
        raise _bad("rows", "町字が1件もありません。", "The file lists no towns.")
    return rows
