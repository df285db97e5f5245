"""Publishing open data from the staff console, on SQLite and PostgreSQL: CSV upload as a
multipart form, editing rows in a form (own x- columns kept), every bad-input path of the
issue refused with row and field named and nothing published, CSRF, roles and tenant
isolation."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from kiban.opendata import model
from kiban.opendata.service import OpenData
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World

SAMPLES = Path(__file__).parent / "samples"
AED = (SAMPLES / "aed_locations.csv").read_bytes()
EVENTS_SJIS = (SAMPLES / "events_sjis.csv").read_bytes()
AED_PAGE = "/console/opendata/aed_locations"


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    world.svc.accounts.create("admin-b", PASSWORD, "管理 四郎", ["municipality_admin"], LG_B,
                              world.svc.clock.now())
    with TestClient(create_app(world.backend.settings, world.svc.clock, world.svc.db),
                    follow_redirects=False) as c:
        yield c


def _login(client: TestClient, username: str) -> None:
    client.cookies.clear()
    done = client.post("/login", data={"username": username, "password": PASSWORD})
    assert done.status_code == 303, done.text


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


def _upload(client: TestClient, data: bytes, page: str = AED_PAGE, filename: str = "aed.csv",
            token: str | None = None) -> httpx.Response:
    if token is None:
        token = _csrf(client.get(page).text)
    done: httpx.Response = client.post(f"{page}/upload", data={"csrf_token": token, "title": ""},
                                       files={"file": (filename, data, "text/csv")})
    return done


def _editor(page: str) -> dict[str, object]:
    """The row editor's fields as a browser would send them (no button yet)."""
    form = page[page.index('id="od-edit"'):]
    form = form[:form.index("</form>")]
    fields: dict[str, object] = {
        "csrf_token": _csrf(form),
        "rows": re.search(r'name="rows" value="(\d+)"', form).group(1),  # type: ignore[union-attr]
        "column": [html.unescape(c) for c in re.findall(r'name="column" value="([^"]*)"', form)],
        "title": html.unescape(re.search(r'name="title" value="([^"]*)"', form).group(1)),  # type: ignore[union-attr]
    }
    for name, value in re.findall(r'name="(r\d+c\d+)" value="([^"]*)"', form):
        fields[name] = html.unescape(value)
    return fields


def _cell(fields: dict[str, object], row: int, column: str) -> str:
    columns = fields["column"]
    assert isinstance(columns, list)
    return f"r{row}c{columns.index(column)}"


def _current(world: World, did: str = "131016-aed-locations") -> int:
    svc = OpenData(world.svc.db, world.svc.clock)
    found = svc.search(names=[did])[1]
    return int(found[0]["current_version"]) if found else 0


def test_upload_then_edit_rows_keeps_own_columns_and_history(client: TestClient,
                                                              world: World) -> None:
    _login(client, "admin-a")
    index = client.get("/console/opendata")
    assert index.status_code == 200 and "AED設置箇所一覧" in index.text and "未公開" in index.text
    done = _upload(client, AED)
    assert done.status_code == 303
    assert done.headers["location"] == f"{AED_PAGE}?published=1"
    page = client.get(done.headers["location"]).text
    assert "第1版を公開しました" in page and "アップロード(aed.csv)" in page

    fields = _editor(page)
    assert fields["column"][-1] == "x-設置台数"  # type: ignore[index]
    assert fields[_cell(fields, 0, "x-設置台数")] == "2"
    fields[_cell(fields, 0, "名称")] = "千代田区役所 本庁舎"
    fields["delete"] = ["1"]  # the library
    three = int(str(fields["rows"])) - 1  # the last empty row: a new record
    for column, value in (("ID", "AED0003"), ("名称", "九段坂公園"), ("名称_カナ", "クダンザカコウエン"),
                          ("住所", "東京都千代田区九段南2"),
                          ("設置位置", "管理棟"), ("緯度", "35.6950"), ("経度", "139.7490"),
                          ("x-設置台数", "1")):
        fields[_cell(fields, three, column)] = value
    fields["action"] = "publish"
    published = client.post(f"{AED_PAGE}/rows", data=fields)
    assert published.status_code == 303, published.text
    assert published.headers["location"].endswith("published=2")

    svc = OpenData(world.svc.db, world.svc.clock)
    meta, rows = svc.records("131016-aed-locations")
    assert meta["version"] == 2 and meta["extra_columns"] == ["x-設置台数"]
    assert [(r["ID"], r["名称"], r["x-設置台数"]) for r in rows] == [
        ("AED0001", "千代田区役所 本庁舎", "2"), ("AED0003", "九段坂公園", "1")]
    assert rows[1]["全国地方公共団体コード"] == LG_A  # pre-filled in new rows
    history = client.get(AED_PAGE).text
    assert "第2版(最新)" in history and "画面で編集" in history and "第1版" in history
    csv_v1 = client.get("/api/v1/opendata/datasets/131016-aed-locations.csv?version=1").text
    assert "千代田区立図書館" in csv_v1  # the old version is kept


