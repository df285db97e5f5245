"""Open data over HTTP.

- Staff publish a standard dataset by CSV upload: `POST /api/v1/municipalities/{lgcode}/
  opendata/{schema}` with the CSV as the body (UTF-8 or Shift_JIS).
- Public (no sign-in): the standard schemas, each dataset's version history and CSV, and the
  CKAN-compatible Action API at `/api/3/action/{name}` (GET or POST), with CKAN's envelope
  `{"help", "success", "result"}` and its error shapes.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from kiban.core.errors import KibanError, NotFound
from kiban.opendata.model import MAX_UPLOAD_BYTES
from kiban.opendata.service import KEY_PREFIX, BadApiKey, OpenData, RateLimited
from kiban.platform.auth import Session
from kiban.web.deps import api_session, problem, services

router = APIRouter(tags=["opendata"])
Auth = Annotated[Session, Depends(api_session)]
LgCode = Annotated[str, Path(pattern=r"^\d{6}$")]
LICENSE = {"license_id": "PDL-1.0", "license_title": "公共データ利用規約(第1.0版) PDL1.0",
           "license_url": "https://www.digital.go.jp/resources/open_data/public_data_license_v1.0"}
ACTIONS = ("package_search", "package_show", "package_list", "organization_list",
           "organization_show", "resource_show", "datastore_search", "status_show")
MAX_ROWS = 1000  # package_search rows, as CKAN's default search.rows_max
MAX_LIMIT = 32000  # datastore_search limit, as CKAN's ckan.datastore.search.rows_max
_TYPES = {"string": "text", "number": "numeric", "integer": "int", "date": "date", "time": "time"}


def opendata(request: Request) -> OpenData:
    state = request.app.state
    found: OpenData | None = getattr(state, "opendata", None)
    if found is None:
        svc = services(request)
        found = OpenData(svc.db, svc.clock)
        state.opendata = found
    return found


async def _body(request: Request) -> bytes:
    """The request body, read only to one byte past the limit (the model reports the size)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            break
    return b"".join(chunks)


# Staff: publishing

@router.post("/api/v1/municipalities/{lgcode}/opendata/{schema_name}", status_code=201,
             summary="Publish a standard dataset from a CSV upload (a new version)")
async def publish(request: Request, session: Auth, lgcode: LgCode, schema_name: str,
                  title: str = "", notes: str = "", filename: str = "") -> dict[str, Any]:
    data = await _body(request)
    svc = opendata(request)
    done = await run_in_threadpool(lambda: svc.publish_csv(
        session.staff, lgcode, schema_name, data, title=title, notes=notes, filename=filename))
    return {"dataset": done.dataset_id, "version": done.version, "rows": done.rows,
            "encoding": done.encoding, "extra_columns": done.extra_columns}


# Public: schemas, history, downloads

@router.get("/api/v1/opendata/schemas", summary="The standard dataset schemas (public)")
def schemas(request: Request) -> list[dict[str, Any]]:
    return [{"name": s.name, "title": s.title, "version": s.version, "category": s.category}
            for s in opendata(request).schemas.values()]


@router.get("/api/v1/opendata/schemas/{schema_name}",
            summary="One standard schema as a Frictionless Table Schema (public)")
def schema(request: Request, schema_name: str) -> dict[str, Any]:
    return opendata(request).schema(schema_name).as_dict()


@router.get("/api/v1/opendata/datasets/{name}/versions", summary="A dataset's history (public)")
def history(request: Request, name: str) -> list[dict[str, Any]]:
    found = opendata(request).dataset(name)
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()
             if k not in ("published_by",)} for row in found["versions"]]


def api_key(request: Request) -> str | None:
    """A data API key from `X-API-Key`, or `Authorization` (bare, as CKAN clients send it,
    or as a bearer token). A staff token there is not a data key: anonymous limits apply."""
    explicit = request.headers.get("x-api-key", "").strip()
    if explicit:
        return explicit  # checked, and refused if unknown
    header = request.headers.get("authorization", "").strip()
    key = header[7:].strip() if header.lower().startswith("bearer ") else header
    return key if key.startswith(KEY_PREFIX) else None


def admit(request: Request) -> Response | None:
    """None when the caller may go ahead; else the refusal (403 bad key, 429 with
    Retry-After) as problem+json."""
    try:
        opendata(request).admit(api_key(request), request.client.host if request.client else "-")
    except RateLimited as exc:
        refused = problem(exc, request.url.path)
        refused.headers["retry-after"] = str(exc.retry_after)
        return refused
    except BadApiKey as exc:
        return problem(exc, request.url.path)
    return None


