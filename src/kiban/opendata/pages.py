"""Public catalog pages (/opendata), in Japanese, no sign-in: datasets across municipalities
with search and filters, each dataset with its versions, downloads and a map of its points,
record search (words, town, event dates, distance) and record pages, and the developer page
where data users get an API key. The map is inline SVG: no outside scripts or tiles."""

from __future__ import annotations

import re
import secrets
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kiban.core.errors import FieldError, Forbidden, KibanError
from kiban.opendata import model
from kiban.opendata.api import admit, opendata
from kiban.platform.auth import constant_time_equal
from kiban.web.deps import PostedForm, optional_session, services
from kiban.web.pages import field_errors, render

router = APIRouter(prefix="/opendata", include_in_schema=False)
PAGE_SIZE = 20
FORM_COOKIE = "kiban_od_form"  # double-submit token of the key form (visitors have no session)
CATEGORY_LABELS = {"facilities": "公共施設", "health": "保健・医療", "disaster": "防災",
                   "tourism": "観光", "events": "イベント", "childcare": "子育て",
                   "population": "人口"}


def _int(raw: str, name: str, label: str, low: int, high: int, errors: list[FieldError]) -> int:
    try:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError
    except ValueError:
        errors.append(FieldError(name, f"{label}は{low}〜{high}の整数で入力してください。",
                                 f"{name}: an integer from {low} to {high}"))
        return low
    return value


def _float(raw: str, name: str, label: str, low: float, high: float,
           errors: list[FieldError]) -> float | None:
    if not raw.strip():
        return None
    try:
        value = float(raw)
        if not low <= value <= high:  # NaN fails here too
            raise ValueError
    except ValueError:
        errors.append(FieldError(name, f"{label}は{low}〜{high}の数値で入力してください。",
                                 f"{name}: a number from {low} to {high}"))
        return None
    return value


def _date(raw: str, name: str, label: str, errors: list[FieldError]) -> str:
    if not raw.strip():
        return ""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw.strip()):
            raise ValueError
        return date.fromisoformat(raw.strip()).isoformat()
    except ValueError:
        errors.append(FieldError(name, f"{label}は YYYY-MM-DD で入力してください。",
                                 f"{name}: a date as YYYY-MM-DD"))
        return ""


def _choices(request: Request) -> dict[str, Any]:
    svc = opendata(request)
    return {"organizations": svc.organizations(),
            "schemas": sorted(svc.schemas.values(), key=lambda s: s.title),
            "categories": sorted({s.category for s in svc.schemas.values()}),
            "category_labels": CATEGORY_LABELS, "point_schemas": svc.point_schemas}


def _map(records: list[dict[str, Any]], groups: dict[str, int],
         request: Request | None = None) -> dict[str, Any]:
    points = [(r["緯度"], r["経度"], str(r.get("名称") or r.get("イベント名") or r.get("ID")),
               f"/opendata/datasets/{r['dataset_id']}/records/{r['_id']}",
               groups.setdefault(r["schema_name"], len(groups) % 6))
              for r in records if r.get("緯度") is not None and r.get("経度") is not None]
    shapes = opendata(request).map_outlines(records) if request is not None else None
    return model.map_layout(points, outlines=shapes)