def test_add_own_column_in_the_editor(client: TestClient, world: World) -> None:
    _login(client, "admin-a")
    _upload(client, AED)
    fields = _editor(client.get(AED_PAGE).text)
    fields.update(action="add", new_column="x-管理者")
    added = client.post(f"{AED_PAGE}/rows", data=fields)
    assert added.status_code == 200 and 'value="x-管理者"' in added.text
    assert _current(world) == 1  # adding is not publishing
    fields = _editor(added.text)
    fields[_cell(fields, 0, "x-管理者")] = "総務課"
    fields["action"] = "publish"
    assert client.post(f"{AED_PAGE}/rows", data=fields).status_code == 303
    meta, rows = OpenData(world.svc.db, world.svc.clock).records("131016-aed-locations")
    assert meta["extra_columns"] == ["x-設置台数", "x-管理者"] and rows[0]["x-管理者"] == "総務課"
    fields = _editor(added.text)
    fields.update(action="add", new_column="管理者")  # not in the namespace
    refused = client.post(f"{AED_PAGE}/rows", data=fields)
    assert refused.status_code == 422 and "x-" in refused.text


def _events(text: str) -> bytes:
    return EVENTS_SJIS.decode("cp932").replace("2027-05-14", text).encode("cp932")


BAD_UPLOADS = [
    ("malformed", AED_PAGE, AED + b'131016,AED9,"unclosed,x\n', 422, "CSV の形式が不正です"),
    ("encoding", AED_PAGE, b"\x81\x00\xff\xfe\xfd" * 10, 422, "UTF-8 でも Shift_JIS でもありません"),
    ("missing-column", AED_PAGE, AED.replace("設置位置,".encode(), b"", 1), 422,
     "必須の列「設置位置」がありません"),
    ("bad-date", "/console/opendata/events", _events("2027-13-01"), 422, "2行目「終了日」: 日付が不正です"),
    ("outside-japan", AED_PAGE, AED.replace(b"139.7536", b"100.7536"), 422, "2行目「経度」: 日本の範囲外です"),
    ("wrong-municipality", AED_PAGE, AED.replace(b"131016,AED0002", b"141003,AED0002"), 422,
     "3行目「全国地方公共団体コード」"),
    ("oversized", AED_PAGE, AED + b"x" * (model.MAX_UPLOAD_BYTES + 100_000), 413, "大きすぎます"),
    ("over-limit-file", AED_PAGE, AED + b"," * (model.MAX_UPLOAD_BYTES - len(AED) + 10), 422,
     "ファイルが大きすぎます"),
]


@pytest.mark.parametrize(("case", "page", "data", "status", "message"), BAD_UPLOADS,
                         ids=[c[0] for c in BAD_UPLOADS])
def test_bad_uploads_are_refused_with_row_and_field(client: TestClient, world: World, case: str,
                                                    page: str, data: bytes, status: int,
                                                    message: str) -> None:
    _login(client, "admin-a")
    refused = _upload(client, data, page=page)
    assert refused.status_code == status, case
    assert message in html.unescape(refused.text)
    assert 'role="alert"' in refused.text
    assert OpenData(world.svc.db, world.svc.clock).search()[0] == 0  # nothing published


def test_refused_upload_is_shown_in_the_editor_and_fixed_there(client: TestClient,
                                                               world: World) -> None:
    _login(client, "admin-a")
    bad = AED.replace(b"35.6941", b"95.6941").replace(b"10:00", b"10h00")
    refused = _upload(client, bad)
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert "3行目「緯度」: 日本の範囲外です" in text and "3行目「開始時間」" in text
    assert "何も公開していません" in text and text.count('aria-invalid="true"') == 2
    fields = _editor(refused.text)
    assert fields[_cell(fields, 1, "緯度")] == "95.6941"  # the file's rows, not published
    fields[_cell(fields, 1, "緯度")] = "35.6941"
    fields["action"] = "check"
    still = client.post(f"{AED_PAGE}/rows", data=fields)
    assert still.status_code == 422 and "3行目「開始時間」" in html.unescape(still.text)
    fields[_cell(fields, 1, "開始時間")] = "10:00"
    checked = client.post(f"{AED_PAGE}/rows", data=fields)
    assert checked.status_code == 200 and "まだ公開していません" in checked.text
    assert _current(world) == 0
    fields["action"] = "publish"
    assert client.post(f"{AED_PAGE}/rows", data=fields).status_code == 303
    _, rows = OpenData(world.svc.db, world.svc.clock).records("131016-aed-locations")
    assert [r["緯度"] for r in rows] == [35.694, 35.6941] and rows[1]["x-設置台数"] == "1"


BAD_EDITS = [
    ("bad-date", "開始時間", "25:99", "2行目「開始時間」: 時刻が不正です"),
    ("outside-japan", "緯度", "12.5", "2行目「緯度」: 日本の範囲外です"),
    ("required-empty", "名称", "", "2行目「名称」: 必須項目が空です"),
    ("other-municipality", "全国地方公共団体コード", LG_B, "2行目「全国地方公共団体コード」"),
    ("not-a-number", "経度", "東経139度", "2行目「経度」: 数値ではありません"),
]


