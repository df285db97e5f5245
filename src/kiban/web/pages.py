"""Staff console pages shared by every capability: sign-in, the municipality dashboard,
and the administration of municipalities and staff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kiban.core.errors import FieldError, KibanError
from kiban.platform.auth import ROLE_LABELS, UNAFFILIATED_ROLES, Permission, Role, Session
from kiban.web.deps import (
    SESSION_COOKIE,
    PostedForm,
    Unauthenticated,
    check_csrf,
    optional_session,
    services,
)
from kiban.web.templating import templates

router = APIRouter(include_in_schema=False)
MUNICIPAL_ROLES = [r for r in Role if r not in UNAFFILIATED_ROLES]


def page_session(request: Request) -> Session:
    session = optional_session(request)
    if session is None or session.kind != "browser":
        raise Unauthenticated()
    return session


PageAuth = Annotated[Session, Depends(page_session)]


def render(request: Request, name: str, session: Session | None, status: int = 200,
           **context: Any) -> Response:
    return templates.TemplateResponse(request, name, {
        "session": session, "staff": session.staff if session else None,
        "csrf": session.csrf_token if session else "", "role_labels": ROLE_LABELS, **context,
    }, status_code=status)


def field_errors(exc: KibanError) -> dict[str, str]:
    """A refusal as {field: Japanese message}, for showing beside each form field."""
    return {e.field: e.ja for e in (exc.errors or [FieldError(exc.field or "", exc.ja, exc.en)])}


def act(request: Request, session: Session, form: Any, back: str,
        action: Callable[[], Any]) -> Response:
    """A POST button on a page: check the form's CSRF token, do it, then go back to the page;
    a refusal is shown on the error page with a link back."""
    check_csrf(request, session, str(form.get("csrf_token", "")))
    try:
        action()
    except KibanError as exc:
        return render(request, "error.html", session, status=exc.status, error=exc, back=back)
    return RedirectResponse(back, status_code=303)


def _safe_next(target: str | None) -> str:
    """Only local paths: an open redirect would let a phishing link borrow our login."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/console"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/console") -> Response:
    return render(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form()],
          password: Annotated[str, Form()], next: Annotated[str, Form()] = "/console"
          ) -> Response:
    svc = services(request)
    client = request.client.host if request.client else "-"
    try:
        token, _ = svc.accounts.login(username, password, client, svc.clock.now(),
                                      svc.settings.login_attempts,
                                      svc.settings.login_window_seconds)
    except KibanError as exc:
        return render(request, "login.html", None, status=exc.status, next=_safe_next(next),
                      error=exc, username=username)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=svc.settings.cookie_secure, path="/")
    return response


@router.post("/logout")
def logout(request: Request, session: PageAuth,
           csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, session, csrf_token)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        services(request).accounts.logout(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/console", response_class=HTMLResponse)
def console(request: Request, session: PageAuth) -> Response:
    staff = session.staff
    if staff.can(Permission.PLATFORM_MANAGE):
        return RedirectResponse("/admin/municipalities", status_code=303)
    if staff.can(Permission.TALENT_PROFILE):
        return RedirectResponse("/talent", status_code=303)
    if staff.can(Permission.STANDARD_MAINTAIN):
        return RedirectResponse("/standard/proposals?status=open", status_code=303)
    svc = services(request)
    assert staff.lgcode is not None
    muni = svc.municipalities.get(staff.lgcode)
    board = svc.registry.dashboard(staff, staff.lgcode)
    peak = max([1] + [max(b["male"], b["female"]) for b in board["pyramid"]])
    return render(request, "console.html", session, muni=muni, board=board, peak=peak,
                  notice=svc.standard.notice(staff.lgcode))


@router.get("/admin/municipalities", response_class=HTMLResponse)
def municipalities_page(request: Request, session: PageAuth) -> Response:
    session.staff.require(Permission.PLATFORM_MANAGE)
    return render(request, "municipalities.html", session,
                  rows=services(request).municipalities.list(), error=None, values={})


@router.post("/admin/municipalities")
def create_municipality(request: Request, session: PageAuth,
                        lgcode: Annotated[str, Form()], name: Annotated[str, Form()],
                        prefecture: Annotated[str, Form()],
                        csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, session, csrf_token)
    session.staff.require(Permission.PLATFORM_MANAGE)
    svc = services(request)
    try:
        svc.municipalities.create(lgcode.strip(), name, prefecture, svc.clock.now(),
                                  actor=session.staff.id)
    except KibanError as exc:
        return render(request, "municipalities.html", session, status=exc.status,
                      rows=svc.municipalities.list(), error=exc,
                      values={"lgcode": lgcode, "name": name, "prefecture": prefecture})
    return RedirectResponse("/admin/municipalities", status_code=303)


@router.get("/admin/staff", response_class=HTMLResponse)
def staff_page(request: Request, session: PageAuth) -> Response:
    staff = session.staff
    staff.require(Permission.MUNICIPALITY_MANAGE, staff.lgcode)
    svc = services(request)
    return render(request, "staff.html", session, rows=svc.accounts.list(staff.lgcode),
                  roles=MUNICIPAL_ROLES, error=None,
                  values={})


@router.post("/admin/staff")
def create_staff(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    staff = session.staff
    staff.require(Permission.MUNICIPALITY_MANAGE, staff.lgcode)
    svc = services(request)
    roles = [str(r) for r in form.getlist("roles") if r not in UNAFFILIATED_ROLES]
    try:
        svc.accounts.create(str(form.get("username", "")), str(form.get("password", "")),
                            str(form.get("display_name", "")), roles, staff.lgcode,
                            svc.clock.now(), str(form.get("department", "")))
    except KibanError as exc:
        return render(request, "staff.html", session, status=exc.status,
                      rows=svc.accounts.list(staff.lgcode),
                      roles=MUNICIPAL_ROLES, error=exc,
                      values={k: str(v) for k, v in form.items() if k != "password"})
    return RedirectResponse("/admin/staff", status_code=303)


@router.get("/admin/settings", response_class=HTMLResponse)
def settings_page(request: Request, session: PageAuth) -> Response:
    staff = session.staff
    staff.require(Permission.MUNICIPALITY_MANAGE, staff.lgcode)
    assert staff.lgcode is not None
    svc = services(request)
    return render(request, "settings.html", session, muni=svc.municipalities.get(staff.lgcode),
                  towns=svc.municipalities.towns(staff.lgcode), error=None, saved=False)


@router.post("/admin/settings")
def save_settings(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    staff = session.staff
    staff.require(Permission.MUNICIPALITY_MANAGE, staff.lgcode)
    assert staff.lgcode is not None
    svc = services(request)
    values: dict[str, Any] = {
        "certificate_issuer_title": str(form.get("certificate_issuer_title", "")).strip(),
        "certificate_issuer_name": str(form.get("certificate_issuer_name", "")).strip(),
    }
    error: KibanError | None = None
    raw_fee = str(form.get("certificate_fee", "")).strip()
    values["certificate_fee"] = int(raw_fee) if raw_fee.isdigit() else raw_fee
    try:
        svc.municipalities.update_settings(staff.lgcode, values, svc.clock.now(), staff.id)
    except KibanError as exc:
        error = exc
    return render(request, "settings.html", session, status=error.status if error else 200,
                  muni=svc.municipalities.get(staff.lgcode),
                  towns=svc.municipalities.towns(staff.lgcode), error=error,
                  saved=error is None)
