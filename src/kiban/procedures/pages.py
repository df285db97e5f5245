"""Pages of online procedures: the resident's (under /portal/procedures, where the portal
session cookie is sent) and the staff work queue (/console/procedures)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader

from kiban.core.errors import FieldError, KibanError, ValidationFailed
from kiban.identity import service as identity_service
from kiban.platform.auth import ROLE_LABELS
from kiban.procedures.access import (
    after_approval,
    csrf_token,
    optional_resident,
    portal_claims,
    procedures,
)
from kiban.procedures.access import (
    check_csrf as check_resident_csrf,
)
from kiban.procedures.catalog import Procedure
from kiban.procedures.service import STATES, Procedures, Resident, SubmissionStopped, canonical_payload
from kiban.web import i18n
from kiban.web.deps import PostedForm, check_csrf, services
from kiban.web.pages import PageAuth
from kiban.web.templating import templates as shared

router = APIRouter(include_in_schema=False)
HERE = Path(__file__).parent
_env = shared.env.overlay(loader=ChoiceLoader([FileSystemLoader(str(HERE / "templates")), shared.env.loader]))  # type: ignore[list-item]
templates = Jinja2Templates(env=_env)
PAGE_FIELDS = ["name", "birth_date", "sex", "address", "application", "evidence"]


def _render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    # The portal's language (kiban.web.i18n): <html lang>, the switch, and ?lang remembered.
    response = templates.TemplateResponse(request, name, {"staff": None, "csrf": "", "role_labels": {},
                                                          **i18n.context(request), **context},
                                          status_code=status)
    return i18n.remember(request, response)


# --- the resident ---------------------------------------------------------------------------

def _resident_or_login(request: Request) -> Resident | Response:
    who = optional_resident(request)
    if who is None:
        return RedirectResponse("/portal", status_code=303)
    return who


@router.get("/portal/procedures", response_class=HTMLResponse)
def portal_home(request: Request) -> Response:
    who = _resident_or_login(request)
    if isinstance(who, Response):
        return who
    svc = procedures(request)
    return _render(request, "procedures_portal.html", resident=portal_claims(request), catalog=svc.catalog.values(),
                   applications=svc.my_applications(who), notifications=svc.notifications(who))


def _coerce(proc: Procedure, form: Any) -> dict[str, Any]:
    """Form fields as the schema's types; what cannot be converted is kept as entered (the
    schema then names it), so nothing the resident typed is lost."""
    out: dict[str, Any] = {}
    for field in proc.fields():
        name, kind = field["name"], field["type"]
        if kind == "boolean":
            out[name] = form.get(name) in ("on", "true", "1")
            continue
        raw = str(form.get(name, "")).strip()
        if raw == "":
            continue
        if kind == "integer":
            try:
                out[name] = int(raw)
            except ValueError:
                out[name] = raw
        else:
            out[name] = raw
    return out


def _form_page(request: Request, proc: Procedure, values: dict[str, Any], draft_id: str | None,
               errors: dict[str, str] | None = None, message: KibanError | None = None,
               saved: bool = False, status: int = 200) -> Response:
    return _render(request, "procedures_form.html", status=status, proc=proc, fields=proc.fields(),
                   values=values, draft_id=draft_id or "", errors=errors or {}, message=message, saved=saved,
                   resident_csrf=csrf_token(request), demo_card=_demo_card(request) is not None)


@router.get("/portal/procedures/apply/{procedure_id}", response_class=HTMLResponse)
def form_page(request: Request, procedure_id: str, draft: str = "") -> Response:
    who = _resident_or_login(request)
    if isinstance(who, Response):
        return who
    svc = procedures(request)
    proc = svc.procedure(procedure_id)
    values: dict[str, Any] = {}
    if draft:
        values = dict(svc.my_application(who, draft)["form"])
    return _form_page(request, proc, values, draft or None)


def _demo_card(request: Request) -> Path | None:
    """The server-side virtual card of the demo (never in production)."""
    if services(request).settings.mode == "production":
        return None
    path = Path(os.environ.get("KIBAN_PROCEDURES_DEMO_CARD")
                or identity_service.PROJECT_ROOT / "var" / "demo-card.p12")
    return path if path.exists() else None


@router.post("/portal/procedures/apply/{procedure_id}")
def form_post(request: Request, procedure_id: str, form: PostedForm) -> Response:
    who = _resident_or_login(request)
    if isinstance(who, Response):
        return who
    check_resident_csrf(request, str(form.get("csrf_token", "")))
    svc = procedures(request)
    proc = svc.procedure(procedure_id)
    values = _coerce(proc, form)
    draft_id = str(form.get("draft_id", "")) or None
    email = str(form.get("email", "")).strip() or None
    if form.get("action") != "submit":
        draft = svc.save_draft(who, proc.id, values, draft_id, email)
        return _form_page(request, proc, values, draft["id"], saved=True)
    card = _demo_card(request)
    payload = canonical_payload(who.lgcode, proc.id, values, draft_id)
    try:
        if card is None:
            draft = svc.save_draft(who, proc.id, values, draft_id, email)
            raise SubmissionStopped(
                "署名に使うカードがありません(デモの仮想カードが未設定です)。下書きを保存しました。",
                "No card to sign with (the demo's virtual card is not set up); the draft was saved.",
                "no-card", draft["id"])
        pin = os.environ.get("KIBAN_PROCEDURES_DEMO_PIN", "KIBANTEST1")
        signature = identity_service.sign_with_card(card, pin, payload, services(request).settings.mode)
        _, view = svc.submit(who, payload, base64.b64encode(signature).decode(), draft_id=draft_id,
                                  email=email)
    except SubmissionStopped as exc:
        return _form_page(request, proc, values, exc.draft_id, message=exc, status=exc.status)
    except ValidationFailed as exc:
        errors = {e.field: e.ja for e in exc.errors}
        return _form_page(request, proc, values, getattr(exc, "draft_id", draft_id), errors=errors,
                          message=exc, status=422)
    except identity_service.IdentityError:
        draft = svc.save_draft(who, proc.id, values, draft_id, email)
        return _form_page(request, proc, values, draft["id"], status=422, message=KibanError(
            "カードで署名できませんでした。下書きを保存しました。", "The card could not sign; the draft was saved."))
    return RedirectResponse(f"/portal/procedures/applications/{view['id']}", status_code=303)


@router.get("/portal/procedures/applications/{application_id}", response_class=HTMLResponse)
def portal_application(request: Request, application_id: str) -> Response:
    who = _resident_or_login(request)
    if isinstance(who, Response):
        return who
    view = procedures(request).my_application(who, application_id)
    return _render(request, "procedures_status.html", app=view)


@router.get("/portal/procedures/applications/{application_id}/document.pdf")
def portal_document(request: Request, application_id: str) -> Response:
    who = _resident_or_login(request)
    if isinstance(who, Response):
        return who
    serial, pdf = procedures(request).my_document(who, application_id)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{serial}.pdf"',
                             "Cache-Control": "no-store"})


# --- the staff work queue -------------------------------------------------------------------

def _purpose(session: Any) -> str:
    """The reader's own purpose of use (a tax officer reads for the tax certificate)."""
    roles = {str(r) for r in session.staff.roles}
    return "tax_assessment" if roles == {"tax_officer"} else "resident_registration"


