"""Kiban's standard migration format for a municipality's whole registry (データ移行).

A vendor moving a municipality onto or off Kiban exports every household and resident record
(除票 and void records too) and imports them on the other side. docs/migration-format.md is
the specification; this module is its reference implementation.

- JSON Lines: a header line, then each household's record followed by its residents' records.
- CSV: one row per resident with the household's columns repeated (CSV_COLUMNS).

Import validates every record with the model's validators and names every bad line and field,
in Japanese and English. It runs in one transaction: by default all-or-nothing (any error and
the transaction is rolled back); with `partial`, households with an error are skipped whole
and the others imported. Rows are written in chunks through executemany, one ledger entry per
chunk. The work per row is pure Python over the parsed record: no per-row query.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, TextIO

from sqlalchemy.exc import IntegrityError

from kiban.core.checkdigits import is_valid_juminhyo_code, is_valid_lgcode
from kiban.core.clock import Clock, today_jst
from kiban.core.errors import Conflict, FieldError, ValidationFailed
from kiban.core.text import clean_name, fold_kana, fold_kanji
from kiban.platform import ledger
from kiban.platform.auth import Permission, StaffMember
from kiban.platform.db import Database
from kiban.platform.tenants import Municipalities
from kiban.registry import store
from kiban.registry.model import HEAD, Status, parse_foreign, validate_address, validate_person

FORMAT = "kiban-registry/1"
FORMATS = ("jsonl", "csv")
CHUNK_RESIDENTS = 5000  # rows per executemany and per ledger entry (households go whole)

# Record fields in the order an export writes them. `lgcode` is not among them: it is in the
# header (JSON Lines) or its own column (CSV), so records do not depend on the municipality.
HOUSEHOLD_FIELDS = ("type", "id", "address", "head_id", "status", "version")
ADDRESS_FIELDS = ("town_code", "banchi", "katagaki")
RESIDENT_FIELDS = (
    "type", "id", "household_id", "relationship", "juminhyo_code", "my_number",
    "family_name", "given_name", "family_kana", "given_kana", "birth_date", "sex",
    "resident_since", "address_since", "notified_on", "status", "removed_on",
    "removal_reason", "former_surname", "honseki", "hittosha", "previous_address", "foreign",
    "version",
)
FOREIGN_FIELDS = ("nationality", "residence_status", "period", "expiry", "card_number",
                  "alias", "category")
# Optional resident fields and the value an absent one takes.
RESIDENT_DEFAULTS: dict[str, Any] = {
    "my_number": None, "notified_on": None, "removed_on": None, "removal_reason": "",
    "former_surname": "", "honseki": "", "hittosha": "", "previous_address": "", "foreign": None,
}
CSV_COLUMNS = (
    "lgcode",
    "household_id", "household_town_code", "household_banchi", "household_katagaki",
    "household_head_id", "household_status", "household_version",
    "id", "relationship", "juminhyo_code", "my_number", "family_name", "given_name",
    "family_kana", "given_kana", "birth_date", "sex", "resident_since", "address_since",
    "notified_on", "status", "removed_on", "removal_reason", "former_surname", "honseki",
    "hittosha", "previous_address",
    *(f"foreign_{name}" for name in FOREIGN_FIELDS),
    "version",
)

_RESIDENT_KEYS = frozenset(RESIDENT_FIELDS)
_RESIDENT_REQUIRED = _RESIDENT_KEYS - set(RESIDENT_DEFAULTS)
_HOUSEHOLD_KEYS = frozenset(HOUSEHOLD_FIELDS)
_STATUSES = frozenset(s.value for s in Status)
# Plain strings: Enum.value costs a descriptor call, and these are compared for every row.
_ACTIVE, _REMOVED, _VOID = Status.ACTIVE.value, Status.REMOVED.value, Status.VOID.value
_ID = re.compile(r"[0-9A-Za-z_\-]{1,32}")
_DATES = ("birth_date", "resident_since", "address_since", "notified_on", "removed_on")
_OPTIONAL_DATES = frozenset({"notified_on", "removed_on"})
# Text fields validate_person does not type-check, with the size the database enforces
# (0: none, or checked elsewhere), so an oversize value is a named error, not a failed insert.
_TEXT = {"household_id": 0, "juminhyo_code": 0, "status": 0, "removal_reason": 40,
         "former_surname": 100, "honseki": 200, "hittosha": 100, "previous_address": 300}
_FOREIGN_KEYS = frozenset(FOREIGN_FIELDS)
_FOREIGN_TEXT = tuple(name for name in FOREIGN_FIELDS if name != "expiry")

# Names repeat across a population, so the normalisers are cached: same functions as the
# model's build_resident / Resident.search_keys, computed once per distinct value.
_clean = lru_cache(maxsize=1 << 17)(clean_name)


@lru_cache(maxsize=1 << 17)
def _name(family_name: str, given_name: str, family_kana: str, given_kana: str
          ) -> tuple[str, ...]:
    """A name as stored (build_resident) with its six search keys (Resident.search_keys)."""
    family, given = clean_name(family_name), clean_name(given_name)
    family_reading, given_reading = fold_kana(family_kana), fold_kana(given_kana)
    return (family, given, family_reading, given_reading, fold_kana(family_reading),
            fold_kana(given_reading), fold_kana(family_reading + given_reading),
            fold_kanji(family), fold_kanji(given), fold_kanji(family + given))


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One bad field of one line. Identifiers only: no names or numbers from the record."""

    line: int
    field: str
    ja: str
    en: str
    record: str = ""  # "header", "household", "resident" or "file"
    id: str = ""  # the record's id, when it has a usable one

    def text(self) -> str:
        what = f" {self.record} {self.id}".rstrip() if self.record else ""
        return f"line {self.line}{what}: {self.field}: {self.ja} / {self.en}"


