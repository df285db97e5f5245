"""The 個人情報ファイル簿 is generated from the data model: every personal-data table is
declared, every column is a recorded item or technical, and every legally required item is
published (法第75条第1項, 第74条第1項各号, 施行令第21条) as a page, JSON and CSV."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

import kiban.web.app  # noqa: F401 - every store registers its tables
from kiban.privacy import service
from kiban.privacy.declarations import FILES
from kiban.privacy.store import personal_tables
from kiban.web.app import create_app
from kiban_testkit import LG_A, World

REQUIRED = ["個人情報ファイルの名称", "事務をつかさどる組織の名称", "利用目的", "記録項目",
            "記録範囲", "記録情報の収集方法", "要配慮個人情報が含まれるときはその旨",
            "記録情報の経常的提供先", "開示・訂正・利用停止請求を受理する組織の名称及び所在地",
            "訂正・利用停止の特別の手続", "個人情報ファイルの種別",
            "行政機関等匿名加工情報の提案募集の対象"]


def test_every_personal_data_table_is_declared_in_the_register() -> None:
    tables = personal_tables()
    assert "residents" in tables and "privacy_access_records" in tables
    assert service.undeclared(tables) == []


def test_an_undeclared_table_or_column_is_named() -> None:
    tables = {**personal_tables(), "welfare_cases": ["lgcode", "id", "resident_id"]}
    tables["residents"] = [*tables["residents"], "blood_type"]
    problems = service.undeclared(tables)
    assert "table welfare_cases is personal data but in no FileDeclaration" in problems
    assert "column residents.blood_type is neither a 記録項目 nor technical" in problems


def test_recorded_items_follow_the_columns() -> None:
    tables = personal_tables()
    registry = next(e for e in service.register_entries(tables)
                    if e["file_id"] == "resident_registry")
    assert {"氏", "名", "生年月日", "個人番号", "住民票コード", "在留資格"} <= set(registry["items"])
    tables["residents"] = [c for c in tables["residents"] if c != "honseki"]
    shrunk = next(e for e in service.register_entries(tables)
                  if e["file_id"] == "resident_registry")
    assert "本籍" not in shrunk["items"]


def test_the_register_is_published_as_json_csv_and_page(sqlite_world: World) -> None:
    # Generated from the metadata, not from stored rows: one database suffices.
    world = sqlite_world
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    with TestClient(app) as client:
        data = client.get(f"/api/v1/municipalities/{LG_A}/privacy/file-register").json()
        assert [c["label"] for c in data["columns"]][:4] == [*REQUIRED[:3], "根拠法令"]
        assert {c["label"] for c in data["columns"]} >= set(REQUIRED)
        assert len(data["files"]) == len(FILES)
        for f in data["files"]:
            assert f["name"] and f["purpose"] and f["items"] and f["collection"]
        eligible = [f["file_id"] for f in data["files"] if f["anonymisation_open"]]
        assert eligible == ["resident_registry"]

        response = client.get(f"/api/v1/municipalities/{LG_A}/privacy/file-register.csv")
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
        assert rows[0][0] == "個人情報ファイルの名称" and len(rows) == len(FILES) + 1
        assert rows[1][0] == "住民基本台帳ファイル" and "対象" in rows[1]

        page = client.get("/privacy/file-register", headers={"Accept": "text/html"})
        assert page.status_code == 200
        for label in REQUIRED:
            assert label in page.text
        assert "住民基本台帳法第5条" in page.text