@pytest.mark.parametrize(("case", "column", "value", "message"), BAD_EDITS,
                         ids=[c[0] for c in BAD_EDITS])
def test_bad_edits_publish_nothing(client: TestClient, world: World, case: str, column: str,
                                   value: str, message: str) -> None:
    _login(client, "admin-a")
    _upload(client, AED)
    fields = _editor(client.get(AED_PAGE).text)
    fields[_cell(fields, 0, column)] = value
    fields["action"] = "publish"
    refused = client.post(f"{AED_PAGE}/rows", data=fields)
    assert refused.status_code == 422, case
    assert message in html.unescape(refused.text) and 'aria-invalid="true"' in refused.text
    assert _current(world) == 1


def test_event_dates_edited_in_the_console(client: TestClient, world: World) -> None:
    _login(client, "admin-a")
    page = "/console/opendata/events"
    assert _upload(client, EVENTS_SJIS, page=page, filename="events.csv"
                   ).status_code == 303
    fields = _editor(client.get(page).text)
    fields[_cell(fields, 0, "開始日")] = "2027/05/01"
    fields["action"] = "publish"
    refused = client.post(f"{page}/rows", data=fields)
    assert refused.status_code == 422 and "2行目「開始日」: 日付が不正です" in html.unescape(refused.text)
    assert _current(world, "131016-events") == 1


def test_oversized_or_malformed_editor_form(client: TestClient, world: World) -> None:
    _login(client, "admin-a")
    token = _csrf(client.get(AED_PAGE).text)
    big = client.post(f"{AED_PAGE}/rows", content=b"a=" + b"x" * (4 * model.MAX_UPLOAD_BYTES),
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413 and "大きすぎます" in big.text
    wrong = client.post(f"{AED_PAGE}/upload", data={"csrf_token": token})  # not multipart
    assert wrong.status_code == 400
    empty = client.post(f"{AED_PAGE}/upload", data={"csrf_token": token},
                        files={"file": ("a.csv", b"", "text/csv")})
    assert empty.status_code == 422 and "CSV ファイルを選んでください" in empty.text
    assert client.get("/console/opendata/nope").status_code == 404
    too_many = client.post(f"{AED_PAGE}/rows", data={"csrf_token": token, "rows": "100000",
                                                      "action": "publish"})
    assert too_many.status_code == 422 and "500 行まで" in too_many.text
    assert client.post("/console/opendata/nope/upload", data={"csrf_token": token},
                       files={"file": ("a.csv", AED, "text/csv")}).status_code == 404
    assert OpenData(world.svc.db, world.svc.clock).search()[0] == 0


def test_csrf_roles_and_tenant_isolation(client: TestClient, world: World) -> None:
    assert client.get(AED_PAGE, headers={"accept": "text/html"}).status_code == 303  # sign in
    _login(client, "admin-a")
    no_token = client.post(f"{AED_PAGE}/upload", data={"csrf_token": "wrong"},
                           files={"file": ("aed.csv", AED, "text/csv")})
    assert no_token.status_code == 403
    forged: dict[str, object] = {"csrf_token": "", "rows": "1", "column": ["ID"], "r0c0": "X",
                                 "action": "publish"}
    assert client.post(f"{AED_PAGE}/rows", data=forged).status_code == 403
    assert OpenData(world.svc.db, world.svc.clock).search()[0] == 0
    assert _upload(client, AED).status_code == 303

    _login(client, "clerk-a")  # no opendata.publish
    assert client.get("/console/opendata").status_code == 403
    assert client.get(AED_PAGE).status_code == 403
    token = _csrf(client.get("/console").text)
    assert _upload(client, AED, token=token).status_code == 403

    _login(client, "admin-b")  # another municipality: its own dataset only
    page = client.get(AED_PAGE).text
    assert "未公開" in page and "千代田区役所" not in page
    fields = _editor(page)
    fields[_cell(fields, 0, "ID")] = "B1"
    fields[_cell(fields, 0, "名称")] = "横浜の施設"
    fields.update(action="publish", lgcode=LG_A)  # a smuggled municipality is ignored
    refused = client.post(f"{AED_PAGE}/rows", data=fields)
    assert refused.status_code == 422  # 住所 etc. missing, and nothing published
    lg_a_rows = AED.replace(b"\r\n", b"\n")
    refused = _upload(client, lg_a_rows)  # rows coded for 千代田区
    assert refused.status_code == 422
    assert "公開する団体(141003)と違います" in html.unescape(refused.text)
    assert _upload(client, AED.replace(b"131016", LG_B.encode())
                   ).status_code == 303
    svc = OpenData(world.svc.db, world.svc.clock)
    assert svc.dataset("131016-aed-locations")["current_version"] == 1
    assert svc.dataset("141003-aed-locations")["current_version"] == 1
    assert svc.records("131016-aed-locations")[1][0]["全国地方公共団体コード"] == LG_A
