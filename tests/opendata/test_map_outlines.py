"""Municipality outlines on the catalog's SVG map: N03 GeoJSON import (codes with check digit,
designated cities from their wards, simplification, small islands dropped), the CLI, the
bundled outlines, and the map drawing a stored outline or an approximate one (labelled)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kiban.cli import app as cli_app
from kiban.opendata import model, outlines
from kiban.opendata.service import OUTLINES_ENV, OpenData
from kiban.web.app import create_app
from kiban_testkit import LG_A, World

SAMPLES = Path(__file__).parent / "samples"
runner = CliRunner()


def _circle(lon: float, lat: float, r: float, n: int = 200) -> list[list[float]]:
    ring = [[lon + r * math.cos(2 * math.pi * k / n), lat + r * math.sin(2 * math.pi * k / n)]
            for k in range(n)]
    return [*ring, ring[0]]


def _feature(code: str | None, city: str | None, name: str, rings: list[list[list[float]]],
             multi: bool = False) -> dict[str, object]:
    geometry = ({"type": "MultiPolygon", "coordinates": [[r] for r in rings]} if multi
                else {"type": "Polygon", "coordinates": [rings[0]]})
    return {"type": "Feature", "geometry": geometry,
            "properties": {"N03_001": "東京都", "N03_002": None, "N03_003": city,
                           "N03_004": name, "N03_007": code}}


N03 = {"type": "FeatureCollection", "features": [
    _feature("13101", None, "千代田区",
             [_circle(139.75, 35.69, 0.02), _circle(139.80, 35.60, 0.0005)], multi=True),
    _feature("14101", "横浜市", "鶴見区", [_circle(139.68, 35.51, 0.03)]),
    _feature("14104", "横浜市", "中区", [_circle(139.64, 35.44, 0.02)]),
    _feature(None, None, "所属未定地", [_circle(139.9, 35.5, 0.01)]),
]}


def test_import_n03_groups_simplifies_and_merges_wards() -> None:
    found = outlines.import_n03(N03)
    assert set(found) == {"131016", "141011", "141046", "141003"}  # check digits added
    chiyoda = found["131016"]
    assert chiyoda.name == "千代田区" and not chiyoda.approximate
    assert len(chiyoda.rings) == 1  # the tiny island is dropped
    assert 8 <= len(chiyoda.rings[0]) < 201  # simplified, still closed
    assert chiyoda.rings[0][0] == chiyoda.rings[0][-1]
    assert found["141003"].name == "横浜市" and len(found["141003"].rings) == 2  # its wards
    only = outlines.import_n03(N03, only={"141003"})
    assert set(only) == {"141003"}
    with pytest.raises(outlines.OutlineError):
        outlines.import_n03({"type": "Feature"})
    with pytest.raises(outlines.OutlineError):
        outlines.import_n03({"type": "FeatureCollection", "features": [
            _feature(None, None, "所属未定地", [_circle(139.9, 35.5, 0.01)])]})


def test_approximate_outline_contains_the_points() -> None:
    points = [(35.69, 139.75), (35.70, 139.76), (35.68, 139.77)]
    found = outlines.approximate("131016", "千代田区", points, margin_km=0.3)
    assert found is not None and found.approximate and "推定" in found.source
    ring = found.rings[0]
    lons, lats = [x for x, _ in ring], [y for _, y in ring]
    assert min(lats) < 35.68 and max(lats) > 35.70 and min(lons) < 139.75 and max(lons) > 139.77
    assert outlines.approximate("131016", "x", []) is None


def test_bundled_outlines_cover_the_demo_municipalities() -> None:
    bundled = outlines.load([outlines.BUNDLED])
    assert {"131016", "141003", "011002"} <= set(bundled)
    for code in ("131016", "141003", "011002"):
        found = bundled[code]
        assert found.rings and all(r[0] == r[-1] for r in found.rings)
        for lon, lat in found.rings[0]:
            assert model.LAT_RANGE[0] <= lat <= model.LAT_RANGE[1]
            assert model.LON_RANGE[0] <= lon <= model.LON_RANGE[1]


def test_cli_import_and_bad_files(tmp_path: Path) -> None:
    source = tmp_path / "N03.geojson"
    source.write_text(json.dumps(N03, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "outlines"
    done = runner.invoke(cli_app, ["opendata", "outlines", "import", str(source),
                                   "--out", str(out), "--lgcode", "131016"])
    assert done.exit_code == 0, done.output
    assert "131016\t千代田区" in done.output
    assert [p.name for p in out.iterdir()] == ["131016.json"]
    assert outlines.load([out])["131016"].source.startswith("国土数値情報")
    broken = tmp_path / "broken.geojson"
    broken.write_text("{not json", encoding="utf-8")
    refused = runner.invoke(cli_app, ["opendata", "outlines", "import", str(broken),
                                      "--out", str(out)])
    assert refused.exit_code == 2 and "GeoJSON" in refused.output
    wrong = tmp_path / "wrong.geojson"
    wrong.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    refused = runner.invoke(cli_app, ["opendata", "outlines", "import", str(wrong),
                                      "--out", str(out)])
    assert refused.exit_code == 2 and "N03_007" in refused.output
    none = runner.invoke(cli_app, ["opendata", "outlines", "import", str(source),
                                   "--out", str(out), "--lgcode", "999999"])
    assert none.exit_code == 2


@pytest.fixture
def published(world: World) -> Iterator[TestClient]:
    OpenData(world.svc.db, world.svc.clock).publish_csv(
        world.admin_a, LG_A, "aed_locations", (SAMPLES / "aed_locations.csv").read_bytes())
    with TestClient(create_app(world.backend.settings, world.svc.clock, world.svc.db)) as c:
        yield c


def test_map_draws_outlines_under_the_points(published: TestClient, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    page = published.get("/opendata/map")
    assert page.status_code == 200
    svg = page.text.split('<figure class="od-map">', 1)[1].split("</figure>", 1)[0]
    assert svg.count('class="od-outline') == 1 and svg.count("<circle") == 2
    assert svg.index("<path") < svg.index("<circle")  # the outline is under the points
    assert "https://" not in svg and "推定" in page.text  # no tiles; approximate, and said so
    # An imported (not approximate) outline replaces the bundled one.
    outlines.save(outlines.import_n03(N03, only={LG_A})[LG_A], tmp_path)
    monkeypatch.setenv(OUTLINES_ENV, str(tmp_path))
    with TestClient(published.app) as fresh:
        fresh.app.state.opendata = None  # type: ignore[attr-defined]
        drawn = fresh.get("/opendata/datasets/131016-aed-locations").text
    assert 'class="od-outline"' in drawn and "od-outline-approx" not in drawn
    assert "<title>千代田区</title>" in drawn


def test_map_approximates_a_municipality_without_outline(world: World) -> None:
    svc = OpenData(world.svc.db, world.svc.clock)
    svc._outlines = {}  # no bundled or imported outline
    records: list[dict[str, object]] = [{"全国地方公共団体コード": LG_A, "地方公共団体名": "千代田区", "緯度": 35.69,
                "経度": 139.75}, {"全国地方公共団体コード": LG_A, "緯度": None, "経度": None}]
    (name, rough, rings), = svc.map_outlines(records)
    assert (name, rough) == ("千代田区", True) and len(rings[0]) >= 4
    assert svc.map_outlines([]) == []


def test_cli_derive_and_list(sqlite_world: World, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    world = sqlite_world
    OpenData(world.svc.db, world.svc.clock).publish_csv(
        world.admin_a, LG_A, "aed_locations", (SAMPLES / "aed_locations.csv").read_bytes())
    monkeypatch.setenv("KIBAN_DATABASE_URL", world.backend.settings.database_url)
    monkeypatch.delenv("KIBAN_DATABASE_ADMIN_URL", raising=False)
    monkeypatch.setenv("KIBAN_MODE", "test")
    done = runner.invoke(cli_app, ["opendata", "outlines", "derive", "--lgcode", LG_A,
                                   "--lgcode", "141003", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "131016\tapproximate" in done.output and "141003\tno published points" in done.output
    derived = outlines.load([tmp_path])["131016"]
    assert derived.approximate and derived.name == "千代田区"
    monkeypatch.setenv(OUTLINES_ENV, str(tmp_path))
    listed = runner.invoke(cli_app, ["opendata", "outlines", "list"])
    assert listed.exit_code == 0 and "131016\t千代田区\tapproximate" in listed.output
