"""Pages of the life events: the resident's one checklist and visit booking (under
/portal/life-events, where the portal session cookie is sent) and the counter's arrivals with
the 特例転入 form (/console/life-events, staff session and CSRF as every console page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader

from kiban.core.errors import KibanError
from kiban.platform.auth import ROLE_LABELS, Permission
from kiban.procedures.access import check_csrf as check_resident_csrf
from kiban.procedures.access import csrf_token, optional_resident, portal_claims
from kiban.procedures.life_events import LifeEvents
from kiban.web import i18n
from kiban.web.deps import PostedForm, check_csrf, services
from kiban.web.pages import PageAuth, field_errors
from kiban.web.templating import templates as shared

router = APIRouter(include_in_schema=False)
HERE = Path(__file__).parent
_env = shared.env.overlay(loader=ChoiceLoader([FileSystemLoader(str(HERE / "templates")),
                                                shared.env.loader]))  # type: ignore[list-item]
templates = Jinja2Templates(env=_env)
PAGE_FIELDS = ["name", "kana", "birth_date", "sex", "relationship", "previous_address", "life_event_tasks"]


def life_events(request: Request) -> LifeEvents:
    return services(request).life_events


def _render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    # The portal's language (kiban.web.i18n): <html lang>, the switch, and ?lang remembered.
    response = templates.TemplateResponse(request, name, {"staff": None, "csrf": "", "role_labels": ROLE_LABELS,
                                                          **i18n.context(request), **context},
                                          status_code=status)
    return i18n.remember(request, response)


# --- the resident ---------------------------------------------------------------------------

@router.get("/portal/life-events", response_class=HTMLResponse)
def portal_page(request: Request) -> Response:
    claims = portal_claims(request)
    if claims is None:
        return RedirectResponse("/portal", status_code=303)
    view = life_events(request).resident_view(str(claims.get("sub") or ""), optional_resident(request))
    return _render(request, "life_portal.html", resident=claims, view=view, home_url="/portal",
                   resident_csrf=csrf_token(request), booked=request.query_params.get("booked"), error=None)


@router.post("/portal/life-events/book")
def portal_book(request: Request, form: PostedForm) -> Response:
    claims = portal_claims(request)
    if claims is None:
        return RedirectResponse("/portal", status_code=303)
    check_resident_csrf(request, str(form.get("csrf_token", "")))
    svc = life_events(request)
    sub = str(claims.get("sub") or "")
    try:
        svc.resident_book(sub, str(form.get("move_id", ""))[:32], str(form.get("slot_id", ""))[:32])
    except KibanError as exc:
        view = svc.resident_view(sub, optional_resident(request))
        return _render(request, "life_portal.html", status=exc.status, resident=claims, view=view,
                       home_url="/portal", resident_csrf=csrf_token(request), booked=None, error=exc)
    return RedirectResponse("/portal/life-events?booked=1", status_code=303)


# --- the counter ----------------------------------------------------------------------------

def _lgcode(session: Any) -> str:
    session.staff.require(Permission.REGISTRY_NOTIFY)
    return str(session.staff.lgcode)


@router.get("/console/life-events", response_class=HTMLResponse)
def counter_page(request: Request, session: PageAuth) -> Response:
    lgcode = _lgcode(session)
    svc = services(request)
    found = life_events(request).arrivals(session.staff, lgcode)
    if found:
        svc.privacy.record_read(session.staff, lgcode, "resident_registration",
                                [p["resident_id"] for a in found for p in a["people"] if p["resident_id"]] or ["*"],
                                PAGE_FIELDS, "page:GET /console/life-events")
    return _render(request, "life_counter.html", session=session, staff=session.staff, csrf=session.csrf_token,
                   arrivals=found, towns=svc.municipalities.towns(lgcode), errors={}, error=None, failed=None,
                   today=life_events(request).today().isoformat())


@router.post("/console/life-events/{move_id}/special-move-in")
def counter_special_move_in(request: Request, session: PageAuth, move_id: str, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    lgcode = _lgcode(session)
    svc = services(request)
    data: dict[str, Any] = {"occurred_on": str(form.get("occurred_on", "")).strip(),
                            "notified_on": str(form.get("notified_on", "")).strip() or None,
                            "address": {"town_code": str(form.get("town_code", "")),
                                        "banchi": str(form.get("banchi", "")).strip(),
                                        "katagaki": str(form.get("katagaki", "")).strip()}}
    try:
        result = life_events(request).special_move_in(session.staff, lgcode, move_id[:32], data)
    except KibanError as exc:
        found = life_events(request).arrivals(session.staff, lgcode)
        return _render(request, "life_counter.html", status=exc.status, session=session, staff=session.staff,
                       csrf=session.csrf_token, arrivals=found, towns=svc.municipalities.towns(lgcode),
                       errors=field_errors(exc), error=exc, failed=move_id,
                       today=life_events(request).today().isoformat())
    return RedirectResponse(f"/console/residents/{result['resident_ids'][0]}", status_code=303)