Version = Annotated[int | None, Query(ge=1)]


@router.get("/api/v1/opendata/datasets/{name}.csv", summary="A dataset version as CSV (public)")
def download(request: Request, name: str, version: Version = None) -> Response:
    refused = admit(request)
    if refused is not None:
        return refused
    text = opendata(request).csv(name, version)
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{name}.csv"'})


def _json(body: Any, media_type: str, filename: str) -> Response:
    return Response(json.dumps(body, ensure_ascii=False).encode("utf-8"), media_type=media_type,
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


@router.get("/api/v1/opendata/datasets/{name}.json",
            summary="A dataset version as JSON: fields and records (public)")
def download_json(request: Request, name: str, version: Version = None) -> Response:
    refused = admit(request)
    if refused is not None:
        return refused
    return _json(opendata(request).json_records(name, version), "application/json",
                 f"{name}.json")


@router.get("/api/v1/opendata/datasets/{name}.geojson",
            summary="A dataset version as GeoJSON points (public; datasets with 緯度・経度)")
def download_geojson(request: Request, name: str, version: Version = None) -> Response:
    refused = admit(request)
    if refused is not None:
        return refused
    return _json(opendata(request).geojson(name, version), "application/geo+json",
                 f"{name}.geojson")


@router.get("/api/v1/opendata/datasets/{name}.jsonld",
            summary="A dataset as DCAT-AP JSON-LD (public)")
def dcat_dataset(request: Request, name: str) -> Response:
    refused = admit(request)
    if refused is not None:
        return refused
    return Response(json.dumps(opendata(request).dcat_dataset(name, str(request.base_url)),
                               ensure_ascii=False), media_type="application/ld+json")


@router.get("/api/v1/opendata/catalog.jsonld",
            summary="The whole catalog as DCAT-AP JSON-LD (public)")
def dcat_catalog(request: Request) -> Response:
    refused = admit(request)
    if refused is not None:
        return refused
    return Response(json.dumps(opendata(request).dcat_catalog(str(request.base_url)),
                               ensure_ascii=False), media_type="application/ld+json")


# Developer access: API keys

class KeyRequest(BaseModel):
    name: str = Field(max_length=100)
    contact: str = Field(max_length=200)
    purpose: str = Field(default="", max_length=2000)


@router.post("/api/v1/opendata/keys", status_code=201,
             summary="Register as a data user: a new API key (shown once, stored hashed)")
def register_key(request: Request, body: KeyRequest) -> Response:
    svc = opendata(request)
    # Sign-ups count against the caller's anonymous limit, so keys cannot be minted in bulk.
    refused = admit(request)
    if refused is not None:
        return refused
    key, row = svc.register_key(body.name, body.contact, body.purpose)
    return JSONResponse({"key": key, "id": row["id"], "prefix": row["prefix"],
                         "per_minute": row["per_minute"],
                         "anonymous_per_minute": svc.anonymous_per_minute}, status_code=201)


@router.get("/api/v1/opendata/keys/me", summary="The calling key: its limit and usage per day")
def my_key(request: Request) -> Response:
    key = api_key(request)
    if not key:
        return problem(BadApiKey(), request.url.path)
    found = opendata(request).key(key)
    return JSONResponse({"id": found["id"], "prefix": found["prefix"], "name": found["name"],
                         "per_minute": found["per_minute"],
                         "created_at": found["created_at"].isoformat(),
                         "usage": [{"day": u["day"].isoformat(), "requests": u["requests"]}
                                   for u in found["usage"]]})


@router.delete("/api/v1/opendata/keys/me", status_code=204, summary="Revoke the calling key")
def revoke_key(request: Request) -> Response:
    key = api_key(request)
    if not key:
        return problem(BadApiKey(), request.url.path)
    opendata(request).revoke_key(key)
    return Response(status_code=204)


# CKAN-compatible Action API

class CkanError(Exception):
    def __init__(self, status: int, kind: str, message: str = "", **extra: Any) -> None:
        super().__init__(message or kind)
        self.status = status
        self.body: dict[str, Any] = {"__type": kind, **extra}
        if message:
            self.body["message"] = message


def _invalid(field: str, message: str) -> CkanError:
    error = CkanError(409, "Validation Error")
    error.body[field] = [message]
    return error


def _natural(params: dict[str, Any], name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise _invalid(name, "Invalid integer") from None
    if value < 0:
        raise _invalid(name, "Must be a natural number")
    if value > maximum:
        raise _invalid(name, f"Must be less than or equal to {maximum}")
    return value


def _text(params: dict[str, Any], name: str, required: bool = False) -> str:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _invalid(name, "Missing value")
        return ""
    if not isinstance(raw, str):
        raise _invalid(name, "Must be a string")
    return raw


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _org(row: dict[str, Any], count: int | None = None) -> dict[str, Any]:
    lgcode = row.get("lgcode") or row["id"]
    title = row.get("org_title") or row.get("name")
    org = {"id": lgcode, "name": lgcode, "title": title, "display_name": title,
           "description": f"{row.get('prefecture', '')}{title}(全国地方公共団体コード {lgcode})",
           "type": "organization", "is_organization": True, "state": "active",
           "approval_status": "approved", "image_url": ""}
    if "created_at" in row:
        org["created"] = _iso(row["created_at"])
    if count is not None:
        org["package_count"] = count
    return org


def _resource(d: dict[str, Any], base: str) -> dict[str, Any]:
    current = d["versions"][0] if d["versions"] else {}
    return {
        "id": f"{d['id']}-csv", "package_id": d["id"], "name": f"{d['title']} (CSV)",
        "description": f"第{d['current_version']}版", "format": "CSV", "mimetype": "text/csv",
        "url": f"{base}api/v1/opendata/datasets/{d['id']}.csv", "datastore_active": True,
        "state": "active", "position": 0, "created": _iso(d["created_at"]),
        "last_modified": _iso(d["updated_at"]), "hash": current.get("sha256", ""),
        "schema": f"{base}api/v1/opendata/schemas/{d['schema_name']}",
    }


def _package(d: dict[str, Any], base: str, schema_version: str) -> dict[str, Any]:
    current = d["versions"][0] if d["versions"] else {}
    return {
        "id": d["id"], "name": d["id"], "title": d["title"], "notes": d["notes"],
        "type": "dataset", "state": "active", "private": False,
        "owner_org": d["lgcode"], "organization": {k: v for k, v in _org(d).items()},
        "metadata_created": _iso(d["created_at"]), "metadata_modified": _iso(d["updated_at"]),
        "version": str(d["current_version"]), **LICENSE,
        "author": d["org_title"], "maintainer": d["org_title"],
        "tags": [{"name": d["category"], "display_name": d["category"]}] if d["category"] else [],
        "num_tags": 1 if d["category"] else 0, "groups": [],
        "extras": [{"key": "standard_schema", "value": d["schema_name"]},
                   {"key": "standard_schema_version", "value": current.get("schema_version",
                                                                           schema_version)},
                   {"key": "extra_columns", "value": ",".join(current.get("extra_columns", []))}],
        "resources": [_resource(d, base)], "num_resources": 1,
        "versions": [{"version": v["version"], "published_at": _iso(v["published_at"]),
                      "rows": v["row_count"], "sha256": v["sha256"]} for v in d["versions"]],
    }


_FQ = re.compile(r'\s*(?:AND\s+)?\+?([A-Za-z_]+):("[^"]*"|\S+)')
_FQ_FIELDS = {"organization": "lgcodes", "owner_org": "lgcodes", "name": "names",
              "standard_schema": "schemas", "tags": "categories", "res_format": "formats"}
_SORT_FIELDS = {"name": "name", "title_string": "title", "title": "title",
                "metadata_modified": "metadata_modified", "metadata_created": "metadata_created"}


def _parse_fq(fq: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    pos = 0
    fq = fq.strip()
    while pos < len(fq):
        m = _FQ.match(fq, pos)
        if m is None:
            raise CkanError(409, "Search Query Error", f"Invalid fq: {fq[pos:]!r}")
        key, value = m.group(1), m.group(2).strip('"')
        if key not in _FQ_FIELDS:
            raise _invalid("fq", f"Unsupported field: {key}")
        out.setdefault(_FQ_FIELDS[key], []).append(value)
        pos = m.end()
        while pos < len(fq) and fq[pos].isspace():
            pos += 1
    return out


def _parse_sort(sort: str) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for part in sort.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise _invalid("sort", f"Invalid sort: {part.strip()!r}")
        key = words[0]
        descending = len(words) == 2 and words[1].lower() == "desc"
        if key == "score":
            continue  # no relevance score: newest first stands in
        if key not in _SORT_FIELDS:
            raise _invalid("sort", f"Cannot sort by {key!r}")
        order.append((_SORT_FIELDS[key], descending))
    return order


def _package_search(svc: OpenData, params: dict[str, Any], base: str) -> dict[str, Any]:
    q = _text(params, "q")
    rows = _natural(params, "rows", 10, MAX_ROWS)
    start = _natural(params, "start", 0, 10**9)
    sort = _text(params, "sort") or "score desc, metadata_modified desc"
    fq = _parse_fq(_text(params, "fq"))
    order = _parse_sort(sort)
    if q.strip() in ("*:*", "*"):
        q = ""
    formats = fq.pop("formats", None)
    if formats is not None and not any(f.upper() == "CSV" for f in formats):
        return {"count": 0, "results": [], "sort": sort, "facets": {}, "search_facets": {}}
    count, found = svc.search(text=q, order=order, limit=rows, offset=start, **fq)
    schema_versions = {s.name: s.version for s in svc.schemas.values()}
    return {"count": count, "sort": sort, "facets": {}, "search_facets": {},
            "results": [_package(d, base, schema_versions.get(d["schema_name"], ""))
                        for d in found]}


def _package_show(svc: OpenData, params: dict[str, Any], base: str) -> dict[str, Any]:
    name = _text(params, "id", required=True)
    d = _found(lambda: svc.dataset(name))
    return _package(d, base, svc.schemas[d["schema_name"]].version
                    if d["schema_name"] in svc.schemas else "")


def _found(call: Any) -> Any:
    try:
        return call()
    except NotFound:
        raise CkanError(404, "Not Found Error", "Not found") from None


def _resource_dataset(svc: OpenData, rid: str) -> dict[str, Any]:
    if not rid.endswith("-csv"):
        raise CkanError(404, "Not Found Error", "Not found")
    found: dict[str, Any] = _found(lambda: svc.dataset(rid[:-4]))
    return found


def _datastore_search(svc: OpenData, params: dict[str, Any], base: str) -> dict[str, Any]:
    rid = _text(params, "resource_id", required=True) if "id" not in params else _text(params, "id")
    limit = _natural(params, "limit", 100, MAX_LIMIT)
    offset = _natural(params, "offset", 0, 10**9)
    d = _resource_dataset(svc, rid)
    meta = _found(lambda: svc.version(d["id"]))
    columns: list[str] = meta["columns"]
    schema = svc.schemas.get(d["schema_name"])
    types = {f.name: _TYPES.get(f.type, "text") for f in schema.fields} if schema else {}
    filters = params.get("filters") or {}
    if isinstance(filters, str):
        try:
            filters = json.loads(filters)
        except ValueError:
            raise _invalid("filters", "Cannot parse JSON") from None
    if not isinstance(filters, dict):
        raise _invalid("filters", "Not a json object")
    wanted_values: dict[str, list[str]] = {}
    for key, wanted in filters.items():
        if key not in columns and key != "_id":
            raise _invalid("filters", f"field {key!r} not in table")
        wanted_values[key] = [str(v) for v in (wanted if isinstance(wanted, list) else [wanted])]
    q = params.get("q") or ""
    words: list[str] = []
    field_words: dict[str, str] = {}
    if isinstance(q, dict):
        for key, word in q.items():
            if key not in columns:
                raise _invalid("q", f"field {key!r} not in table")
            field_words[key] = str(word)
    elif isinstance(q, str):
        words = q.split()
    else:
        raise _invalid("q", "Must be a string or a json object")
    fields_param = params.get("fields")
    if fields_param:
        wanted_fields = (fields_param if isinstance(fields_param, list)
                         else [f.strip() for f in str(fields_param).split(",") if f.strip()])
        for f in wanted_fields:
            if f not in columns and f != "_id":
                raise _invalid("fields", f"field {f!r} not in table")
        shown = [c for c in wanted_fields if c != "_id"]
    else:
        shown = columns
    order: list[tuple[str, bool]] = []
    for part in [p for p in _text(params, "sort").split(",") if p.strip()]:
        words_of = part.split()
        if len(words_of) > 2 or (len(words_of) == 2 and words_of[1].lower() not in ("asc", "desc")):
            raise _invalid("sort", f"Invalid sort: {part.strip()!r}")
        key = words_of[0].strip('"')
        if key not in columns and key != "_id":
            raise _invalid("sort", f"field {key!r} not in table")
        order.append((key, len(words_of) == 2 and words_of[1].lower() == "desc"))
    total, page = svc.search_records(
        d["id"], meta, numeric={c for c, t in types.items() if t in ("numeric", "int")},
        filters=wanted_values, words=words, field_words=field_words, order=order, limit=limit,
        offset=offset)
    link = {"resource_id": rid, **({"limit": str(limit)} if "limit" in params else {})}
    return {
        "resource_id": rid, "include_total": True, "total": total, "total_was_estimated": False,
        "limit": limit, "offset": offset, "records_format": "objects",
        "fields": [{"id": "_id", "type": "int"}] + [{"id": c, "type": types.get(c, "text")}
                                                     for c in shown],
        "records": [{"_id": r["_id"], **{c: r.get(c) for c in shown}} for r in page],
        "_links": {"start": f"/api/3/action/datastore_search?{urlencode(link)}",
                   "next": f"/api/3/action/datastore_search?"
                           f"{urlencode({**link, 'offset': str(offset + limit)})}"},
    }


def _dispatch(svc: OpenData, name: str, params: dict[str, Any], base: str) -> Any:
    if name == "status_show":
        return {"site_title": "Kiban オープンデータ", "site_url": base.rstrip("/"),
                "ckan_version": "2.10.0", "extensions": ["datastore"], "locale_default": "ja"}
    if name == "package_search":
        return _package_search(svc, params, base)
    if name == "package_show":
        return _package_show(svc, params, base)
    if name == "package_list":
        limit = _natural(params, "limit", MAX_ROWS, MAX_ROWS)
        return svc.names(limit, _natural(params, "offset", 0, 10**9))
    if name == "organization_list":
        orgs = svc.organizations()
        all_fields = str(params.get("all_fields", "")).lower() in ("true", "1", "yes")
        limit = _natural(params, "limit", 1000, 1000)
        offset = _natural(params, "offset", 0, 10**9)
        orgs = orgs[offset:offset + limit]
        return [_org(o, o["count"]) for o in orgs] if all_fields else [o["lgcode"] for o in orgs]
    if name == "organization_show":
        code = _text(params, "id", required=True)
        org = _found(lambda: svc.organization(code))
        result = _org(org, org["count"])
        if str(params.get("include_datasets", "")).lower() in ("true", "1", "yes"):
            result["packages"] = _package_search(svc, {"fq": f"organization:{code}",
                                                       "rows": "1000"}, base)["results"]
        return result
    if name == "resource_show":
        d = _resource_dataset(svc, _text(params, "id", required=True))
        return _resource(d, base)
    if name == "datastore_search":
        return _datastore_search(svc, params, base)
    raise CkanError(400, "Bad request", f"Bad request - Action name not known: {name}")


def _ckan(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


async def action(request: Request, name: str) -> JSONResponse:
    base = str(request.base_url)
    help_url = f"{base}api/3/action/help_show?name={name}"
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        raw = await request.body()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                return _ckan(400, {"help": help_url, "success": False, "error": {
                    "__type": "Bad request", "message": "Bad request - JSON Error: could not parse"}})
            if not isinstance(body, dict):
                return _ckan(400, {"help": help_url, "success": False, "error": {
                    "__type": "Bad request",
                    "message": "Bad request - JSON Error: Request data JSON decoded to "
                               f"{body!r} but it needs to be a dictionary."}})
            params.update(body)
    svc = opendata(request)
    client = request.client.host if request.client else "-"
    try:
        await run_in_threadpool(svc.admit, api_key(request), client)
    except RateLimited as exc:
        return JSONResponse({"help": help_url, "success": False, "error": {
            "__type": "Rate Limit Error", "message": exc.en}}, status_code=429,
            headers={"retry-after": str(exc.retry_after)})
    except BadApiKey as exc:
        return _ckan(403, {"help": help_url, "success": False, "error": {
            "__type": "Authorization Error", "message": exc.en}})
    try:
        result = await run_in_threadpool(_dispatch, svc, name, params, base)
    except CkanError as exc:
        return _ckan(exc.status, {"help": help_url, "success": False, "error": exc.body})
    except KibanError as exc:
        return _ckan(exc.status, {"help": help_url, "success": False,
                                  "error": {"__type": "Validation Error", "message": exc.en}})
    return _ckan(200, {"help": help_url, "success": True, "result": result})



# CKAN serves the API under /api/3/action and /api/action alike (ckanapi calls the second).
for _path, _shown in (("/api/3/action/{name}", True), ("/api/action/{name}", False)):
    for _method in ("GET", "POST"):
        router.add_api_route(_path, action, methods=[_method], include_in_schema=_shown,
                             operation_id=f"ckan_action_{_method.lower()}" if _shown else None,
                             summary="CKAN-compatible Action API (public, read-only): "
                                     + ", ".join(ACTIONS))
