"""Downloads of each version as CSV, JSON and GeoJSON, and the DCAT-AP JSON-LD of the catalog
and of each dataset parsed back with rdflib, on SQLite and PostgreSQL; bad version numbers
and unknown datasets refused without a server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rdflib import Graph, Literal, Namespace, URIRef

from kiban.opendata.service import OpenData
from kiban.web.app import create_app
from kiban_testkit import LG_A, World

SAMPLES = Path(__file__).parent / "samples"
AED = (SAMPLES / "aed_locations.csv").read_bytes()
V1 = "/api/v1/opendata/datasets"
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
# Plain namespaces: rdflib's closed ones warn when pytest probes the module's names.
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
RDF = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    svc = OpenData(world.svc.db, world.svc.clock)
    svc.publish_csv(world.admin_a, LG_A, "aed_locations", AED)
    one_row = b"\n".join(AED.splitlines()[:2])
    svc.publish_csv(world.admin_a, LG_A, "aed_locations", one_row)
    svc.publish_csv(world.admin_a, LG_A, "events", (SAMPLES / "events_sjis.csv").read_bytes())
    with TestClient(create_app(world.backend.settings, world.svc.clock, world.svc.db)) as c:
        yield c


def test_json_and_geojson_per_version(client: TestClient) -> None:
    current = client.get(f"{V1}/131016-aed-locations.json").json()
    assert current["version"] == 2 and len(current["records"]) == 1
    old = client.get(f"{V1}/131016-aed-locations.json", params={"version": 1})
    assert old.headers["content-type"].startswith("application/json")
    body = old.json()
    assert body["version"] == 1 and [r["ID"] for r in body["records"]] == ["AED0001", "AED0002"]
    assert body["fields"][-1] == "x-設置台数" and body["records"][0]["緯度"] == 35.694
    geo = client.get(f"{V1}/131016-aed-locations.geojson", params={"version": 1})
    assert geo.headers["content-type"].startswith("application/geo+json")
    features = geo.json()["features"]
    assert geo.json()["type"] == "FeatureCollection" and len(features) == 2
    assert features[0]["geometry"] == {"type": "Point", "coordinates": [139.7536, 35.694]}
    assert features[1]["properties"]["名称"] == "千代田区立図書館"
    csv_v1 = client.get(f"{V1}/131016-aed-locations.csv", params={"version": 1}).text
    assert "千代田区立図書館" in csv_v1


BAD_DOWNLOADS = [
    (f"{V1}/131016-aed-locations.json?version=0", 422),
    (f"{V1}/131016-aed-locations.json?version=x", 422),
    (f"{V1}/131016-aed-locations.geojson?version=-1", 422),
    (f"{V1}/131016-aed-locations.json?version=99", 404),
    (f"{V1}/131016-aed-locations.geojson?version=99", 404),
    (f"{V1}/nope.json", 404),
    (f"{V1}/nope.geojson", 404),
    (f"{V1}/nope.jsonld", 404),
]


def test_bad_download_requests(client: TestClient) -> None:
    for path, status in BAD_DOWNLOADS:  # a loop: one (PostgreSQL) database for every case
        response = client.get(path)
        assert response.status_code == status, path
        assert response.headers["content-type"].startswith("application/problem+json")


def test_dcat_catalog_and_dataset_parse_with_rdflib(client: TestClient) -> None:
    catalog = client.get("/api/v1/opendata/catalog.jsonld")
    assert catalog.headers["content-type"].startswith("application/ld+json")
    graph = Graph().parse(data=catalog.text, format="json-ld")
    base = "http://testserver/"
    cat = URIRef(f"{base}opendata/catalog")
    assert (cat, RDF.type, DCAT.Catalog) in graph
    datasets = set(graph.objects(cat, DCAT.dataset))
    assert datasets == {URIRef(f"{base}opendata/datasets/131016-aed-locations"),
                        URIRef(f"{base}opendata/datasets/131016-events")}
    aed = URIRef(f"{base}opendata/datasets/131016-aed-locations")
    assert (aed, RDF.type, DCAT.Dataset) in graph
    assert Literal("千代田区 AED設置箇所一覧", lang="ja") in set(graph.objects(aed, DCTERMS.title))
    assert str(graph.value(aed, DCTERMS.identifier)) == "131016-aed-locations"
    publisher = graph.value(aed, DCTERMS.publisher)
    assert graph.value(publisher, FOAF.name) == Literal("千代田区", lang="ja")
    assert graph.value(aed, DCTERMS.license) == URIRef(
        "https://www.digital.go.jp/resources/open_data/public_data_license_v1.0")
    assert graph.value(aed, DCTERMS.conformsTo) == URIRef(
        f"{base}api/v1/opendata/schemas/aed_locations")
    modified = graph.value(aed, DCTERMS.modified)
    assert isinstance(modified, Literal) and modified.datatype is not None
    formats = {str(graph.value(d, DCTERMS["format"])): graph.value(d, DCAT.downloadURL)
               for d in graph.objects(aed, DCAT.distribution)}
    assert formats == {
        "CSV": URIRef(f"{base}api/v1/opendata/datasets/131016-aed-locations.csv"),
        "JSON": URIRef(f"{base}api/v1/opendata/datasets/131016-aed-locations.json"),
        "GeoJSON": URIRef(f"{base}api/v1/opendata/datasets/131016-aed-locations.geojson")}
    one = Graph().parse(data=client.get(f"{V1}/131016-events.jsonld").text, format="json-ld")
    events = URIRef(f"{base}opendata/datasets/131016-events")
    assert (events, RDF.type, DCAT.Dataset) in one
    assert len(set(one.subjects(RDF.type, DCAT.Dataset))) == 1
    assert len(set(one.objects(events, DCAT.distribution))) == 3
