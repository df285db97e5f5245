"""Open data, pure: the standard dataset schemas (Frictionless-style Table Schemas under
`schemas/`), decoding an uploaded CSV (UTF-8 or Shift_JIS, detected) and validating it, with
every bad row and field reported. Standard library and `kiban.core` only."""

from __future__ import annotations

import csv
import io
import json
import math
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


def is_extra_column(name: str) -> bool:
    """A municipality's own column name: `x-` then 1 to 60 characters, no space or comma."""
    return bool(_EXTRA.match(name))


def read_table(data: bytes) -> tuple[list[str], list[list[str]]] | None:
    """The header and rows of an upload as text, for showing it in a form: blank lines
    dropped, so that row N here is row N in `check_csv`'s problems (the header is row 1).
    None when the file cannot be read as CSV at all (size, encoding, NUL, quoting)."""
    if len(data) > MAX_UPLOAD_BYTES:
        return None
    try:
        text, _ = decode(data)
        if "\x00" in text:
            return None
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except (ValueError, csv.Error):
        return None
    rows = [[clean(c) for c in r] for r in rows if any(c.strip() for c in r)]
    if not rows:
        return None
    return [h.strip() for h in rows[0]], rows[1:]


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


# Generated dataset 地域・年齢別人口: small-cell suppression

AGE_BANDS = tuple(range(0, 101, 5))  # 0-4 ... 95-99, then 100+
TOTAL = "計"
WHOLE_AREA = "全域"
SEXES = ("総数", "男", "女")
SUPPRESSION_THRESHOLD = 5  # a count from 1 to 4 could single out a person: never published


def band_label(band: int | str) -> str:
    if band == TOTAL:
        return TOTAL
    assert isinstance(band, int)
    return "100歳以上" if band >= 100 else f"{band}-{band + 4}歳"


@dataclass
class PopulationTable:
    """Counts by area × age band × sex with every margin (area 全域, band 計, sex 総数), and
    which cells are suppressed."""
    areas: list[str]
    values: dict[tuple[str, int | str, str], int]
    suppressed: set[tuple[str, int | str, str]]

    def relations(self) -> list[tuple[tuple[str, int | str, str], list[tuple[str, int | str, str]]]]:
        """Every published sum: (total cell, its parts)."""
        bands: list[int | str] = [*AGE_BANDS, TOTAL]
        areas = [*self.areas, WHOLE_AREA]
        out: list[tuple[tuple[str, int | str, str], list[tuple[str, int | str, str]]]] = []
        for a in areas:
            for b in bands:
                out.append(((a, b, "総数"), [(a, b, "男"), (a, b, "女")]))
        for a in areas:
            for s in SEXES:
                out.append(((a, TOTAL, s), [(a, b, s) for b in AGE_BANDS]))
        for b in bands:
            for s in SEXES:
                out.append(((WHOLE_AREA, b, s), [(a, b, s) for a in self.areas]))
        return out