@dataclass
class Report:
    lgcode: str
    format: str
    mode: str  # "validate", "import" or "partial"
    households: int = 0  # records read
    residents: int = 0
    imported_households: int = 0
    imported_residents: int = 0
    bad_households: int = 0  # with an error: under `partial`, the households skipped
    chunks: int = 0  # executemany batches written, one ledger entry each
    batch_id: str | None = None
    seconds: float = 0.0
    errors: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def rate(self) -> float:
        """Residents read per second."""
        return self.residents / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        head = (f"{self.lgcode} {self.format} {self.mode}: {self.households} households, "
                f"{self.residents} residents read; {len(self.errors)} errors")
        if self.bad_households:
            head += f"; {self.bad_households} households with errors"
        if self.mode != "validate":
            head += (f"; imported {self.imported_households} households, "
                     f"{self.imported_residents} residents in {self.chunks} chunks")
            if self.errors and self.mode == "import":
                head += " (nothing written: all-or-nothing / エラーがあるため取り込んでいません)"
        return head

    def lines(self) -> list[str]:
        return [self.summary(), *(e.text() for e in self.errors)]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ok"] = self.ok
        return data


# --- records: one shape for export, import and the chunk digests ---------------------------------


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def household_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A households table row as its migration record."""
    return {"type": "household", "id": row["id"],
            "address": {"town_code": row["town_code"], "banchi": row["banchi"],
                        "katagaki": row["katagaki"]},
            "head_id": row["head_id"], "status": row["status"], "version": row["version"]}


def resident_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A residents table row as its migration record."""
    foreign = row["foreign"]
    return {
        "type": "resident", "id": row["id"], "household_id": row["household_id"],
        "relationship": row["relationship"], "juminhyo_code": row["juminhyo_code"],
        "my_number": row["my_number"], "family_name": row["family_name"],
        "given_name": row["given_name"], "family_kana": row["family_kana"],
        "given_kana": row["given_kana"], "birth_date": _iso(row["birth_date"]),
        "sex": row["sex"], "resident_since": _iso(row["resident_since"]),
        "address_since": _iso(row["address_since"]), "notified_on": _iso(row["notified_on"]),
        "status": row["status"], "removed_on": _iso(row["removed_on"]),
        "removal_reason": row["removal_reason"], "former_surname": row["former_surname"],
        "honseki": row["honseki"], "hittosha": row["hittosha"],
        "previous_address": row["previous_address"],
        "foreign": {k: foreign.get(k, "") for k in FOREIGN_FIELDS} if foreign else None,
        "version": row["version"],
    }