def _staff_lgcode(session: Any) -> str:
    lgcode = str(session.staff.lgcode or "")
    Procedures.require_handler(session.staff, lgcode)
    return lgcode


@router.get("/console/procedures", response_class=HTMLResponse)
def queue_page(request: Request, session: PageAuth, procedure: str = "", state: str = "", page: int = 1) -> Response:
    lgcode = _staff_lgcode(session)
    svc = procedures(request)
    result = svc.queue(session.staff, lgcode, procedure or None, state or None, max(page, 1))
    services(request).privacy.record_read(session.staff, lgcode, _purpose(session),
                                          [i["resident_id"] for i in result["items"]], ["application"],
                                          "page:GET /console/procedures")
    return _staff_render(request, session, "procedures_queue.html", result=result, catalog=svc.catalog,
                         states=STATES, procedure=procedure, state=state)


@router.get("/console/procedures/{application_id}", response_class=HTMLResponse)
def application_page(request: Request, session: PageAuth, application_id: str, done: str = "") -> Response:
    lgcode = _staff_lgcode(session)
    view = procedures(request).get(session.staff, lgcode, application_id)
    services(request).privacy.record_read(session.staff, lgcode, _purpose(session), [view["resident_id"]],
                                          PAGE_FIELDS, "page:GET /console/procedures/{application_id}")
    proc = procedures(request).procedure(view["procedure_id"])
    return _staff_render(request, session, "procedures_application.html", app=view, proc=proc, done=done)


@router.post("/console/procedures/{application_id}/{action}")
def application_action(request: Request, session: PageAuth, application_id: str, action: str,
                       form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    lgcode = _staff_lgcode(session)
    svc = procedures(request)
    back = f"/console/procedures/{application_id}"
    reason = str(form.get("reason", ""))
    try:
        if action == "claim":
            svc.claim(session.staff, lgcode, application_id)
        elif action == "approve":
            data = {k: str(form[k]) for k in ("assessment_id", "kind") if form.get(k)}
            view = svc.approve(session.staff, lgcode, application_id, data)
            after_approval(request, session.staff, lgcode, view)
        elif action == "reject":
            svc.reject(session.staff, lgcode, application_id, reason)
        elif action == "request-correction":
            svc.request_correction(session.staff, lgcode, application_id, reason)
        else:
            raise ValidationFailed([FieldError("action", "その操作はありません。", "Unknown action.")])
    except KibanError as exc:
        return _staff_render(request, session, "error.html", status=exc.status, error=exc, back=back)
    return RedirectResponse(f"{back}?done={action}", status_code=303)


def _staff_render(request: Request, session: Any, name: str, status: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(request, name, {
        "session": session, "staff": session.staff, "csrf": session.csrf_token, "role_labels": ROLE_LABELS,
        **context}, status_code=status)
