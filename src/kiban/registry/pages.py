"""The counter workflow in the staff console: find a resident, register a move-in,
issue a certificate."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kiban.core.errors import FieldError, KibanError
from kiban.platform.auth import Permission
from kiban.registry.model import CHANGE_LABELS, RELATIONSHIPS
from kiban.web.deps import PostedForm, check_csrf, services
from kiban.web.pages import PageAuth, render

router = APIRouter(prefix="/console", include_in_schema=False)
# What the console's resident screens show, for the access records (issue 9).
PAGE_FIELDS = ["name", "kana", "birth_date", "sex", "address", "relationship", "juminhyo_code",
               "history"]


def _lgcode(session: Any) -> str:
    staff = session.staff
    staff.require(Permission.REGISTRY_READ)
    assert staff.lgcode is not None
    return str(staff.lgcode)


@router.get("/residents", response_class=HTMLResponse)
def search_page(request: Request, session: PageAuth, name: str = "", birth_date: str = "",
                town_code: str = "", juminhyo_code: str = "", include_removed: str = "",
                page: int = 1) -> Response:
    lgcode = _lgcode(session)
    svc = services(request)
    result, error = None, None
    query = {"name": name, "birth_date": birth_date, "town_code": town_code,
             "juminhyo_code": juminhyo_code, "include_removed": include_removed}
    if any(v for k, v in query.items() if k != "include_removed"):
        try:
            born = date.fromisoformat(birth_date) if birth_date else None
        except ValueError:
            born, error = None, KibanError(ja="生年月日は YYYY-MM-DD で入力してください。",
                                           en="birth_date must be YYYY-MM-DD.")
        if error is None:
            try:
                result = svc.registry.search(
                    session.staff, lgcode, name=name or None, birth_date=born,
                    town_code=town_code or None, juminhyo_code=juminhyo_code or None,
                    include_removed=bool(include_removed), page=max(page, 1))
                svc.privacy.record_read(session.staff, lgcode, "resident_registration",
                                        [i["id"] for i in result["items"]], PAGE_FIELDS,
                                        "page:GET /console/residents")
            except KibanError as exc:
                error = exc
    return render(request, "residents.html", session, query=query, result=result, error=error,
                  towns=svc.municipalities.towns(lgcode))


@router.get("/residents/{resident_id}", response_class=HTMLResponse)
def resident_page(request: Request, session: PageAuth, resident_id: str) -> Response:
    lgcode = _lgcode(session)
    svc = services(request)
    resident = svc.registry.get(session.staff, lgcode, resident_id)
    household = svc.registry.household(session.staff, lgcode, resident["household_id"]) \
        if resident["status"] == "active" else None
    history = svc.registry.history(session.staff, lgcode, resident_id)
    svc.privacy.record_read(session.staff, lgcode, "resident_registration",
                            [resident_id, *(m["id"] for m in (household or {}).get("members", []))],
                            PAGE_FIELDS, "page:GET /console/residents/{resident_id}")
    return render(request, "resident.html", session, r=resident, household=household,
                  history=history, labels=CHANGE_LABELS,
                  can_my_number=session.staff.can(Permission.MY_NUMBER_READ))


@router.post("/residents/{resident_id}/certificate")
def certificate(request: Request, session: PageAuth, resident_id: str, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    lgcode = _lgcode(session)
    svc = services(request)
    household_form = form.get("form") == "household"
    ids = [str(i) for i in form.getlist("household_member")] if household_form else []
    ids = ids or [resident_id]
    serial, pdf = svc.registry.issue_certificate(session.staff, lgcode, {
        "resident_ids": ids, "kind": str(form.get("kind", "juminhyo")),
        "form": str(form.get("form", "household")),
        **{k: form.get(k) == "1" for k in
           ("head_and_relationship", "honseki", "juminhyo_code", "my_number")}})
    return Response(pdf, media_type="application/pdf", headers={
        "X-Certificate-Serial": serial,
        "Content-Disposition": f'attachment; filename="juminhyo-{serial}.pdf"'})


MOVE_IN_FIELDS = ("origin", "occurred_on", "notified_on", "town_code", "banchi", "katagaki",
                  "previous_address", "household_id", "family_name", "given_name",
                  "family_kana", "given_kana", "birth_date", "sex", "relationship",
                  "juminhyo_code")


@router.get("/move-in", response_class=HTMLResponse)
def move_in_form(request: Request, session: PageAuth) -> Response:
    lgcode = _lgcode(session)
    svc = services(request)
    today = svc.registry.today().isoformat()
    return render(request, "move_in.html", session, towns=svc.municipalities.towns(lgcode),
                  relationships=RELATIONSHIPS, errors={}, error=None,
                  values={"occurred_on": today, "notified_on": today, "origin": "domestic",
                          "relationship": "世帯主"})


@router.post("/move-in")
def move_in(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    lgcode = _lgcode(session)
    svc = services(request)
    values = {k: str(form.get(k, "")).strip() for k in MOVE_IN_FIELDS}
    person = {k: values[k] for k in ("family_name", "given_name", "family_kana", "given_kana",
                                     "birth_date", "sex", "relationship")}
    if values["juminhyo_code"]:
        person["juminhyo_code"] = values["juminhyo_code"]
    data: dict[str, Any] = {
        "origin": values["origin"], "occurred_on": values["occurred_on"],
        "notified_on": values["notified_on"], "previous_address": values["previous_address"],
        "members": [person],
    }
    if values["household_id"]:
        data["household_id"] = values["household_id"]
    else:
        data["address"] = {"town_code": values["town_code"], "banchi": values["banchi"],
                           "katagaki": values["katagaki"]}
    try:
        result = svc.registry.move_in(session.staff, lgcode, data)
    except KibanError as exc:
        fields = exc.errors or [FieldError(exc.field or "", exc.ja, exc.en)]
        errors = {e.field.replace("members[0].", "").replace("address.", ""): e.ja
                  for e in fields}
        return render(request, "move_in.html", session, status=exc.status,
                      towns=svc.municipalities.towns(lgcode), relationships=RELATIONSHIPS,
                      errors=errors, error=exc, values=values)
    target = f"/console/residents/{result['resident_ids'][0]}"
    if result["late_notice"]:
        target += "?late=1"
    return RedirectResponse(target, status_code=303)