def population_table(counts: list[tuple[str, int, str, int]],
                     threshold: int = SUPPRESSION_THRESHOLD) -> PopulationTable:
    """Builds the table from (area, band, sex code, n) (sex "1" male, anything else female, as
    the registry's pyramid), then suppresses:

    1. primary: every cell, margins included, with 0 < n < threshold;
    2. complementary: while some published sum (total = parts) has exactly one suppressed
       cell, which the others would give away by subtraction, suppress one more: the smallest
       non-zero part still shown (else any part, else the total). Repeated until no sum has a
       single suppressed cell, so no suppressed count equals published ones added or taken
       away within one sum."""
    areas = sorted({a for a, _, _, _ in counts})
    values: dict[tuple[str, int | str, str], int] = {}
    bands: list[int | str] = [*AGE_BANDS, TOTAL]
    for a in [*areas, WHOLE_AREA]:
        for b in bands:
            for s in SEXES:
                values[(a, b, s)] = 0
    for area, band, sex, n in counts:
        band = min(max(band, 0) // 5 * 5, 100)
        for a in (area, WHOLE_AREA):
            for b in (band, TOTAL):
                for s in ("総数", "男" if sex == "1" else "女"):
                    values[(a, b, s)] += n
    table = PopulationTable(areas, values, {k for k, v in values.items() if 0 < v < threshold})
    relations = table.relations()
    changed = True
    while changed:
        changed = False
        for total, parts in relations:
            cells = [total, *parts]
            hidden = [c for c in cells if c in table.suppressed]
            if len(hidden) != 1:
                continue
            shown = [c for c in parts if c not in table.suppressed]
            nonzero = [c for c in shown if values[c] > 0]
            pick = (min(nonzero, key=lambda c: values[c]) if nonzero
                    else shown[0] if shown else total)
            if pick in table.suppressed:
                continue
            table.suppressed.add(pick)
            changed = True
    return table


def population_records(table: PopulationTable, *, lgcode: str, municipality: str,
                       as_of: str, area_names: dict[str, str]) -> list[dict[str, Any]]:
    """The table as records of the 地域・年齢別人口 schema; a suppressed count is empty
    (None) and 備考 says so."""
    out: list[dict[str, Any]] = []
    bands: list[int | str] = [TOTAL, *AGE_BANDS]
    for area in [WHOLE_AREA, *table.areas]:
        for band in bands:
            row: dict[str, Any] = {
                "全国地方公共団体コード": lgcode, "ID": f"{area if area != WHOLE_AREA else lgcode}-"
                f"{band if band != TOTAL else 'total'}", "地方公共団体名": municipality,
                "調査年月日": as_of, "地域コード": lgcode if area == WHOLE_AREA else area,
                "地域名": WHOLE_AREA if area == WHOLE_AREA else area_names.get(area, area),
                "年齢": band_label(band)}
            hidden = False
            for s in SEXES:
                key = (area, band, s)
                if key in table.suppressed:
                    row[s] = None
                    hidden = True
                else:
                    row[s] = table.values[key]
            row["備考"] = "秘匿あり" if hidden else None
            out.append(row)
    return out


# Downloads

def to_geojson(records: list[dict[str, Any]], columns: list[str]) -> dict[str, Any]:
    """Records with both 緯度 and 経度 as GeoJSON points (RFC 7946: longitude first); the
    others are left out, and counted in `x-without-position`."""
    features = []
    for r in records:
        lat, lon = r.get("緯度"), r.get("経度")
        if lat is None or lon is None:
            continue
        features.append({"type": "Feature", "id": r.get("ID"),
                         "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": {c: r.get(c) for c in columns}})
    return {"type": "FeatureCollection", "features": features,
            "x-without-position": len(records) - len(features)}


# Developer access: rate limits

class RateLimiter:
    """Fixed one-minute windows per caller (an API key's id, or an anonymous client's
    address). In memory, per process: with N processes a caller gets at most N times its
    limit, which is stated in docs/opendata.md. `now` is seconds (monotonic)."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._counts: dict[str, tuple[int, int]] = {}

    def admit(self, caller: str, limit: int, now: float) -> float:
        """0 if the request may go ahead (and counts it), else the seconds until it may."""
        slot = int(now // self.window)
        current, count = self._counts.get(caller, (slot, 0))
        if current != slot:
            current, count = slot, 0
        if count >= limit:
            return (slot + 1) * self.window - now
        self._counts[caller] = (current, count + 1)
        if len(self._counts) > 100_000:  # forget callers of past windows
            self._counts = {k: v for k, v in self._counts.items() if v[0] == slot}
        return 0.0


# Catalog: distance search and the map

EARTH_RADIUS_KM = 6371.0088


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, km: float) -> tuple[float, float, float, float]:
    """(south, west, north, east) enclosing every point within `km` (a cheap SQL pre-filter;
    distance_km decides)."""
    dlat = math.degrees(km / EARTH_RADIUS_KM)
    dlon = math.degrees(km / (EARTH_RADIUS_KM * max(math.cos(math.radians(lat)), 0.01)))
    return lat - dlat, lon - dlon, lat + dlat, lon + dlon


@dataclass(frozen=True)
class MapPoint:
    x: float
    y: float
    label: str
    href: str
    group: int


def map_layout(points: list[tuple[float, float, str, str, int]], width: int = 640,
               height: int = 480, margin: int = 30,
               outlines: list[tuple[str, bool, list[list[tuple[float, float]]]]] | None = None
               ) -> dict[str, Any]:
    """Points (lat, lon, label, link, group) placed on an SVG of `width` × `height` with an
    equirectangular projection scaled by cos(latitude), so distances look right; plus a
    graticule (lines and labels every `step` degrees) and the municipality outlines (name,
    approximate, rings of (lon, lat)) as SVG paths under the points. No tiles, no outside
    requests."""
    if not points:
        return {"points": [], "lines": [], "shapes": [], "width": width, "height": height}
    outlines = outlines or []
    lats = [p[0] for p in points] + [y for _, _, rings in outlines for r in rings for _, y in r]
    lons = [p[1] for p in points] + [x for _, _, rings in outlines for r in rings for x, _ in r]
    pad = 0.005
    south, north = min(lats) - pad, max(lats) + pad
    west, east = min(lons) - pad, max(lons) + pad
    k = math.cos(math.radians((south + north) / 2))
    span_x, span_y = (east - west) * k, north - south
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)
    ox = margin + ((width - 2 * margin) - span_x * scale) / 2
    oy = margin + ((height - 2 * margin) - span_y * scale) / 2

    def place(lat: float, lon: float) -> tuple[float, float]:
        return (round(ox + (lon - west) * k * scale, 1), round(oy + (north - lat) * scale, 1))

    placed = [MapPoint(*place(lat, lon), label, href, group)
              for lat, lon, label, href, group in points]
    shapes = []
    for name, rough, rings in outlines:
        path = []
        for ring in rings:
            xy = [place(y, x) for x, y in ring]
            path.append("M" + "L".join(f"{px} {py}" for px, py in xy) + "Z")
        shapes.append({"name": name, "approximate": rough, "d": "".join(path)})
    raw = max(east - west, north - south) / 5
    step = min((s for s in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
                if s >= raw), default=5.0)
    lines = []
    value = math.ceil(west / step) * step
    while value <= east:
        x, _ = place(north, value)
        lines.append({"x1": x, "y1": oy, "x2": x, "y2": round(oy + span_y * scale, 1),
                      "label": f"{value:.3f}°E", "vertical": True})
        value += step
    value = math.ceil(south / step) * step
    while value <= north:
        _, y = place(value, west)
        lines.append({"x1": ox, "y1": y, "x2": round(ox + span_x * scale, 1), "y2": y,
                      "label": f"{value:.3f}°N", "vertical": False})
        value += step
    return {"points": placed, "lines": lines, "shapes": shapes, "width": width, "height": height,
            "frame": {"x": round(ox, 1), "y": round(oy, 1), "w": round(span_x * scale, 1),
                      "h": round(span_y * scale, 1)}}