def dumps(record: Mapping[str, Any]) -> str:
    """One JSON Lines record: compact, UTF-8 text, fields in the order given."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def csv_row(lgcode: str, household: Mapping[str, Any] | None,
            resident: Mapping[str, Any] | None) -> list[str]:
    """One CSV row from records; a household without resident records gets a row with empty
    resident columns."""

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    hh = household or {}
    address = hh.get("address") or {}
    row = [lgcode, text(hh.get("id")), text(address.get("town_code")),
           text(address.get("banchi")), text(address.get("katagaki")), text(hh.get("head_id")),
           text(hh.get("status")), text(hh.get("version"))]
    if resident is None:
        return row + [""] * (len(CSV_COLUMNS) - len(row))
    foreign = resident.get("foreign") or {}
    row += [text(resident.get(name)) for name in RESIDENT_FIELDS[1:-2] if name != "household_id"]
    row += [text(foreign.get(name)) for name in FOREIGN_FIELDS]
    row.append(text(resident.get("version")))
    return row



# --- parsing the two formats into records ---------------------------------------------------------


@dataclass(frozen=True)
class _Bad:
    """A line that could not be read as a record at all."""

    field: str
    ja: str
    en: str
    fatal: bool = False


def _jsonl_records(src: TextIO) -> Iterator[tuple[int, Any]]:
    loads = json.loads
    header = True
    for number, line in enumerate(src, 1):
        if number == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        try:
            yield number, loads(line)
        except ValueError:
            # Without a readable header nothing after it can be trusted.
            yield number, _Bad("line", "JSONとして読めない行です。", "The line is not valid JSON.",
                               fatal=header)
        header = False


_CSV_HOUSEHOLD = CSV_COLUMNS[1:8]
_CSV_RESIDENT = CSV_COLUMNS[8:]
_CSV_NULLABLE = frozenset({"my_number", "notified_on", "removed_on"})


def _csv_records(src: TextIO, expected_lgcode: str) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(src)
    header = next(reader, None)
    if header is None:
        yield 1, _Bad("file", "ファイルが空です。", "The file is empty.", fatal=True)
        return
    if header:
        header[0] = header[0].lstrip("\ufeff")
    if sorted(header) != sorted(CSV_COLUMNS):
        missing = sorted(set(CSV_COLUMNS) - set(header))
        unknown = sorted(set(header) - set(CSV_COLUMNS))
        yield 1, _Bad("columns", "列見出しが標準の列と一致しません。",
                      f"The header row does not list the standard columns "
                      f"(missing: {', '.join(missing) or '-'}; "
                      f"unknown or repeated: {', '.join(unknown) or '-'}).", fatal=True)
        return
    index = {name: header.index(name) for name in CSV_COLUMNS}
    width = len(header)
    lgcode: str | None = None
    current: tuple[str, ...] | None = None
    for values in reader:
        number = reader.line_num
        if not values:
            continue
        if len(values) != width:
            yield number, _Bad("columns", f"列の数が{width}ではありません。",
                               f"The row does not have {width} columns.")
            continue
        get = values.__getitem__
        if lgcode is None:
            lgcode = get(index["lgcode"])
            yield number, {"format": FORMAT, "lgcode": lgcode}
        elif get(index["lgcode"]) != lgcode:
            yield number, _Bad("lgcode", "ファイル内で地方公共団体コードが異なります。",
                               "The lgcode differs from the file's first row.")
            continue
        hh = tuple(get(index[name]) for name in _CSV_HOUSEHOLD)
        if current is None or hh[0] != current[0]:
            current = hh
            version: Any = hh[6]
            try:
                version = int(version)
            except ValueError:
                pass
            yield number, {"type": "household", "id": hh[0],
                           "address": {"town_code": hh[1], "banchi": hh[2], "katagaki": hh[3]},
                           "head_id": hh[4], "status": hh[5], "version": version}
        elif hh != current:
            yield number, _Bad("household", "同じ世帯の行で世帯の列の値が異なります。",
                               "The household columns differ from the household's first row.")
        resident = {name: get(index[name]) for name in _CSV_RESIDENT}
        if not resident["id"]:
            if any(resident.values()):
                yield number, _Bad("id", "住民の列があるのに id がありません。",
                                   "The row has resident columns but no id.")
            continue
        record: dict[str, Any] = {"type": "resident", "household_id": hh[0]}
        foreign = {name: resident.pop(f"foreign_{name}") for name in FOREIGN_FIELDS}
        for name, value in resident.items():
            record[name] = None if (name in _CSV_NULLABLE and value == "") else value
        try:
            record["version"] = int(record["version"])
        except ValueError:
            pass
        record["foreign"] = foreign if any(foreign.values()) else None
        yield number, record
    if lgcode is None:  # no rows: an empty registry, for whichever municipality is named
        yield reader.line_num, {"format": FORMAT, "lgcode": expected_lgcode}


# --- validation ------------------------------------------------------------------------------------


def _date(value: Any) -> date | None:
    """A strict YYYY-MM-DD date, or None."""
    if type(value) is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


@dataclass
class _Group:
    """A household record and the resident records that follow it."""

    line: int
    id: str
    status: str
    head_id: str
    ok: bool
    row: dict[str, Any] | None
    # (id, status, relationship) of every resident record that followed, valid or not, so the
    # head rule is checked even when a member has other errors.
    members: list[tuple[str, Any, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # table rows of the valid ones


@dataclass
class _Chunk:
    households: list[dict[str, Any]] = field(default_factory=list)
    residents: list[dict[str, Any]] = field(default_factory=list)


class _Checker:
    """Validates records one household at a time and prepares their table rows."""

    def __init__(self, report: Report, lgcode: str, source_lgcode: str, today: date,
                 towns: dict[str, str], existing: dict[str, set[str]]) -> None:
        self.report = report
        self.lgcode = lgcode
        self.source_lgcode = source_lgcode
        self.today = today
        self.towns = towns
        self.existing = existing
        self.errors = report.errors
        self.blocked = False  # a file-level error: nothing may be written, even with partial
        self.stop = False  # the file cannot be read further
        self.household_lines: dict[str, int] = {}
        self.resident_lines: dict[str, int] = {}
        self.code_lines: dict[str, int] = {}
        self.my_number_lines: dict[str, int] = {}

    def issue(self, line: int, name: str, ja: str, en: str, record: str = "",
              id: str = "") -> None:
        self.errors.append(Issue(line, name, ja, en, record, id))

    # header -----------------------------------------------------------------------------------

    def header(self, line: int, data: Any) -> None:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            self.issue(line, "format", f"1行目は形式 {FORMAT} のヘッダーでなければなりません。",
                       f"The first line must be the header of format {FORMAT}.", "header")
            self.blocked = self.stop = True
            return
        code = data.get("lgcode")
        if not isinstance(code, str) or not is_valid_lgcode(code):
            self.issue(line, "lgcode", "地方公共団体コードが不正です。",
                       "lgcode is not a valid 地方公共団体コード.", "header")
            self.blocked = True
        elif code != self.source_lgcode:
            self.issue(line, "lgcode", "別の地方公共団体のファイルです。",
                       f"The file is for {code}, not {self.source_lgcode}.", "header")
            self.blocked = True
        exported_at = data.get("exported_at")
        if exported_at is not None and not isinstance(exported_at, str):
            self.issue(line, "exported_at", "exported_at は文字列です。",
                       "exported_at must be a string.", "header")

    # households -------------------------------------------------------------------------------

    def household(self, line: int, data: dict[str, Any]) -> _Group:
        report = self.report
        report.households += 1
        start = len(self.errors)
        hid = data.get("id")
        ident = hid if isinstance(hid, str) else ""
        extra = data.keys() - _HOUSEHOLD_KEYS
        missing = _HOUSEHOLD_KEYS - data.keys()
        for name in sorted(extra):
            self.issue(line, name, "標準にない項目です。", "Not a field of the format.",
                       "household", ident)
        for name in sorted(missing):
            self.issue(line, name, "必須の項目がありません。", "Required field is missing.",
                       "household", ident)
        if not isinstance(hid, str) or not _ID.fullmatch(hid):
            self.issue(line, "id", "世帯IDは英数字・-・_ の32文字以内です。",
                       "id must be 1-32 letters, digits, '-' or '_'.", "household")
        elif hid in self.household_lines:
            self.issue(line, "id", f"世帯IDが重複しています({self.household_lines[hid]}行目)。",
                       f"Duplicate household id (first on line {self.household_lines[hid]}).",
                       "household", hid)
        elif hid in self.existing["household_ids"]:
            self.issue(line, "id", "この世帯IDは登録済みです。",
                       "A household with this id is already registered.", "household", hid)
        if isinstance(hid, str):
            self.household_lines.setdefault(hid, line)
        address = data.get("address")
        if isinstance(address, dict) and type(address.get("town_code")) is not str:
            address = {**address, "town_code": None}  # named below as not in the master
        for e in validate_address(address, self.towns):
            self.issue(line, e.field, e.ja, e.en, "household", ident)
        if isinstance(address, dict):
            for name in sorted(address.keys() - set(ADDRESS_FIELDS)):
                self.issue(line, f"address.{name}", "標準にない項目です。",
                           "Not a field of the format.", "household", ident)
        head_id = data.get("head_id")
        if not isinstance(head_id, str) or not _ID.fullmatch(head_id):
            self.issue(line, "head_id", "世帯主の住民IDを入力してください。",
                       "head_id must be a resident id.", "household", ident)
        status = data.get("status")
        if type(status) is not str or status not in _STATUSES:
            self.issue(line, "status", "状態は active・removed・void のいずれかです。",
                       "status must be active, removed or void.", "household", ident)
        version = data.get("version")
        if type(version) is not int or version < 1:
            self.issue(line, "version", "版数は1以上の整数です。",
                       "version must be an integer >= 1.", "household", ident)
        ok = len(self.errors) == start
        row = None
        if ok:
            assert isinstance(address, dict)
            row = {"lgcode": self.lgcode, "id": hid, "town_code": address["town_code"],
                   "banchi": _clean(address["banchi"]),
                   "katagaki": _clean(address.get("katagaki") or ""),
                   "head_id": head_id, "status": status, "version": version}
        return _Group(line, ident, status if isinstance(status, str) else "",
                      head_id if isinstance(head_id, str) else "", ok, row)

    def finish(self, group: _Group) -> bool:
        """JR-0417 (as model.ensure_one_head): an active household's active members include
        exactly one head, the household's head_id; a removed or void one has none active."""
        active = [(rid, rel) for rid, status, rel in group.members if status == _ACTIVE]
        start = len(self.errors)
        if group.status == _ACTIVE and active:
            heads = [rid for rid, rel in active if rel == HEAD]
            if len(heads) != 1:
                self.issue(group.line, "head_id",
                           f"世帯には世帯主が1人必要です({len(heads)}人)。",
                           f"An active household needs exactly one active head "
                           f"({len(heads)} found).", "household", group.id)
            elif heads[0] != group.head_id:
                self.issue(group.line, "head_id", "head_id が世帯主の住民と一致しません。",
                           "head_id is not the id of the household's head.", "household",
                           group.id)
        elif group.status in (_REMOVED, _VOID) and active:
            self.issue(group.line, "status", "消除された世帯に住民がいます。",
                       "A removed or void household still has active residents.",
                       "household", group.id)
        return group.ok and len(self.errors) == start

    # residents --------------------------------------------------------------------------------

    def resident(self, line: int, data: dict[str, Any], group: _Group | None) -> bool:
        """Checks one resident record; on success appends its table row to the group."""
        self.report.residents += 1
        errors = self.errors
        start = len(errors)
        rid = data.get("id")
        ident = rid if type(rid) is str else ""
        keys = data.keys()
        missing: frozenset[str] = frozenset()
        if not (keys <= _RESIDENT_KEYS and keys >= _RESIDENT_REQUIRED):
            missing = _RESIDENT_REQUIRED - keys
            for name in sorted(keys - _RESIDENT_KEYS):
                self.issue(line, name, "標準にない項目です。", "Not a field of the format.",
                           "resident", ident)
            for name in sorted(missing):
                self.issue(line, name, "必須の項目がありません。", "Required field is missing.",
                           "resident", ident)
            data = {**RESIDENT_DEFAULTS, **dict.fromkeys(missing), **data}
        elif len(keys) != len(_RESIDENT_KEYS):
            for name, default in RESIDENT_DEFAULTS.items():
                if name not in data:
                    data[name] = default
        for name, limit in _TEXT.items():
            value = data[name]
            if type(value) is not str:
                if name not in missing:
                    self.issue(line, name, "文字列で入力してください。",
                               f"{name} must be a string.", "resident", ident)
                    data[name] = None
            elif limit and len(value) > limit:
                self.issue(line, name, f"{limit}文字を超えています。",
                           f"{name} is longer than {limit} characters.", "resident", ident)
        for name in _DATES:
            raw = data[name]
            if raw is None and (name in _OPTIONAL_DATES or name in missing):
                continue
            value = None
            if type(raw) is str and len(raw) == 10 and raw[4] == "-" and raw[7] == "-":
                try:
                    value = date.fromisoformat(raw)
                except ValueError:
                    pass
            if value is None:
                if name != "birth_date":  # validate_person names a bad birth date
                    self.issue(line, name, "日付は YYYY-MM-DD で入力してください。",
                               f"{name} must be a date (YYYY-MM-DD).", "resident", ident)
                data[name] = None
            else:
                if name != "birth_date" and value > self.today:
                    self.issue(line, name, "未来の日付です。", f"{name} is in the future.",
                               "resident", ident)
                data[name] = value
        foreign = data["foreign"]
        if isinstance(foreign, dict):
            foreign = dict(foreign)
            for name in sorted(foreign.keys() - _FOREIGN_KEYS):
                self.issue(line, f"foreign.{name}", "標準にない項目です。",
                           "Not a field of the format.", "resident", ident)
            for name in _FOREIGN_TEXT:
                if name in foreign and type(foreign[name]) is not str:
                    self.issue(line, f"foreign.{name}", "文字列で入力してください。",
                               f"foreign.{name} must be a string.", "resident", ident)
                    foreign[name] = ""
            expiry = _date(foreign.get("expiry"))
            if expiry is not None:
                foreign["expiry"] = expiry
            data["foreign"] = foreign
        if type(data["sex"]) is not str:
            data["sex"] = None  # validate_person names it (and would hash it)
        # The model's rules for a person's items (JR-0101), then what a whole record adds.
        for e in validate_person(data, self.today):
            self.issue(line, e.field, e.ja, e.en, "resident", ident)
        if data["relationship"] is None and "relationship" not in missing:
            self.issue(line, "relationship", "続柄を入力してください。",
                       "relationship is required.", "resident", ident)
        if not ident or not _ID.fullmatch(ident):
            self.issue(line, "id", "住民IDは英数字・-・_ の32文字以内です。",
                       "id must be 1-32 letters, digits, '-' or '_'.", "resident")
        elif ident in self.resident_lines:
            first = self.resident_lines[ident]
            self.issue(line, "id", f"住民IDが重複しています({first}行目)。",
                       f"Duplicate resident id (first on line {first}).", "resident", ident)
        elif ident in self.existing["resident_ids"]:
            self.issue(line, "id", "この住民IDは登録済みです。",
                       "A resident with this id is already registered.", "resident", ident)
        if ident:
            self.resident_lines.setdefault(ident, line)
        code = data["juminhyo_code"]
        if type(code) is str:
            if not is_valid_juminhyo_code(code):
                self.issue(line, "juminhyo_code", "住民票コードが不正です(11桁、検査数字)。",
                           "juminhyo_code must be 11 digits with a valid check digit.",
                           "resident", ident)
            elif code in self.code_lines:
                first = self.code_lines[code]
                self.issue(line, "juminhyo_code", f"住民票コードが重複しています({first}行目)。",
                           f"Duplicate juminhyo_code (first on line {first}).",
                           "resident", ident)
            elif code in self.existing["juminhyo_codes"]:
                self.issue(line, "juminhyo_code", "この住民票コードは登録済みです。",
                           "This juminhyo_code is already registered.", "resident", ident)
            self.code_lines.setdefault(code, line)
        status = data["status"]
        my_number = data["my_number"]
        if my_number and type(my_number) is str and status == _ACTIVE:
            # A returning resident may have a 除票 with the same number; two active may not.
            if my_number in self.my_number_lines:
                first = self.my_number_lines[my_number]
                self.issue(line, "my_number", f"個人番号が重複しています({first}行目)。",
                           f"Duplicate my_number among active residents (first on line "
                           f"{first}).", "resident", ident)
            elif my_number in self.existing["my_numbers"]:
                self.issue(line, "my_number", "この個人番号の住民が登録済みです。",
                           "An active resident with this my_number is already registered.",
                           "resident", ident)
            self.my_number_lines.setdefault(my_number, line)
        if status is not None and status not in _STATUSES:
            self.issue(line, "status", "状態は active・removed・void のいずれかです。",
                       "status must be active, removed or void.", "resident", ident)
        elif status == _REMOVED:
            if data["removed_on"] is None:
                self.issue(line, "removed_on", "除票には消除日が必要です。",
                           "A removed record needs removed_on.", "resident", ident)
            if not data["removal_reason"]:
                self.issue(line, "removal_reason", "除票には消除事由が必要です。",
                           "A removed record needs removal_reason.", "resident", ident)
        elif status == _ACTIVE and (data["removed_on"] or data["removal_reason"]):
            self.issue(line, "removed_on", "消除されていない住民に消除日・事由があります。",
                       "An active record has removed_on or removal_reason.", "resident", ident)
        version = data["version"]
        if type(version) is not int or version < 1:
            self.issue(line, "version", "版数は1以上の整数です。",
                       "version must be an integer >= 1.", "resident", ident)
        if group is None or data["household_id"] != group.id or not group.id:
            self.issue(line, "household_id", "住民の行は、その世帯の行の直後に並べてください。",
                       "A resident record must follow its own household's record.",
                       "resident", ident)
            return False
        group.members.append((ident, status, data["relationship"]))
        if len(errors) != start:
            group.ok = False
            return False
        group.rows.append(self._row(data))
        return True

    def _row(self, d: dict[str, Any]) -> dict[str, Any]:
        """The table row, normalised as model.build_resident does; keys as search_keys()."""
        (family_name, given_name, family_kana, given_kana, family_kana_key, given_kana_key,
         full_kana_key, family_name_key, given_name_key, full_name_key) = _name(
            d["family_name"], d["given_name"], d["family_kana"], d["given_kana"])
        foreign = d["foreign"]
        if foreign:
            parsed = parse_foreign(foreign)
            assert parsed is not None
            foreign = dataclasses.asdict(parsed)
            foreign["expiry"] = parsed.expiry.isoformat()
        return {
            "lgcode": self.lgcode, "id": d["id"], "juminhyo_code": d["juminhyo_code"],
            "my_number": d["my_number"] or None, "family_name": family_name,
            "given_name": given_name, "family_kana": family_kana, "given_kana": given_kana,
            "family_kana_key": family_kana_key, "given_kana_key": given_kana_key,
            "full_kana_key": full_kana_key, "family_name_key": family_name_key,
            "given_name_key": given_name_key, "full_name_key": full_name_key,
            "birth_date": d["birth_date"], "sex": d["sex"], "household_id": d["household_id"],
            "relationship": d["relationship"], "resident_since": d["resident_since"],
            "address_since": d["address_since"], "notified_on": d["notified_on"],
            "status": d["status"], "former_surname": _clean(d["former_surname"]),
            "honseki": _clean(d["honseki"]), "hittosha": _clean(d["hittosha"]),
            "previous_address": _clean(d["previous_address"]), "foreign": foreign,
            "removed_on": d["removed_on"], "removal_reason": d["removal_reason"],
            "version": d["version"],
        }


