"""Municipality outlines for the catalog's SVG map, pure (standard library and `kiban.core`).

An outline is one municipality's boundary as outer rings of (longitude, latitude), simplified
for drawing. They come from two places:

- `import_n03`: the 国土数値情報 行政区域 (N03) GeoJSON of the Ministry of Land, Infrastructure,
  Transport and Tourism, one feature per polygon with N03_001 (都道府県名), N03_003 (郡・政令
  都市名), N03_004 (市区町村名) and N03_007 (行政区域コード, 5 digits without check digit).
  Features are grouped by code, simplified (Douglas–Peucker) and small islands dropped; the
  wards of a designated city (政令指定都市) are also merged into the city.
- `approximate`: when no boundary data is at hand, a convex hull of points known to lie in the
  municipality (its published facilities), widened by a margin. Marked `approximate`: it is
  not the boundary, and the map says so.

Holes (enclaves) are not kept: the map draws the outer rings only.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiban.core.checkdigits import lgcode_check_digit

BUNDLED = Path(__file__).parent / "outlines"
Ring = list[tuple[float, float]]  # (longitude, latitude), closed (first point == last)
DEFAULT_TOLERANCE = 0.0005  # degrees, about 50 m: plenty for a 640-pixel map
# 政令指定都市: N03 has polygons for the wards only; their union is the city. 5-digit codes.
DESIGNATED_CITIES = {
    "札幌市": "01100", "仙台市": "04100", "さいたま市": "11100", "千葉市": "12100",
    "横浜市": "14100", "川崎市": "14130", "相模原市": "14150", "新潟市": "15100",
    "静岡市": "22100", "浜松市": "22130", "名古屋市": "23100", "京都市": "26100",
    "大阪市": "27100", "堺市": "27140", "神戸市": "28100", "岡山市": "33100",
    "広島市": "34100", "北九州市": "40100", "福岡市": "40130", "熊本市": "43100",
}


class OutlineError(ValueError):
    """The file is not usable N03 GeoJSON (message in Japanese and English)."""

    def __init__(self, ja: str, en: str) -> None:
        super().__init__(en)
        self.ja = ja
        self.en = en


@dataclass
class Outline:
    lgcode: str  # 6 digits, check digit included
    name: str
    source: str
    approximate: bool
    rings: list[Ring] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"lgcode": self.lgcode, "name": self.name, "source": self.source,
                "approximate": self.approximate,
                "rings": [[[round(x, 5), round(y, 5)] for x, y in r] for r in self.rings]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outline:
        return cls(lgcode=str(data["lgcode"]), name=str(data.get("name", "")),
                   source=str(data.get("source", "")),
                   approximate=bool(data.get("approximate", False)),
                   rings=[[(float(x), float(y)) for x, y in r] for r in data["rings"]])


def lgcode6(code5: str) -> str:
    return code5 + str(lgcode_check_digit(code5))


# Geometry

def ring_area(ring: Ring) -> float:
    """Signed area in square degrees (shoelace)."""
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring)) / 2


def _segment_distance(p: tuple[float, float], a: tuple[float, float],
                      b: tuple[float, float]) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    if dx == 0 and dy == 0:
        return math.hypot(px - ax, py - ay)
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def simplify(ring: Ring, tolerance: float) -> Ring:
    """Douglas–Peucker on a closed ring (iterative, so long coastlines do not recurse deep)."""
    if len(ring) < 5 or tolerance <= 0:
        return list(ring)
    keep = [False] * len(ring)
    # Split the ring at its first point and the point farthest from it.
    far = max(range(len(ring)), key=lambda i: math.hypot(ring[i][0] - ring[0][0],
                                                         ring[i][1] - ring[0][1]))
    keep[0] = keep[-1] = keep[far] = True
    stack = [(0, far), (far, len(ring) - 1)]
    while stack:
        start, end = stack.pop()
        if end - start < 2:
            continue
        index, worst = start, -1.0
        for i in range(start + 1, end):
            d = _segment_distance(ring[i], ring[start], ring[end])
            if d > worst:
                index, worst = i, d
        if worst > tolerance:
            keep[index] = True
            stack += [(start, index), (index, end)]
    out = [p for p, k in zip(ring, keep, strict=True) if k]
    if out[0] != out[-1]:
        out.append(out[0])
    return out


def convex_hull(points: Iterable[tuple[float, float]]) -> Ring:
    """Andrew's monotone chain; a closed ring, counter-clockwise."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return [*pts, pts[0]] if pts else []

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: Ring = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: Ring = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    return [*hull, hull[0]]


