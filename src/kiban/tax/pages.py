"""The public simulation page for residents (/tax/simulate): the calculator contract through a
form, the result with every step explained in Japanese and English. Nothing is stored. The form
carries a CSRF token (double-submit: a random cookie echoed in a hidden field), since a
resident needs no sign-in."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kiban.core.errors import KibanError
from kiban.core.ratelimit import SlidingWindow
from kiban.platform.auth import constant_time_equal
from kiban.tax.calculator import calculator_output
from kiban.tax.model import SUPPORTED_FISCAL_YEARS, fiscal_year_label
from kiban.web.deps import optional_session
from kiban.web.pages import field_errors, render

router = APIRouter(include_in_schema=False)
COOKIE = "kiban_tax_sim"
DEPENDANT_ROWS = 4
AMOUNTS = ("salary", "public_pension", "other", "dividends", "social_insurance",
           "life_new_general", "life_new_care_medical", "life_new_pension", "life_old_general",
           "life_old_pension", "earthquake", "medical_expenses", "medical_reimbursed",
           "hometown", "spouse_income")
YEARS = [(y, fiscal_year_label(y)) for y in SUPPORTED_FISCAL_YEARS]


def limiter(request: Request) -> SlidingWindow:
    """The same per-address limit as POST /api/v1/tax/calc (one window per application)."""
    found: SlidingWindow | None = getattr(request.app.state, "tax_calc_limiter", None)
    if found is None:
        found = SlidingWindow()
        request.app.state.tax_calc_limiter = found
    return found


def _amount(value: str) -> Any:
    text = value.replace(",", "").replace("円", "").strip()
    if text == "":
        return 0
    return int(text) if text.isdigit() else text  # the validator names a bad field


def contract_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as the calculator contract (the same input `kiban tax calc` reads)."""
    a = {k: _amount(form.get(k, "")) for k in AMOUNTS}
    year = form.get("fiscal_year", "")
    body: dict[str, Any] = {
        "fiscal_year": int(year) if year.isdigit() else year,
        "municipality": {"designated_city": form.get("designated_city") == "on",
                         "grade": int(form["grade"]) if form.get("grade", "").isdigit()
                         else form.get("grade")},
        "taxpayer": {"birth_date": form.get("birth_date", ""), "sex": form.get("sex", "M"),
                     "disability": form.get("disability", "none"),
                     "widow": form.get("widow") == "on",
                     "single_parent": form.get("single_parent") == "on",
                     "working_student": form.get("working_student") == "on",
                     "public_assistance": form.get("public_assistance") == "on"},
        "income": {"salary": a["salary"], "public_pension": a["public_pension"],
                   "other": a["other"], "dividends": a["dividends"]},
        "deductions": {
            "social_insurance": a["social_insurance"],
            "life_insurance_premiums": {
                "new_general": a["life_new_general"], "new_care_medical": a["life_new_care_medical"],
                "new_pension": a["life_new_pension"], "old_general": a["life_old_general"],
                "old_pension": a["life_old_pension"]},
            "earthquake_insurance_premiums": a["earthquake"],
            "medical_expenses": a["medical_expenses"],
            "medical_reimbursed": a["medical_reimbursed"]},
        "spouse": None,
        "dependents": [],
        "donations": {"hometown": a["hometown"], "other": 0},
    }
    if form.get("has_spouse") == "on":
        body["spouse"] = {"birth_date": form.get("spouse_birth_date", ""),
                          "total_income": a["spouse_income"], "disability": "none",
                          "cohabiting": True}
    for i in range(DEPENDANT_ROWS):
        birth = form.get(f"dependent_{i}_birth_date", "").strip()
        if birth:
            body["dependents"].append({
                "birth_date": birth,
                "total_income": _amount(form.get(f"dependent_{i}_income", "")),
                "disability": form.get(f"dependent_{i}_disability", "none"),
                "cohabiting": True})
    return body


def _page(request: Request, form: dict[str, str], result: dict[str, Any] | None,
          errors: dict[str, str], status: int = 200) -> Response:
    token = request.cookies.get(COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "tax_simulate.html", optional_session(request), status=status,
                      form=form, result=result, errors=errors, years=YEARS, sim_token=token,
                      dependant_rows=range(DEPENDANT_ROWS))
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/tax/simulate")
    return response


@router.get("/tax/simulate", response_class=HTMLResponse)
def simulate_form(request: Request) -> Response:
    defaults = {"fiscal_year": str(SUPPORTED_FISCAL_YEARS[-1]), "grade": "1", "sex": "M",
                "disability": "none"}
    return _page(request, defaults, None, {})


@router.post("/tax/simulate", response_class=HTMLResponse)
async def simulate(request: Request) -> Response:
    raw = await request.form(max_files=0, max_fields=80)
    form = {k: str(v) for k, v in raw.items()}
    cookie = request.cookies.get(COOKIE, "")
    if not cookie or not constant_time_equal(cookie, form.get("csrf_token", "")):
        return _page(request, form, None, {"csrf_token": "フォームの有効期限が切れました。もう一度送信してください。"},
                     status=403)
    try:
        limiter(request).hit(request.client.host if request.client else "unknown")
        result = calculator_output(contract_from_form(form))
    except KibanError as exc:
        return _page(request, form, None, field_errors(exc), status=exc.status)
    return _page(request, form, result, {})
