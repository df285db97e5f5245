"""DCAT-AP (the EU application profile of W3C DCAT 2, which Japan's data catalogs follow) as
JSON-LD, for the whole catalog and for each dataset. Pure: standard library only. Every
property used is a DCAT-AP one (dcat:, dct:, foaf:, vcard:, owl:, adms:); URIs are under the
site's base URL, so a harvester can follow them back to the pages and downloads."""

from __future__ import annotations

from typing import Any

CONTEXT: dict[str, Any] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "adms": "http://www.w3.org/ns/adms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dct:issued": {"@type": "xsd:dateTime"},
    "dct:modified": {"@type": "xsd:dateTime"},
    "dcat:accessURL": {"@type": "@id"},
    "dcat:downloadURL": {"@type": "@id"},
    "dcat:landingPage": {"@type": "@id"},
    "dct:conformsTo": {"@type": "@id"},
    "dct:license": {"@type": "@id"},
    "dct:spatial": {"@type": "@id"},
}
LICENSE_URI = "https://www.digital.go.jp/resources/open_data/public_data_license_v1.0"
FORMATS = (("csv", "CSV", "text/csv"), ("json", "JSON", "application/json"),
           ("geojson", "GeoJSON", "application/geo+json"))


def _ja(text: str) -> dict[str, str]:
    return {"@value": text, "@language": "ja"}


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def publisher(base: str, lgcode: str, name: str) -> dict[str, Any]:
    return {"@id": f"{base}opendata/organizations/{lgcode}", "@type": "foaf:Agent",
            "foaf:name": _ja(name), "dct:identifier": lgcode}


def dataset(d: dict[str, Any], base: str, *, point_data: bool) -> dict[str, Any]:
    """One dataset: `d` as the service returns it (with `versions`, newest first)."""
    page = f"{base}opendata/datasets/{d['id']}"
    current = d["versions"][0] if d["versions"] else {}
    formats = [f for f in FORMATS if point_data or f[0] != "geojson"]
    return {
        "@id": page, "@type": "dcat:Dataset",
        "dct:identifier": d["id"], "dct:title": _ja(d["title"]),
        "dct:description": _ja(d["notes"]),
        "dct:publisher": publisher(base, d["lgcode"], d["org_title"]),
        "dcat:contactPoint": {"@type": "vcard:Organization", "vcard:fn": d["org_title"]},
        "dct:issued": _iso(d["created_at"]), "dct:modified": _iso(d["updated_at"]),
        "owl:versionInfo": str(d["current_version"]),
        "adms:versionNotes": f"第{d['current_version']}版(標準データセット "
                             f"{d['schema_name']} {current.get('schema_version', '')})",
        "dcat:keyword": [k for k in (d["category"], d["schema_name"]) if k],
        "dct:conformsTo": f"{base}api/v1/opendata/schemas/{d['schema_name']}",
        "dct:license": LICENSE_URI, "dcat:landingPage": page,
        "dct:spatial": f"{base}opendata/organizations/{d['lgcode']}",
        "dcat:distribution": [{
            "@id": f"{page}#{ext}", "@type": "dcat:Distribution",
            "dct:title": _ja(f"{d['title']} ({label})"), "dct:format": label,
            "dcat:mediaType": media,
            "dcat:accessURL": f"{base}api/v1/opendata/datasets/{d['id']}.{ext}",
            "dcat:downloadURL": f"{base}api/v1/opendata/datasets/{d['id']}.{ext}",
            "dct:license": LICENSE_URI, "dct:modified": _iso(d["updated_at"]),
        } for ext, label, media in formats],
    }


def document(node: dict[str, Any]) -> dict[str, Any]:
    return {"@context": CONTEXT, **node}


def catalog(datasets: list[dict[str, Any]], base: str,
            point_schemas: set[str]) -> dict[str, Any]:
    return document({
        "@id": f"{base}opendata/catalog", "@type": "dcat:Catalog",
        "dct:title": _ja("Kiban 自治体オープンデータカタログ"),
        "dct:description": _ja("参加自治体の標準オープンデータセット(自治体標準オープンデータセット)の横断カタログ"),
        "dct:publisher": {"@id": f"{base}", "@type": "foaf:Agent", "foaf:name": _ja("Kiban")},
        "dct:license": LICENSE_URI, "foaf:homepage": {"@id": f"{base}opendata"},
        "dcat:dataset": [dataset(d, base, point_data=d["schema_name"] in point_schemas)
                         for d in datasets],
    })
