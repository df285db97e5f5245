"""The CKAN-compatible Action API, on SQLite and PostgreSQL: CKAN's envelope, search and
datastore parameters, CKAN-style errors for bad parameters (never a 500), and `ckanapi` as a
real client against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ckanapi
import pytest
from fastapi.testclient import TestClient

from kiban.opendata.service import OpenData
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, serve

SAMPLES = Path(__file__).parent / "samples"
A = "/api/3/action"


@pytest.fixture
def published(world: World) -> World:
    svc = OpenData(world.svc.db, world.svc.clock)
    svc.publish_csv(world.admin_a, LG_A, "aed_locations", (SAMPLES / "aed_locations.csv").read_bytes())
    svc.publish_csv(world.admin_a, LG_A, "events", (SAMPLES / "events_sjis.csv").read_bytes())
    admin_b = world.svc.accounts.create("admin-b", PASSWORD, "管理 四郎", ["municipality_admin"], LG_B,
                                        world.svc.clock.now())
    tourism = (SAMPLES / "tourism_facilities.csv").read_bytes().replace(b"131016", LG_B.encode())
    svc.publish_csv(admin_b, LG_B, "tourism_facilities", tourism)
    return world


@pytest.fixture
def client(published: World) -> Iterator[TestClient]:
    w = published
    with TestClient(create_app(w.backend.settings, w.svc.clock, w.svc.db)) as c:
        yield c


def ok(client: TestClient, action: str, **params: Any) -> Any:
    response = client.get(f"{A}/{action}", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["help"].endswith(f"help_show?name={action}")
    return body["result"]


def error(client: TestClient, action: str, status: int, **params: Any) -> dict[str, Any]:
    response = client.get(f"{A}/{action}", params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and "help" in body
    return body["error"]  # type: ignore[no-any-return]


def test_lists_and_shows(client: TestClient) -> None:
    assert ok(client, "package_list") == ["131016-aed-locations", "131016-events",
                                          "141003-tourism-facilities"]
    assert ok(client, "organization_list") == [LG_A, LG_B]
    orgs = ok(client, "organization_list", all_fields="true")
    assert orgs[0]["title"] == "千代田区" and orgs[0]["package_count"] == 2
    org = ok(client, "organization_show", id=LG_B, include_datasets="true")
    assert org["name"] == LG_B and [p["name"] for p in org["packages"]] == ["141003-tourism-facilities"]
    package = ok(client, "package_show", id="131016-aed-locations")
    assert package["organization"]["name"] == LG_A and package["license_id"] == "PDL-1.0"
    assert package["resources"][0]["format"] == "CSV" and package["resources"][0]["datastore_active"]
    extras = {e["key"]: e["value"] for e in package["extras"]}
    assert extras == {"standard_schema": "aed_locations", "standard_schema_version": "1.0.0",
                      "extra_columns": "x-設置台数"}
    resource = ok(client, "resource_show", id=package["resources"][0]["id"])
    assert resource["package_id"] == "131016-aed-locations"
    download = client.get(resource["url"].replace("http://testserver", ""))
    assert download.status_code == 200 and "千代田区役所" in download.text


def test_package_search(client: TestClient) -> None:
    everything = ok(client, "package_search")
    assert everything["count"] == 3 and len(everything["results"]) == 3
    assert ok(client, "package_search", q="AED")["count"] == 1
    assert ok(client, "package_search", q="横浜市")["count"] == 1
    assert ok(client, "package_search", q="*:*")["count"] == 3
    by_org = ok(client, "package_search", fq=f"organization:{LG_A}")
    assert {p["name"] for p in by_org["results"]} == {"131016-aed-locations", "131016-events"}
    assert ok(client, "package_search", fq='tags:"events" AND organization:131016')["count"] == 1
    assert ok(client, "package_search", fq="res_format:GeoJSON")["count"] == 0
    page = ok(client, "package_search", rows=1, start=1, sort="name asc")
    assert page["count"] == 3 and [p["name"] for p in page["results"]] == ["131016-events"]
    desc = ok(client, "package_search", sort="title_string desc, name asc")
    assert len(desc["results"]) == 3
    assert ok(client, "package_search", rows=0)["results"] == []


def test_datastore_search(client: TestClient) -> None:
    rid = "131016-aed-locations-csv"
    result = ok(client, "datastore_search", resource_id=rid)
    assert result["total"] == 2 and result["records"][0]["_id"] == 1
    fields = {f["id"]: f["type"] for f in result["fields"]}
    assert fields["緯度"] == "numeric" and fields["x-設置台数"] == "text" and fields["_id"] == "int"
    assert ok(client, "datastore_search", resource_id=rid, q="図書館")["total"] == 1
    filtered = ok(client, "datastore_search", resource_id=rid, filters='{"小児対応設備の有無": "有"}')
    assert [r["ID"] for r in filtered["records"]] == ["AED0001"]
    page = ok(client, "datastore_search", resource_id=rid, limit=1, offset=1, sort="ID desc",
              fields="ID,名称")
    assert page["records"] == [{"_id": 1, "ID": "AED0001", "名称": "千代田区役所"}]
    assert "offset=2" in page["_links"]["next"]
    events = ok(client, "datastore_search", resource_id="131016-events-csv", sort="定員 desc")
    assert [r["定員"] for r in events["records"]] == [30, None]


BAD_PARAMETERS = [
    ("package_search", {"rows": "-1"}, "rows"),
    ("package_search", {"rows": "abc"}, "rows"),
    ("package_search", {"rows": "5000"}, "rows"),
    ("package_search", {"start": "-5"}, "start"),
    ("package_search", {"sort": "nonsense desc"}, "sort"),
    ("package_search", {"sort": "name sideways"}, "sort"),
    ("package_search", {"fq": "colour:red"}, "fq"),
    ("package_show", {}, "id"),
    ("organization_show", {}, "id"),
    ("resource_show", {}, "id"),
    ("datastore_search", {}, "resource_id"),
    ("datastore_search", {"resource_id": "131016-aed-locations-csv", "limit": "-1"}, "limit"),
    ("datastore_search", {"resource_id": "131016-aed-locations-csv", "limit": "99999"}, "limit"),
    ("datastore_search", {"resource_id": "131016-aed-locations-csv", "filters": "{bad"}, "filters"),
    ("datastore_search", {"resource_id": "131016-aed-locations-csv", "filters": "[1]"}, "filters"),
    ("datastore_search", {"resource_id": "131016-aed-locations-csv", "filters": '{"x": 1}'}, "filters"),
    ("datastore_search", {"resource_id": "131016-aed-locations-csv", "sort": "nope asc"}, "sort"),
    ("datastore_search", {"resource_id": "131016-aed-locations-csv", "fields": "nope"}, "fields"),
    ("package_list", {"limit": "x"}, "limit"),
]


def test_bad_parameters_are_validation_errors(client: TestClient) -> None:
    # A loop, not parameters: one (PostgreSQL) database for every case.
    for action, params, field in BAD_PARAMETERS:
        err = error(client, action, 409, **params)
        assert err["__type"] == "Validation Error" and isinstance(err[field], list), params


def test_not_found_and_unknown_action_and_bad_json(client: TestClient) -> None:
    assert error(client, "package_show", 404, id="nope")["__type"] == "Not Found Error"
    assert error(client, "organization_show", 404, id="999999")["__type"] == "Not Found Error"
    assert error(client, "datastore_search", 404, resource_id="nope")["__type"] == "Not Found Error"
    assert error(client, "resource_show", 404, id="nope-csv")["__type"] == "Not Found Error"
    unknown = error(client, "package_delete", 400)
    assert unknown["__type"] == "Bad request" and "package_delete" in unknown["message"]
    bad = client.post(f"{A}/package_search", content=b"{not json",
                      headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["success"] is False
    listed = client.post(f"{A}/package_search", json=[1, 2])
    assert listed.status_code == 400
    fq_syntax = error(client, "package_search", 409, fq="(((")
    assert fq_syntax["__type"] == "Search Query Error"
    posted = client.post(f"{A}/datastore_search", json={"resource_id": "131016-events-csv",
                                                       "filters": {"ID": ["E001", "E002"]},
                                                       "q": {"イベント名": "神田"}})
    assert posted.status_code == 200 and posted.json()["result"]["total"] == 1


def test_ckanapi_client_against_a_live_server(published: World) -> None:
    w = published
    with serve(create_app(w.backend.settings, w.svc.clock, w.svc.db)) as url:
        for get_only in (False, True):
            ckan = ckanapi.RemoteCKAN(url, get_only=get_only, user_agent="kiban-tests")
            found = ckan.action.package_search(q="AED", rows=5)
            assert found["count"] == 1
            name = found["results"][0]["name"]
            package = ckan.action.package_show(id=name)
            assert package["organization"]["title"] == "千代田区"
            records = ckan.action.datastore_search(resource_id=package["resources"][0]["id"],
                                                   # a GET's parameters are strings
                                                   filters=json.dumps({"ID": "AED0002"}) if get_only
                                                   else {"ID": "AED0002"})
            assert records["records"][0]["名称"] == "千代田区立図書館"
            assert ckan.action.organization_list() == [LG_A, LG_B]
            with pytest.raises(ckanapi.NotFound):
                ckan.action.package_show(id="no-such-dataset")
            with pytest.raises(ckanapi.ValidationError):
                ckan.action.package_search(rows=-1)
