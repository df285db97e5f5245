"""Pages of the specialist pool (/talent): a specialist's profile, matches and engagements;
a municipality's needs, candidates and offers; a prefecture's coverage."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from kiban.core.errors import FieldError, Forbidden, KibanError, ValidationFailed
from kiban.core.prefectures import PREFECTURES, prefecture_of
from kiban.platform.auth import Permission, Role, constant_time_equal
from kiban.web.deps import PostedForm, check_csrf, optional_session, services
from kiban.web.pages import PageAuth, act, field_errors, render

router = APIRouter(prefix="/talent", include_in_schema=False)


def _int(form: FormData, name: str) -> object:
    raw = str(form.get(name, "")).strip()
    try:
        return int(raw.replace(",", ""))
    except ValueError:
        return raw  # the service names the field as not an integer


@router.get("", response_class=HTMLResponse)
def hub(request: Request, session: PageAuth) -> Response:
    staff = session.staff
    talent = services(request).talent
    if staff.can(Permission.TALENT_PROFILE):
        me = talent.my_profile(staff)
        return render(request, "talent_hub.html", session, me=me,
                      matches=talent.matching_needs(staff) if me else [],
                      engagements=talent.engagements(staff), mine=[], open_needs=[])
    return render(request, "talent_hub.html", session, me=None, matches=[],
                  engagements=talent.engagements(staff), mine=talent.needs(staff, "mine"),
                  open_needs=talent.needs(staff, "open"),
                  prefecture=prefecture_of(staff.lgcode or ""))


# -- specialists -----------------------------------------------------------------------

FORM_COOKIE = "kiban_form"  # double-submit token of the sign-up form (no session yet)


def _register_page(request: Request, status: int = 200, errors: dict[str, str] | None = None,
                   values: dict[str, str] | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "talent_register.html", optional_session(request), status=status,
                      errors=errors or {}, values=values or {}, form_token=token)
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="strict",
                        secure=services(request).settings.cookie_secure, path="/talent/register")
    return response


@router.get("/register", response_class=HTMLResponse)
def register_form(request: Request) -> Response:
    return _register_page(request)


@router.post("/register")
def register(request: Request, form: PostedForm) -> Response:
    """Specialists sign themselves up; the account can do nothing but keep a profile and
    answer offers. The form carries a double-submit token (there is no session to bind a CSRF
    token to), and sign-ups are limited per client address."""
    svc = services(request)
    sent, expected = str(form.get("form_token", "")), request.cookies.get(FORM_COOKIE, "")
    if not expected or not constant_time_equal(sent, expected):
        raise Forbidden("フォームの有効期限が切れました。もう一度お試しください。",
                        "The form token is missing or wrong.")
    values = {k: str(form.get(k, "")).strip()[:200] for k in ("username", "display_name")}
    try:
        svc.accounts.throttle("register", request.client.host if request.client else "-",
                              svc.clock.now(), svc.settings.login_attempts,
                              svc.settings.login_window_seconds)
        svc.accounts.create(values["username"], str(form.get("password", "")),
                            values["display_name"], [Role.SPECIALIST.value], None,
                            svc.clock.now())
    except KibanError as exc:
        return _register_page(request, exc.status, field_errors(exc), values)
    return RedirectResponse("/login?next=/talent/profile", status_code=303)


def _profile_values(form: FormData) -> dict[str, Any]:
    return {
        "display_name": str(form.get("display_name", "")),
        "skills": [str(s) for s in form.getlist("skills")],
        "regions": [str(r) for r in form.getlist("regions")],
        "experience": str(form.get("experience", "")),
        "onsite": form.get("onsite") == "1", "remote": form.get("remote") == "1",
        "days_per_month": _int(form, "days_per_month"), "rate_per_day": _int(form, "rate_per_day"),
        "hidden": [str(h) for h in form.getlist("hidden")], "listed": form.get("listed") == "1",
    }


@router.get("/profile", response_class=HTMLResponse)
def profile_form(request: Request, session: PageAuth) -> Response:
    talent = services(request).talent
    me = talent.my_profile(session.staff) or {
        "display_name": session.staff.display_name, "skills": [], "regions": [], "onsite": False,
        "remote": True, "days_per_month": 4, "rate_per_day": 50000, "hidden": [],
        "listed": True, "experience": ""}
    return render(request, "talent_profile.html", session, values=me, errors={}, error=None,
                  skills=talent.skills(), prefectures=PREFECTURES)


@router.post("/profile")
def save_profile(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    talent = services(request).talent
    values = _profile_values(form)
    try:
        talent.save_profile(session.staff, values)
    except KibanError as exc:
        return render(request, "talent_profile.html", session, status=exc.status, values=values,
                      errors=field_errors(exc), error=exc, skills=talent.skills(),
                      prefectures=PREFECTURES)
    return RedirectResponse("/talent?saved=1", status_code=303)


# -- needs -----------------------------------------------------------------------------

def _shares(text: str) -> list[dict[str, object]] | None:
    """One line per municipality, "地方公共団体コード 日数"; empty for a need of one's own."""
    lines = [line.replace(",", " ").replace(":", " ").split() for line in text.splitlines()
             if line.strip()]
    if not lines:
        return None
    shares: list[dict[str, object]] = []
    for i, parts in enumerate(lines):
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValidationFailed([FieldError("shares", f"{i + 1}行目: 「団体コード 日数」の形で入力してください。",
                                               f"line {i + 1}: expected 'lgcode days'.")])
        shares.append({"lgcode": parts[0], "days": int(parts[1])})
    return shares


