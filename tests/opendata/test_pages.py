"""The public catalog pages, on SQLite and PostgreSQL: list with filters, dataset page with
versions and downloads, record search (words, event dates, distance) with an SVG map, record
pages, and bad query input answered with 422 and the field named, never a server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kiban.opendata import demo
from kiban.opendata.service import OpenData
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    svc = OpenData(world.svc.db, world.svc.clock)
    svc.publish_csv(world.admin_a, LG_A, "aed_locations", (SAMPLES / "aed_locations.csv").read_bytes())
    svc.publish_csv(world.admin_a, LG_A, "events", (SAMPLES / "events_sjis.csv").read_bytes())
    admin_b = world.svc.accounts.create("admin-b", PASSWORD, "管理 四郎", ["municipality_admin"], LG_B,
                                        world.svc.clock.now())
    tourism = (SAMPLES / "tourism_facilities.csv").read_bytes().replace(b"131016", LG_B.encode())
    svc.publish_csv(admin_b, LG_B, "tourism_facilities", tourism)
    with TestClient(create_app(world.backend.settings, world.svc.clock, world.svc.db)) as c:
        yield c


def test_catalog_list_and_filters(client: TestClient) -> None:
    page = client.get("/opendata")
    assert page.status_code == 200 and "3 件のデータセット" in page.text
    assert "<script" not in page.text and 'lang="ja"' in page.text
    assert "1 件" in client.get("/opendata", params={"lgcode": LG_B}).text
    only_aed = client.get("/opendata", params={"schema": "aed_locations"}).text
    assert "AED設置箇所一覧" in only_aed and "1 件" in only_aed
    assert "1 件" in client.get("/opendata", params={"category": "events"}).text
    assert "0 件" in client.get("/opendata", params={"q": "存在しない言葉"}).text


def test_dataset_page_record_page_and_map(client: TestClient) -> None:
    page = client.get("/opendata/datasets/131016-aed-locations")
    assert page.status_code == 200
    assert "131016-aed-locations.geojson?version=1" in page.text and "第1版" in page.text
    assert page.text.count("<circle") == 2 and "<svg" in page.text  # drawn, no tiles
    record = client.get("/opendata/datasets/131016-aed-locations/records/2")
    assert record.status_code == 200 and "千代田区立図書館" in record.text
    assert client.get("/opendata/datasets/131016-aed-locations/records/99").status_code == 404
    assert client.get("/opendata/datasets/nope").status_code == 404
    whole = client.get("/opendata/map")
    assert whole.status_code == 200 and whole.text.count("<circle") >= 4


def test_record_search(client: TestClient) -> None:
    words = client.get("/opendata/records", params={"q": "図書館"})
    assert "千代田区立図書館" in words.text and "千代田区役所</a>" not in words.text
    near = client.get("/opendata/records", params={"lat": "35.6940", "lon": "139.7536", "km": "0.05"})
    assert near.status_code == 200 and "千代田区役所" in near.text and " km" in near.text
    far = client.get("/opendata/records", params={"lat": "43.06", "lon": "141.35", "km": "5"})
    assert "0 件" in far.text
    events = client.get("/opendata/records", params={"schema": "events", "date_from": "2099-01-01"})
    assert "0 件" in events.text


BAD_QUERIES = [
    ("/opendata", {"page": "0"}, "ページ"),
    ("/opendata", {"page": "abc"}, "ページ"),
    ("/opendata/records", {"date_from": "2027-13-01"}, "開始日"),
    ("/opendata/records", {"date_from": "2027-05-02", "date_to": "2027-05-01"}, "終了日"),
    ("/opendata/records", {"lat": "95", "lon": "139.7"}, "緯度"),
    ("/opendata/records", {"lat": "35.6", "lon": "nan"}, "経度"),
    ("/opendata/records", {"lat": "35.6"}, "両方"),
    ("/opendata/records", {"lat": "35.6", "lon": "139.7", "km": "500"}, "距離"),
]


def test_bad_query_input(client: TestClient) -> None:
    # One database for every case (a PostgreSQL world costs seconds): a loop, not parameters.
    for path, params, message in BAD_QUERIES:
        response = client.get(path, params=params)
        assert response.status_code == 422, (path, params)
        assert message in response.text and 'role="alert"' in response.text


def test_demo_publishes_sample_datasets(world: World) -> None:
    world.svc.accounts.create("dx-a", PASSWORD, "DX 一郎", ["digital_officer"], LG_A,
                              world.svc.clock.now())
    lines: list[str] = []
    demo.seed(world.svc.db, world.svc.clock, world.svc.accounts,
              [(LG_A, "千代田区", "東京都", ["丸の内", "大手町"])], lines.append)
    svc = OpenData(world.svc.db, world.svc.clock)
    count, found = svc.search(lgcodes=[LG_A], limit=20)
    assert count == len(demo.SCHEMAS) + 1  # and the generated population
    assert {d["schema_name"] for d in found} >= {"aed_locations", "events",
                                                 "population_by_area_age"}
    demo.seed(world.svc.db, world.svc.clock, world.svc.accounts,
              [(LG_A, "千代田区", "東京都", ["丸の内"])], lines.append)
    assert "skipped" in lines[-1] and svc.search(lgcodes=[LG_A])[0] == count