# --- the use cases ---------------------------------------------------------------------------------


class _Rollback(Exception):
    """Leaves the import's transaction without committing (all-or-nothing)."""


class RegistryMigration:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # export -------------------------------------------------------------------------------------

    def export(self, actor: StaffMember, lgcode: str, out: TextIO, fmt: str = "jsonl") -> int:
        """Writes every household and resident record; returns the number of residents.
        The export itself is recorded in the ledger with a digest of the records written."""
        actor.require(Permission.REGISTRY_EXPORT, lgcode)
        actor.require(Permission.MY_NUMBER_READ, lgcode)  # the records carry the 個人番号
        _check_format(fmt)
        at = self.clock.now()
        digest = hashlib.sha256()
        households = residents = 0
        with self.db.tenant(lgcode) as conn:
            Municipalities.get_in(conn, lgcode)
            if fmt == "jsonl":
                out.write(dumps({"format": FORMAT, "lgcode": lgcode,
                                 "exported_at": at.isoformat()}) + "\n")
                writer = None
            else:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(CSV_COLUMNS)
            for hh, members in _grouped(store.export_households(conn, lgcode),
                                        store.export_residents(conn, lgcode)):
                records = [resident_record(r) for r in members]
                household = household_record(hh) if hh is not None else None
                households += household is not None
                residents += len(records)
                # The digest is over the JSON Lines records whatever the format, so the same
                # data exported as CSV or JSON Lines has the same digest.
                text = "".join(dumps(r) + "\n" for r in
                               ([household] if household else []) + records)
                digest.update(text.encode())
                if writer is None:
                    out.write(text)
                else:
                    writer.writerows([csv_row(lgcode, household, r) for r in records]
                                     or [csv_row(lgcode, household, None)])
            ledger.append(conn, lgcode, "registry.export", uuid.uuid4().hex,
                          {"format": fmt, "households": households, "residents": residents,
                           "sha256": digest.hexdigest()}, actor.id, at)
        return residents

    # validate and import --------------------------------------------------------------------------

    def validate(self, actor: StaffMember, lgcode: str, src: TextIO, fmt: str = "jsonl", *,
                 source_lgcode: str | None = None) -> Report:
        """Checks a file against the format and this municipality's data; writes nothing."""
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        _check_format(fmt)
        report = Report(lgcode, fmt, "validate")
        with self.db.tenant(lgcode) as conn:
            towns, existing = self._context(conn, lgcode)
        source = source_lgcode or lgcode
        self._run(report, _parse(src, fmt, source), towns, existing, source, None)
        return report

    def import_(self, actor: StaffMember, lgcode: str, src: TextIO, fmt: str = "jsonl",
                partial: bool = False, *, source_lgcode: str | None = None) -> Report:
        """Imports a file. All-or-nothing unless `partial` (then each household is atomic:
        one with an error is skipped whole). `source_lgcode` accepts a file exported by
        another municipality (a merger, or a test copy); without it the file's lgcode must be
        this municipality's."""
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        _check_format(fmt)
        report = Report(lgcode, fmt, "partial" if partial else "import",
                        batch_id=uuid.uuid4().hex)
        at = self.clock.now()
        try:
            with self.db.tenant(lgcode) as conn:
                towns, existing = self._context(conn, lgcode)

                def write(chunk: _Chunk, records: list[dict[str, Any]]) -> None:
                    # The digest is under "sha256", not "digest": Registry.verify_events takes
                    # every registry.* entry with a "digest" to be a change event's.
                    store.bulk_insert(conn, chunk.households, chunk.residents)
                    ledger.append(conn, lgcode, "registry.import", str(report.batch_id), {
                        "chunk": report.chunks + 1, "rows": len(records),
                        "households": len(chunk.households), "residents": len(chunk.residents),
                        "sha256": ledger.digest(records)}, actor.id, at)
                    report.chunks += 1
                    report.imported_households += len(chunk.households)
                    report.imported_residents += len(chunk.residents)

                source = source_lgcode or lgcode
                with store.BulkWrites(conn):
                    blocked = self._run(report, _parse(src, fmt, source), towns, existing,
                                        source, write, partial)
                if blocked or (report.errors and not partial):
                    raise _Rollback
        except _Rollback:
            report.imported_households = report.imported_residents = report.chunks = 0
        except IntegrityError as exc:
            # Another writer registered the same id or code between validation and commit.
            raise Conflict("取込み中に同じIDまたは住民票コードが登録されました。何も取り込んでいません。",
                           "A record with the same id or code was registered meanwhile; "
                           "nothing was imported.") from exc
        return report

    # internals ------------------------------------------------------------------------------------

    def _context(self, conn: Any, lgcode: str) -> tuple[dict[str, str], dict[str, set[str]]]:
        Municipalities.get_in(conn, lgcode)
        return Municipalities.towns_in(conn, lgcode), store.registry_identifiers(conn, lgcode)

    def _run(self, report: Report, records: Iterable[tuple[int, Any]], towns: dict[str, str],
             existing: dict[str, set[str]], source_lgcode: str, write: Any,
             partial: bool = False) -> bool:
        """Reads every record, reporting each error; hands complete chunks of valid
        households to `write` (None: validate only). True when the file as a whole is
        refused (bad header, wrong municipality)."""
        started = time.perf_counter()
        checker = _Checker(report, report.lgcode, source_lgcode, today_jst(self.clock), towns,
                           existing)
        chunk, chunk_records = _Chunk(), []
        group: _Group | None = None
        first = True

        def close(g: _Group | None) -> None:
            nonlocal chunk, chunk_records
            if g is None:
                return
            good = checker.finish(g)
            if not good:
                report.bad_households += 1
            # All-or-nothing stops collecting rows at the first error; the report goes on.
            if write is None or checker.blocked or not good or (report.errors and not partial):
                return
            assert g.row is not None
            chunk.households.append(g.row)
            chunk.residents.extend(g.rows)
            chunk_records.append(household_record(g.row))
            chunk_records.extend(resident_record(r) for r in g.rows)
            if len(chunk.residents) >= CHUNK_RESIDENTS:
                write(chunk, chunk_records)
                chunk, chunk_records = _Chunk(), []

        for line, data in records:
            if isinstance(data, _Bad):
                checker.issue(line, data.field, data.ja, data.en, "header" if first else "file")
                if data.fatal:
                    checker.blocked = True
                    break
                if group is not None:
                    group.ok = False
                continue
            if first:
                first = False
                checker.header(line, data)
                if checker.stop:
                    break
                continue
            kind = data.get("type") if isinstance(data, dict) else None
            if kind == "resident":
                checker.resident(line, data, group)
            elif kind == "household":
                close(group)
                group = checker.household(line, data)
            else:
                checker.issue(line, "type", "type は household か resident です。",
                              "type must be 'household' or 'resident'.", "file")
                if group is not None:
                    group.ok = False
        else:
            if first:
                checker.issue(1, "format", "ヘッダー行がありません。", "The header line is missing.",
                              "header")
                checker.blocked = True
        close(group)
        if write is not None and chunk.households and not checker.blocked and (
                partial or not report.errors):
            write(chunk, chunk_records)
        report.seconds = time.perf_counter() - started
        return checker.blocked


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValidationFailed([FieldError("format", "形式は jsonl か csv です。",
                                           "format must be 'jsonl' or 'csv'.")])


def _parse(src: TextIO, fmt: str, lgcode: str) -> Iterator[tuple[int, Any]]:
    return _jsonl_records(src) if fmt == "jsonl" else _csv_records(src, lgcode)


def _grouped(households: Iterable[Any], residents: Iterable[Any]
             ) -> Iterator[tuple[Any, list[Any]]]:
    """Merges the two id-ordered cursors into (household, its residents). A resident whose
    household is missing comes out with None, so the import names the inconsistency."""
    it = iter(residents)
    pending = next(it, None)
    for hh in households:
        hid = hh["id"]
        while pending is not None and pending["household_id"] < hid:
            yield None, [pending]
            pending = next(it, None)
        members = []
        while pending is not None and pending["household_id"] == hid:
            members.append(pending)
            pending = next(it, None)
        yield hh, members
    while pending is not None:
        yield None, [pending]
        pending = next(it, None)