@router.get("/needs/new", response_class=HTMLResponse)
def need_form(request: Request, session: PageAuth) -> Response:
    session.staff.require(Permission.TALENT_MANAGE)
    talent = services(request).talent
    month = talent.this_month()
    return render(request, "talent_need_new.html", session, skills=talent.skills(), errors={},
                  error=None, values={"start": month, "end": month, "onsite_percent": 50,
                                      "days_per_month": 4, "required_skills": [],
                                      "preferred_skills": [], "shares": ""})


@router.post("/needs/new")
def post_need(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    talent = services(request).talent
    values: dict[str, Any] = {
        "title": str(form.get("title", "")), "tasks": str(form.get("tasks", "")),
        "required_skills": [str(s) for s in form.getlist("required_skills")],
        "preferred_skills": [str(s) for s in form.getlist("preferred_skills")],
        "days_per_month": _int(form, "days_per_month"), "start": str(form.get("start", "")),
        "end": str(form.get("end", "")), "onsite_percent": _int(form, "onsite_percent"),
        "budget_per_month": _int(form, "budget_per_month"),
    }
    shares_text = str(form.get("shares", ""))
    try:
        data = dict(values)
        if (shares := _shares(shares_text)) is not None:
            data["shares"] = shares
        need = talent.post_need(session.staff, data)
    except KibanError as exc:
        return render(request, "talent_need_new.html", session, status=exc.status,
                      skills=talent.skills(), errors=field_errors(exc), error=exc,
                      values={**values, "shares": shares_text})
    return RedirectResponse(f"/talent/needs/{need['id']}", status_code=303)


@router.get("/needs/{need_id}", response_class=HTMLResponse)
def need_page(request: Request, session: PageAuth, need_id: str) -> Response:
    talent = services(request).talent
    need = talent.need(session.staff, need_id)
    staff = session.staff
    lead = staff.can(Permission.TALENT_MANAGE) and staff.lgcode == need["lead_lgcode"]
    return render(request, "talent_need.html", session, need=need, lead=lead,
                  candidates=talent.candidates(staff, need_id, 20) if lead else [],
                  can_confirm=staff.can(Permission.TALENT_MANAGE) and any(
                      s["lgcode"] == staff.lgcode and not s["confirmed"] for s in need["shares"]),
                  error=None)


@router.post("/needs/{need_id}/confirm")
def confirm(request: Request, session: PageAuth, need_id: str, form: PostedForm) -> Response:
    talent = services(request).talent
    return act(request, session, form, f"/talent/needs/{need_id}",
                lambda: talent.confirm_share(session.staff, need_id))


@router.post("/needs/{need_id}/close")
def close(request: Request, session: PageAuth, need_id: str, form: PostedForm) -> Response:
    talent = services(request).talent
    return act(request, session, form, f"/talent/needs/{need_id}",
                lambda: talent.close_need(session.staff, need_id))


@router.post("/needs/{need_id}/offer")
def offer(request: Request, session: PageAuth, need_id: str, form: PostedForm) -> Response:
    talent = services(request).talent
    return act(request, session, form, f"/talent/needs/{need_id}", lambda: talent.offer(
        session.staff, need_id, {"specialist_id": str(form.get("specialist_id", ""))}))


# -- engagements -----------------------------------------------------------------------

@router.get("/engagements/{engagement_id}", response_class=HTMLResponse)
def engagement_page(request: Request, session: PageAuth, engagement_id: str) -> Response:
    talent = services(request).talent
    e = talent.engagement(session.staff, engagement_id)
    staff = session.staff
    return render(request, "talent_engagement.html", session, e=e,
                  specialist=staff.can(Permission.TALENT_PROFILE),
                  lead=staff.lgcode == e["lead_lgcode"],
                  evaluated=any(v["lgcode"] == staff.lgcode for v in e["evaluations"]),
                  this_month=talent.this_month())


@router.post("/engagements/{engagement_id}/{verb}")
def engagement_action(request: Request, session: PageAuth, engagement_id: str, verb: str,
                      form: PostedForm) -> Response:
    talent = services(request).talent
    staff = session.staff
    actions: dict[str, Callable[[], Any]] = {
        "accept": lambda: talent.respond(staff, engagement_id, accept=True),
        "decline": lambda: talent.respond(staff, engagement_id, accept=False),
        "withdraw": lambda: talent.withdraw(staff, engagement_id),
        "end": lambda: talent.end(staff, engagement_id, str(form.get("last_month", ""))),
        "report": lambda: talent.report(staff, engagement_id, {
            "month": str(form.get("month", "")), "summary": str(form.get("summary", "")),
            "days": {k[5:]: _int(form, k) for k in form if k.startswith("days_")}}),
        "evaluate": lambda: talent.evaluate(staff, engagement_id, {
            "rating": _int(form, "rating"), "comment": str(form.get("comment", ""))}),
    }
    if verb not in actions:
        return render(request, "error.html", session, status=404, error=KibanError(
            ja="ページが見つかりません。", en="Not found.", status=404))
    return act(request, session, form, f"/talent/engagements/{engagement_id}", actions[verb])


# -- the prefecture's view -------------------------------------------------------------

@router.get("/coverage", response_class=HTMLResponse)
def coverage_page(request: Request, session: PageAuth, prefecture: str = "",
                  month: str = "") -> Response:
    staff = session.staff
    prefecture = prefecture or prefecture_of(staff.lgcode or "") or PREFECTURES[0]
    view = services(request).talent.coverage(staff, prefecture, month or None)
    peak = max([1] + [max(int(s["demand"]), int(s["supply"])) for s in view["skills"]])
    return render(request, "talent_coverage.html", session, c=view, peak=peak,
                  prefectures=PREFECTURES if staff.can(Permission.PLATFORM_MANAGE) else [])


@router.get("/specialists/{specialist_id}", response_class=HTMLResponse)
def specialist_page(request: Request, session: PageAuth, specialist_id: str) -> Response:
    return render(request, "talent_specialist.html", session,
                  p=services(request).talent.profile(session.staff, specialist_id))