def approximate(lgcode: str, name: str, points: Iterable[tuple[float, float]],
                margin_km: float = 0.3, source: str = "") -> Outline | None:
    """An approximate outline from (latitude, longitude) points that lie in the municipality:
    every point moved `margin_km` outward in eight directions, then the convex hull. Not a
    boundary. None without points."""
    pts = [(lat, lon) for lat, lon in points if lat is not None and lon is not None]
    if not pts:
        return None
    lat0 = sum(p[0] for p in pts) / len(pts)
    dlat = margin_km / 111.32
    dlon = dlat / max(math.cos(math.radians(lat0)), 0.01)
    spread = [(lon + dlon * math.cos(a), lat + dlat * math.sin(a))
              for lat, lon in pts for a in (k * math.pi / 4 for k in range(8))]
    return Outline(lgcode, name, source or "推定: 公開された施設の位置の凸包(境界ではない)",
                   True, [convex_hull(spread)])


# N03 GeoJSON

def _polygons(geometry: dict[str, Any]) -> list[Ring]:
    """The outer rings of a Polygon or MultiPolygon, as (lon, lat)."""
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon" and isinstance(coords, list):
        parts = [coords]
    elif kind == "MultiPolygon" and isinstance(coords, list):
        parts = coords
    else:
        return []
    rings: list[Ring] = []
    for polygon in parts:
        if not polygon:
            continue
        ring = [(float(p[0]), float(p[1])) for p in polygon[0]]
        if len(ring) >= 4:
            if ring[0] != ring[-1]:
                ring.append(ring[0])
            rings.append(ring)
    return rings


def import_n03(data: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE,
               min_area_ratio: float = 0.002, source: str = "国土数値情報(行政区域)N03",
               only: set[str] | None = None) -> dict[str, Outline]:
    """Outlines by 6-digit 地方公共団体コード from an N03 FeatureCollection (GeoJSON, longitude
    first). `only`: keep just these codes. Rings smaller than `min_area_ratio` of the largest
    ring of the same municipality (small islands, slivers) are dropped."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise OutlineError("GeoJSON の FeatureCollection ではありません。",
                           "not a GeoJSON FeatureCollection")
    rings: dict[str, list[Ring]] = {}
    names: dict[str, str] = {}
    seen_code = False
    for feature in data["features"]:
        props = feature.get("properties") or {} if isinstance(feature, dict) else {}
        code = str(props.get("N03_007") or "").strip()
        if not (len(code) == 5 and code.isascii() and code.isdigit()):
            continue  # 所属未定地 and the like have no code
        seen_code = True
        geometry = feature.get("geometry") or {}
        found = _polygons(geometry) if isinstance(geometry, dict) else []
        city, local = str(props.get("N03_003") or ""), str(props.get("N03_004") or "")
        targets = [(code, local or city)]
        if city in DESIGNATED_CITIES and local.endswith("区"):
            targets.append((DESIGNATED_CITIES[city], city))
        for target, name in targets:
            lg = lgcode6(target)
            if only is not None and lg not in only:
                continue
            rings.setdefault(lg, []).extend(found)
            names.setdefault(lg, name)
    if not seen_code:
        raise OutlineError("N03 の行政区域コード(N03_007)を持つ地物がありません。",
                           "no feature has an N03_007 administrative code")
    out: dict[str, Outline] = {}
    for lg, found in rings.items():
        simplified = [simplify(r, tolerance) for r in found]
        simplified = [r for r in simplified if len(r) >= 4]
        if not simplified:
            continue
        largest = max(abs(ring_area(r)) for r in simplified)
        kept = [r for r in simplified if abs(ring_area(r)) >= largest * min_area_ratio]
        out[lg] = Outline(lg, names[lg], source, False, kept)
    return out


# Storage: one JSON file per municipality

def save(outline: Outline, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{outline.lgcode}.json"
    path.write_text(json.dumps(outline.as_dict(), ensure_ascii=False, separators=(",", ":")),
                    encoding="utf-8")
    return path


def load(directories: Iterable[Path]) -> dict[str, Outline]:
    """Every outline in the directories; a later directory's file replaces an earlier one's
    for the same municipality. Unreadable files are skipped."""
    out: dict[str, Outline] = {}
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.json")):
            try:
                found = Outline.from_dict(json.loads(path.read_text("utf-8")))
            except (ValueError, KeyError, TypeError):
                continue
            out[found.lgcode] = found
    return out
