"""The standard schemas and the upload checks, pure: sample files (one in Shift_JIS) pass, and
every kind of bad input is reported with its row and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiban.opendata import model

SAMPLES = Path(__file__).parent / "samples"
LG = "131016"
TYPES = {"string", "number", "integer", "date", "time"}
REQUIRED = {"観光施設一覧", "イベント一覧", "公共施設一覧", "AED設置箇所一覧", "指定緊急避難場所一覧",
            "子育て施設一覧", "地域・年齢別人口"}


def test_every_required_standard_dataset_has_a_versioned_table_schema() -> None:
    schemas = model.load_schemas()
    assert {s.title for s in schemas.values()} >= REQUIRED
    for path in model.SCHEMA_DIR.glob("*.json"):
        data = json.loads(path.read_text("utf-8"))
        assert data["name"] == path.stem
        assert data["version"].count(".") == 2  # semantic version
        assert data["primaryKey"] == ["ID"]
        names = [f["name"] for f in data["fields"]]
        assert len(names) == len(set(names)), path
        assert names[:3] == ["全国地方公共団体コード", "ID", "地方公共団体名"]
        for f in data["fields"]:
            assert f["type"] in TYPES, (path, f)
            if not f["x-confirmed"]:
                assert "未確認" in f["description"]
                assert f["name"] in data["description"]  # listed in the schema's description


def test_tourism_and_events_required_columns_follow_the_reference() -> None:
    schemas = model.load_schemas()
    tourism = {f.name for f in schemas["tourism_facilities"].fields if f.required}
    assert {"名称", "名称_カナ", "住所", "説明"} <= tourism
    events = {f.name for f in schemas["events"].fields if f.required}
    assert {"イベント名", "イベント名_カナ", "開始日", "終了日", "開始時間", "終了時間", "説明", "場所名称",
            "住所"} <= events


@pytest.mark.parametrize(("schema", "sample", "encoding", "rows"), [
    ("aed_locations", "aed_locations.csv", "utf-8", 2),
    ("tourism_facilities", "tourism_facilities.csv", "utf-8", 1),
    ("events", "events_sjis.csv", "shift_jis", 2),
])
def test_sample_files_pass(schema: str, sample: str, encoding: str, rows: int) -> None:
    checked = model.check_csv(model.load_schemas()[schema], (SAMPLES / sample).read_bytes(), LG)
    assert checked.problems == []
    assert checked.encoding == encoding
    assert len(checked.records) == rows


def test_shift_jis_text_and_types_come_through() -> None:
    checked = model.check_csv(model.load_schemas()["events"],
                              (SAMPLES / "events_sjis.csv").read_bytes(), LG)
    first, second = checked.records
    assert first["イベント名"] == "神田祭" and first["緯度"] == pytest.approx(35.702)
    assert second["イベント名"] == "髙橋家の茶会" and "①②" in second["説明"]
    assert second["定員"] == 30 and second["緯度"] is None


def test_utf8_with_bom_and_quoted_cells() -> None:
    data = b"\xef\xbb\xbf" + (SAMPLES / "tourism_facilities.csv").read_bytes()
    checked = model.check_csv(model.load_schemas()["tourism_facilities"], data, LG)
    assert checked.ok and checked.encoding == "utf-8-sig"
    assert '"野外音楽堂"' in checked.records[0]["説明"]


def test_municipality_columns_under_the_prefix_are_kept_apart() -> None:
    checked = model.check_csv(model.load_schemas()["aed_locations"],
                              (SAMPLES / "aed_locations.csv").read_bytes(), LG)
    assert checked.extra_columns == ["x-設置台数"]
    assert checked.records[0]["x-設置台数"] == "2"


def _aed(*rows: str, header: str | None = None) -> bytes:
    head = header or "全国地方公共団体コード,ID,地方公共団体名,名称,名称_カナ,住所,設置位置,緯度,経度,開始時間"
    return ("\n".join([head, *rows]) + "\n").encode("utf-8")


def _problems(data: bytes, schema: str = "aed_locations") -> list[tuple[int, str]]:
    checked = model.check_csv(model.load_schemas()[schema], data, LG)
    assert not checked.ok
    return [(p.row, p.field) for p in checked.problems]


def test_every_bad_row_and_field_is_reported() -> None:
    data = _aed(
        "131016,A1,千代田区,区役所,カナ,九段南1,1階,35.69,139.75,08:30",  # good
        "131016,A2,千代田区,,カナ,九段南1,1階,35.69,139.75,08:30",  # 名称 empty
        "131016,A3,千代田区,図書館,カナ,九段南1,受付,0.5,139.75,25:99",  # lat outside Japan, bad time
        "131016,A4,千代田区,公園,カナ,九段南1,東屋,35.69,-74.0,",  # lon outside Japan
        "131016,A5,千代田区,駅,カナ,九段南1,改札,abc,139.75,",  # not a number
        "131016,A1,千代田区,重複,カナ,九段南1,改札,,,",  # duplicate ID
        "141003,A7,横浜市,他団体,カナ,横浜,受付,,,",  # another municipality's code
        "131016,A8,千代田区,短い行",  # wrong number of cells
        "131016,A9,千代田区,片方,カナ,九段南1,受付,35.69,,",  # lat without lon
    )
    assert _problems(data) == [
        (3, "名称"), (4, "開始時間"), (4, "緯度"), (5, "経度"), (6, "緯度"), (7, "ID"),
        (8, "全国地方公共団体コード"), (9, "row"), (10, "経度")]


def test_problem_messages_name_row_and_field_in_both_languages() -> None:
    checked = model.check_csv(model.load_schemas()["events"], (
        "全国地方公共団体コード,ID,地方公共団体名,イベント名,イベント名_カナ,開始日,終了日,開始時間,終了時間,"
        "説明,場所名称,住所\n131016,E1,千代田区,祭,マツリ,2027-02-30,2027/03/01,09:00,10:00,説明,場所,住所\n"
    ).encode(), LG)
    assert [(p.row, p.field) for p in checked.problems] == [(2, "開始日"), (2, "終了日")]
    assert "2行目「開始日」" in checked.problems[0].ja
    assert "row 2, 開始日" in checked.problems[0].en


def test_missing_required_and_unknown_columns_are_reported_together() -> None:
    problems = _problems(_aed("131016,A1,区役所", header="全国地方公共団体コード,ID,名前"))
    assert (0, "名前") in problems  # unknown column without the x- prefix
    assert {(0, "地方公共団体名"), (0, "名称"), (0, "住所"), (0, "設置位置")} <= set(problems)


def test_file_level_refusals() -> None:
    schema = model.load_schemas()["aed_locations"]
    big = model.check_csv(schema, b"x" * (model.MAX_UPLOAD_BYTES + 1), LG)
    assert [p.field for p in big.problems] == ["file"] and "too large" in big.problems[0].en
    binary = model.check_csv(schema, b"\x81\x00\xff\xfe\xfd" * 10, LG)
    assert binary.problems[0].field == "file"
    assert model.check_csv(schema, b"", LG).problems[0].en == "the file has no header row"
    header_only = model.check_csv(schema, _aed(), LG)
    assert header_only.problems[0].en == "the file has no data rows"
    malformed = model.check_csv(schema, _aed('131016,A1,千代田区,"区役所,九段南1'), LG)
    assert not malformed.ok


def test_csv_round_trip() -> None:
    schema = model.load_schemas()["aed_locations"]
    checked = model.check_csv(schema, (SAMPLES / "aed_locations.csv").read_bytes(), LG)
    text = model.to_csv([*schema.field_names, *checked.extra_columns], checked.records)
    again = model.check_csv(schema, text.encode("utf-8"), LG)
    assert again.ok and again.records == checked.records