@router.get("", response_class=HTMLResponse)
def catalog(request: Request, q: str = "", lgcode: str = "", category: str = "",
            schema: str = "", page: str = "1") -> Response:
    svc = opendata(request)
    errors: list[FieldError] = []
    number = _int(page, "page", "ページ", 1, 10_000, errors)
    values = {"q": q[:200], "lgcode": lgcode, "category": category, "schema": schema}
    count, found = 0, list[dict[str, Any]]()
    if not errors:
        count, found = svc.search(
            text=values["q"], lgcodes=[lgcode] if lgcode else None,
            categories=[category] if category else None, schemas=[schema] if schema else None,
            order=[("metadata_modified", True)], limit=PAGE_SIZE,
            offset=(number - 1) * PAGE_SIZE)
    return render(request, "opendata_catalog.html", optional_session(request),
                  status=422 if errors else 200, values=values, count=count, datasets=found,
                  page=number, pages=max(1, -(-count // PAGE_SIZE)),
                  errors={e.field: e.ja for e in errors}, **_choices(request))


@router.get("/organizations/{lgcode}")
def organization(lgcode: str) -> Response:
    return RedirectResponse(f"/opendata?{urlencode({'lgcode': lgcode})}", status_code=303)


@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, name: str) -> Response:
    svc = opendata(request)
    found = svc.dataset(name)
    meta, rows = svc.records(name)
    points = found["schema_name"] in svc.point_schemas
    drawn = _map([{**r, "dataset_id": name, "schema_name": found["schema_name"]} for r in rows],
                 {}, request) if points else None
    return render(request, "opendata_dataset.html", optional_session(request), d=found,
                  meta=meta, rows=rows[:PAGE_SIZE], total=len(rows), points=points, map=drawn,
                  schema=svc.schemas.get(found["schema_name"]),
                  category_labels=CATEGORY_LABELS)


@router.get("/datasets/{name}/records/{row}", response_class=HTMLResponse)
def record_page(request: Request, name: str, row: int) -> Response:
    svc = opendata(request)
    found, record = svc.record(name, row)
    meta = svc.version(name)
    return render(request, "opendata_record.html", optional_session(request), d=found,
                  record=record, columns=meta["columns"])


@router.get("/records", response_class=HTMLResponse)
def records_page(request: Request, q: str = "", lgcode: str = "", schema: str = "",
                 date_from: str = "", date_to: str = "", lat: str = "", lon: str = "",
                 km: str = "1") -> Response:
    svc = opendata(request)
    errors: list[FieldError] = []
    start = _date(date_from, "date_from", "開始日", errors)
    end = _date(date_to, "date_to", "終了日", errors)
    if start and end and start > end:
        errors.append(FieldError("date_to", "終了日は開始日以降にしてください。",
                                 "date_to: before date_from"))
    latitude = _float(lat, "lat", "緯度", *model.LAT_RANGE, errors)
    longitude = _float(lon, "lon", "経度", *model.LON_RANGE, errors)
    radius = _float(km, "km", "距離(km)", 0.01, 50.0, errors) or 1.0
    if (latitude is None) != (longitude is None) and not errors:
        errors.append(FieldError("lat" if latitude is None else "lon",
                                 "緯度と経度は両方入力してください。", "give both lat and lon"))
    values = {"q": q[:200], "lgcode": lgcode, "schema": schema, "date_from": date_from,
              "date_to": date_to, "lat": lat, "lon": lon, "km": km}
    found: list[dict[str, Any]] = []
    searched = any(v for k, v in values.items() if k != "km")
    if searched and not errors:
        near = (latitude, longitude) if latitude is not None and longitude is not None else None
        found = svc.find_records(text=values["q"], lgcode=lgcode, schema=schema,
                                 date_from=start, date_to=end, near=near, km=radius)
    return render(request, "opendata_records.html", optional_session(request),
                  status=422 if errors else 200, values=values, records=found,
                  searched=searched, errors={e.field: e.ja for e in errors},
                  map=_map(found, {}, request) if found else None, **_choices(request))


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request, lgcode: str = "", schema: str = "") -> Response:
    svc = opendata(request)
    schemas = [schema] if schema in svc.point_schemas else sorted(svc.point_schemas)
    found: list[dict[str, Any]] = []
    for name in schemas:
        found += svc.find_records(lgcode=lgcode, schema=name, limit=2000)
    groups: dict[str, int] = {}
    drawn = _map(found, groups, request)
    legend = [(svc.schemas[n].title, g) for n, g in groups.items()]
    return render(request, "opendata_map.html", optional_session(request), map=drawn,
                  legend=legend, values={"lgcode": lgcode, "schema": schema},
                  count=len(drawn["points"]), **_choices(request))


def _developers(request: Request, status: int = 200, errors: dict[str, str] | None = None,
                values: dict[str, str] | None = None, key: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    svc = opendata(request)
    response = render(request, "opendata_developers.html", optional_session(request),
                      status=status, errors=errors or {}, values=values or {}, key=key,
                      form_token=token, anonymous_per_minute=svc.anonymous_per_minute,
                      base=str(request.base_url).rstrip("/"))
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="strict",
                        secure=services(request).settings.cookie_secure,
                        path="/opendata/developers")
    response.headers["cache-control"] = "no-store"  # the page may show a new key once
    return response


@router.get("/developers", response_class=HTMLResponse)
def developers(request: Request) -> Response:
    return _developers(request)


@router.post("/developers")
def register_key(request: Request, form: PostedForm) -> Response:
    """A visitor registers as a data user and sees the new key once. The form carries a
    double-submit token (no session to bind a CSRF token to); sign-ups count against the
    visitor's anonymous rate limit."""
    sent, expected = str(form.get("form_token", "")), request.cookies.get(FORM_COOKIE, "")
    if not expected or not constant_time_equal(sent, expected):
        raise Forbidden("フォームの有効期限が切れました。もう一度お試しください。",
                        "The form token is missing or wrong.")
    values = {k: str(form.get(k, ""))[:2000] for k in ("name", "contact", "purpose")}
    refused = admit(request)
    if refused is not None:
        return refused
    try:
        key, _ = opendata(request).register_key(values["name"], values["contact"],
                                                values["purpose"])
    except KibanError as exc:
        return _developers(request, exc.status, field_errors(exc), values)
    return _developers(request, key=key)
