"""Open data, pure: the standard dataset schemas (Frictionless-style Table Schemas under
`schemas/`), decoding an uploaded CSV (UTF-8 or Shift_JIS, detected) and validating it, with
every bad row and field reported. Standard library and `kiban.core` only."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from kiban.core.text import to_nfc as clean

SCHEMA_DIR = Path(__file__).parent / "schemas"
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
# A municipality's own columns: `x-` then a name, e.g. `x-駐輪場台数`. They are kept with
# the record but are not part of the common (standard) view.
EXTRA_PREFIX = "x-"
LAT_RANGE = (20.0, 46.0)  # Japan, 沖ノ鳥島 to 択捉島
LON_RANGE = (122.0, 154.0)  # 与那国島 to 南鳥島
_TIME = re.compile(r"^([01]\d|2[0-4]):[0-5]\d(:[0-5]\d)?$")
_EXTRA = re.compile(r"^x-[^\s,]{1,60}$")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str
    confirmed: bool
    constraints: dict[str, Any]


@dataclass(frozen=True)
class Schema:
    name: str
    title: str
    version: str
    category: str
    license: str
    description: str
    fields: tuple[Field, ...]

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((SCHEMA_DIR / f"{self.name}.json").read_text("utf-8"))
        return data


@dataclass(frozen=True)
class Problem:
    """One bad row and field (row 0: the file or its header)."""
    row: int
    field: str
    ja: str
    en: str


@dataclass
class Checked:
    encoding: str
    columns: list[str]
    extra_columns: list[str]
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _schema_from(data: dict[str, Any]) -> Schema:
    fields = tuple(
        Field(name=f["name"], type=f.get("type", "string"),
              required=bool(f.get("constraints", {}).get("required")),
              description=f.get("description", ""), confirmed=bool(f.get("x-confirmed", True)),
              constraints=dict(f.get("constraints", {})))
        for f in data["fields"])
    return Schema(name=data["name"], title=data["title"], version=data["version"],
                  category=data.get("category", ""), license=data.get("license", ""),
                  description=data.get("description", ""), fields=fields)


def load_schemas(directory: Path = SCHEMA_DIR) -> dict[str, Schema]:
    """Every standard schema, by name."""
    out: dict[str, Schema] = {}
    for path in sorted(directory.glob("*.json")):
        schema = _schema_from(json.loads(path.read_text("utf-8")))
        out[schema.name] = schema
    return out


def decode(data: bytes) -> tuple[str, str]:
    """The text of an upload and the encoding found: UTF-8 (with or without BOM), else
    Shift_JIS (as cp932, Windows' superset that Excel writes). Neither: ValueError."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932"), "shift_jis"
    except UnicodeDecodeError as exc:
        raise ValueError("neither UTF-8 nor Shift_JIS") from exc


def _check_value(f: Field, raw: str, row: int, problems: list[Problem]) -> Any:
    def bad(ja: str, en: str) -> None:
        problems.append(Problem(row, f.name, f"{row}行目「{f.name}」: {ja}", f"row {row}, {f.name}: {en}"))

    value = clean(raw).strip()
    if value == "":
        if f.required:
            bad("必須項目が空です。", "required value is empty")
        return None
    if f.type == "date":
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            bad(f"日付が不正です({value})。YYYY-MM-DD で記入してください。",
                f"invalid date {value!r}, expected YYYY-MM-DD")
            return None
        return value
    if f.type == "time":
        if not _TIME.match(value):
            bad(f"時刻が不正です({value})。HH:MM で記入してください。",
                f"invalid time {value!r}, expected HH:MM")
            return None
        return value
    if f.type in ("number", "integer"):
        try:
            number: float | int = int(value) if f.type == "integer" else float(value)
        except ValueError:
            bad(f"数値ではありません({value})。", f"not a {f.type}: {value!r}")
            return None
        if f.type == "number" and number != number:  # NaN
            bad("数値ではありません。", "not a number")
            return None
        minimum = f.constraints.get("minimum")
        if minimum is not None and number < minimum:
            bad(f"{minimum} 以上でなければなりません。", f"must be at least {minimum}")
            return None
        return number
    pattern = f.constraints.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        bad(f"形式が不正です({value})。", f"{value!r} does not match {pattern}")
        return None
    enum = f.constraints.get("enum")
    if enum and value not in enum:
        bad(f"値が不正です({value})。使える値: {', '.join(v for v in enum if v)}",
            f"{value!r} is not one of {[v for v in enum if v]}")
        return None
    return value


def check_csv(schema: Schema, data: bytes, lgcode: str) -> Checked:
    """Decodes and validates an upload against `schema` for municipality `lgcode`. Every
    problem is collected; the caller publishes nothing unless `ok`."""
    if len(data) > MAX_UPLOAD_BYTES:
        return Checked("", [], [], problems=[Problem(
            0, "file", f"ファイルが大きすぎます({len(data)} バイト、上限 {MAX_UPLOAD_BYTES} バイト)。",
            f"upload too large: {len(data)} bytes, limit {MAX_UPLOAD_BYTES}")])
    try:
        text, encoding = decode(data)
    except ValueError:
        return Checked("", [], [], problems=[Problem(
            0, "file", "文字コードが UTF-8 でも Shift_JIS でもありません。",
            "the file is neither UTF-8 nor Shift_JIS")])
    if "\x00" in text:
        return Checked(encoding, [], [], problems=[Problem(
            0, "file", "CSV ファイルではありません(NUL 文字)。", "not a CSV file (NUL byte)")])
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        return Checked(encoding, [], [], problems=[Problem(
            0, "file", f"CSV の形式が不正です({exc})。", f"malformed CSV: {exc}")])
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return Checked(encoding, [], [], problems=[Problem(
            0, "file", "見出し行がありません。", "the file has no header row")])
    header = [clean(h).strip() for h in rows[0]]
    known = set(schema.field_names)
    problems: list[Problem] = []
    extras: list[str] = []
    seen: set[str] = set()
    for h in header:
        if h in seen:
            problems.append(Problem(0, h, f"列「{h}」が重複しています。", f"duplicate column {h!r}"))
        seen.add(h)
        if h in known:
            continue
        if _EXTRA.match(h):
            extras.append(h)
        else:
            problems.append(Problem(
                0, h, f"列「{h}」は標準の列ではありません。独自の列は「{EXTRA_PREFIX}」で始めてください。",
                f"unknown column {h!r}: a municipality's own columns start with {EXTRA_PREFIX!r}"))
    for f in schema.fields:
        if f.required and f.name not in seen:
            problems.append(Problem(0, f.name, f"必須の列「{f.name}」がありません。",
                                    f"required column {f.name!r} is missing"))
    if problems:
        return Checked(encoding, header, extras, problems=problems)
    if len(rows) - 1 > MAX_ROWS:
        return Checked(encoding, header, extras, problems=[Problem(
            0, "file", f"行数が多すぎます(上限 {MAX_ROWS} 行)。", f"too many rows (limit {MAX_ROWS})")])
    checked = Checked(encoding, header, extras)
    by_name = {f.name: f for f in schema.fields}
    ids: dict[str, int] = {}
    for index, row in enumerate(rows[1:], start=2):  # row numbers as in a spreadsheet
        if len(row) != len(header):
            checked.problems.append(Problem(
                index, "row", f"{index}行目: 列の数が見出しと違います({len(row)} 列、見出しは {len(header)} 列)。",
                f"row {index}: {len(row)} cells, header has {len(header)}"))
            continue
        cells = dict(zip(header, row, strict=True))
        record: dict[str, Any] = {}
        for f in schema.fields:
            record[f.name] = _check_value(f, cells.get(f.name, ""), index, checked.problems)
        for name in extras:
            record[name] = clean(cells[name]).strip() or None
        code = record.get("全国地方公共団体コード")
        if code is not None and code != lgcode:
            checked.problems.append(Problem(
                index, "全国地方公共団体コード",
                f"{index}行目「全国地方公共団体コード」: 公開する団体({lgcode})と違います({code})。",
                f"row {index}, 全国地方公共団体コード: {code} is not the publishing municipality {lgcode}"))
        _check_position(record, by_name, index, checked.problems)
        rid = record.get("ID")
        if rid is not None:
            if rid in ids:
                checked.problems.append(Problem(
                    index, "ID", f"{index}行目「ID」: {ids[rid]}行目と重複しています({rid})。",
                    f"row {index}, ID: {rid!r} repeats row {ids[rid]}"))
            else:
                ids[rid] = index
        checked.records.append(record)
    if not checked.problems and not checked.records:
        checked.problems.append(Problem(0, "file", "データ行がありません。", "the file has no data rows"))
    return checked


def _check_position(record: dict[str, Any], fields: dict[str, Field], row: int,
                    problems: list[Problem]) -> None:
    if "緯度" not in fields or "経度" not in fields:
        return
    if any(p.row == row and p.field in ("緯度", "経度") for p in problems[-3:]):
        return  # a cell already reported as no number
    lat, lon = record.get("緯度"), record.get("経度")
    if (lat is None) != (lon is None):
        name = "緯度" if lat is None else "経度"
        problems.append(Problem(row, name, f"{row}行目「{name}」: 緯度と経度は両方記入してください。",
                                f"row {row}, {name}: give both latitude and longitude"))
        return
    if lat is None or lon is None:
        return
    if not LAT_RANGE[0] <= lat <= LAT_RANGE[1]:
        problems.append(Problem(row, "緯度", f"{row}行目「緯度」: 日本の範囲外です({lat})。",
                                f"row {row}, 緯度: {lat} is outside Japan"))
    if not LON_RANGE[0] <= lon <= LON_RANGE[1]:
        problems.append(Problem(row, "経度", f"{row}行目「経度」: 日本の範囲外です({lon})。",
                                f"row {row}, 経度: {lon} is outside Japan"))


def to_csv(columns: list[str], records: list[dict[str, Any]]) -> str:
    """Records back to CSV text (UTF-8 is the caller's choice), in `columns` order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for r in records:
        writer.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return out.getvalue()


def matches_text(record: dict[str, Any], query: str) -> bool:
    """Every word of `query` appears in some value of the record (case-folded)."""
    hay = " ".join(str(v) for v in record.values() if v is not None).casefold()
    return all(word.casefold() in hay for word in query.split())
