"""Publishing by CSV upload, on SQLite and PostgreSQL: who may publish, versions with history,
a refused upload publishes nothing, and the HTTP route's problem+json report."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kiban.core.errors import Forbidden
from kiban.opendata.service import OpenData, UploadRejected
from kiban.platform import ledger
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, bearer

SAMPLES = Path(__file__).parent / "samples"
AED = (SAMPLES / "aed_locations.csv").read_bytes()


def _svc(world: World) -> OpenData:
    return OpenData(world.svc.db, world.svc.clock)


def test_publish_creates_versions_with_history(world: World) -> None:
    svc = _svc(world)
    first = svc.publish_csv(world.admin_a, LG_A, "aed_locations", AED, filename="aed.csv")
    assert (first.dataset_id, first.version, first.rows) == ("131016-aed-locations", 1, 2)
    assert first.extra_columns == ["x-設置台数"]
    smaller = AED.decode().splitlines()[:2]
    second = svc.publish_csv(world.admin_a, LG_A, "aed_locations", "\n".join(smaller).encode())
    assert second.version == 2 and second.rows == 1
    found = svc.dataset(first.dataset_id)
    assert found["current_version"] == 2 and found["title"] == "千代田区 AED設置箇所一覧"
    assert [v["version"] for v in found["versions"]] == [2, 1]
    assert [v["row_count"] for v in found["versions"]] == [1, 2]
    # Old versions stay readable; the current one is the default.
    assert len(svc.records(first.dataset_id)[1]) == 1
    meta, old = svc.records(first.dataset_id, 1)
    assert len(old) == 2 and meta["extra_columns"] == ["x-設置台数"]
    assert old[0]["名称"] == "千代田区役所" and old[0]["_id"] == 1
    with world.svc.db.tenant(LG_A) as conn:  # each publication is in the ledger
        entries = ledger.entries(conn, LG_A, kind="opendata.publish")
    assert [e["payload"]["version"] for e in entries] == [1, 2]


def test_refused_upload_publishes_nothing(world: World) -> None:
    svc = _svc(world)
    bad = AED.replace(b"35.6940", b"95.6940").replace(b"08:30", b"8h30")
    with pytest.raises(UploadRejected) as caught:
        svc.publish_csv(world.admin_a, LG_A, "aed_locations", bad)
    assert {(p.row, p.field) for p in caught.value.problems} == {(2, "緯度"), (2, "開始時間")}
    assert svc.search()[0] == 0
    svc.publish_csv(world.admin_a, LG_A, "aed_locations", AED)
    with pytest.raises(UploadRejected):
        svc.publish_csv(world.admin_a, LG_A, "aed_locations", bad)
    assert svc.dataset("131016-aed-locations")["current_version"] == 1


def test_only_publishers_of_that_municipality(world: World) -> None:
    svc = _svc(world)
    with pytest.raises(Forbidden):
        svc.publish_csv(world.clerk_a, LG_A, "aed_locations", AED)
    with pytest.raises(Forbidden):
        svc.publish_csv(world.admin_a, LG_B, "aed_locations", AED)
    officer = world.svc.accounts.create("dx-a", PASSWORD, "DX 一郎", ["digital_officer"], LG_A,
                                        world.svc.clock.now())
    assert svc.publish_csv(officer, LG_A, "aed_locations", AED).version == 1


def test_publish_over_http(world: World) -> None:
    with TestClient(create_app(world.backend.settings, world.svc.clock, world.svc.db)) as client:
        url = f"/api/v1/municipalities/{LG_A}/opendata/events"
        events = (SAMPLES / "events_sjis.csv").read_bytes()
        assert client.post(url, content=events).status_code == 401
        clerk = bearer(client, "clerk-a")
        assert client.post(url, content=events, headers=clerk).status_code == 403
        admin = bearer(client, "admin-a")
        done = client.post(url, content=events, headers={**admin, "content-type": "text/csv"})
        assert done.status_code == 201, done.text
        assert done.json() == {"dataset": "131016-events", "version": 1, "rows": 2,
                               "encoding": "shift_jis", "extra_columns": []}
        bad = events.replace(b"2027-05-14", b"2027-13-01")
        refused = client.post(url, content=bad, headers=admin)
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["errors"][0]["field"] == "row 2: 終了日"
        big = client.post(url, content=b"a" * (6 * 1024 * 1024), headers=admin)
        assert big.status_code == 422 and "too large" in big.json()["errors"][0]["en"]
        assert client.post(f"/api/v1/municipalities/{LG_A}/opendata/nope", content=events,
                           headers=admin).status_code == 404
        history = client.get("/api/v1/opendata/datasets/131016-events/versions").json()
        assert [v["version"] for v in history] == [1]
        csv = client.get("/api/v1/opendata/datasets/131016-events.csv")
        assert csv.status_code == 200 and "髙橋家の茶会" in csv.content.decode("utf-8")
        schema = client.get("/api/v1/opendata/schemas/events").json()
        assert schema["title"] == "イベント一覧" and schema["fields"][0]["name"] == "全国地方公共団体コード"
        assert len(client.get("/api/v1/opendata/schemas").json()) >= 7
