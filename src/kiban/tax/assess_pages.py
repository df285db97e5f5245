"""Staff pages of the annual assessment (/console/tax), for the tax_officer role: import of
income data, the year's runs with their progress and a histogram of tax amounts, a taxpayer's
assessment with every step explained in Japanese and its 更正 history, and the PDFs."""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kiban.core.errors import KibanError
from kiban.documents import tax_notices
from kiban.standard import spec as standard_spec
from kiban.tax.assessment import require_tax
from kiban.web.deps import PostedForm, check_csrf, services
from kiban.web.pages import PageAuth, render

router = APIRouter(prefix="/console/tax", include_in_schema=False)
DEFAULT_YEAR = 2026


def _lgcode(session: Any) -> str:
    staff = session.staff
    lgcode = str(staff.lgcode or "")
    require_tax(staff, lgcode)
    return lgcode


def _year(value: str | int | None) -> int:
    try:
        return int(value or DEFAULT_YEAR)
    except ValueError:
        return DEFAULT_YEAR


@router.get("", response_class=HTMLResponse)
def home(request: Request, session: PageAuth, year: str = "", name: str = "") -> Response:
    lgcode = _lgcode(session)
    fy = _year(year)
    assessments = services(request).assessments
    return render(request, "tax_home.html", session, fiscal_year=fy, query=name,
                  runs=assessments.runs(session.staff, lgcode),
                  found=assessments.search(session.staff, lgcode, fy, name),
                  bad_lines=assessments.import_errors(session.staff, lgcode, fy), report=None,
                  error=None)


@router.post("/imports")
async def import_file(request: Request, session: PageAuth) -> Response:
    form = await request.form()
    check_csrf(request, session, str(form.get("csrf_token", "")))
    lgcode = _lgcode(session)
    fy = _year(str(form.get("fiscal_year", "")))
    upload = form.get("file")
    svc = services(request)
    report, error = None, None
    if upload is None or isinstance(upload, str):
        error = KibanError("CSVファイルを選んでください。", "Choose a CSV file.", field="file")
    else:
        raw = await upload.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            error = KibanError("文字コードはUTF-8にしてください。", "The file must be UTF-8.",
                               field="file")
        else:
            try:
                report = svc.assessments.import_csv(session.staff.id, lgcode, fy,
                                                    io.StringIO(text), upload.filename or "")
            except KibanError as exc:
                error = exc
    return render(request, "tax_home.html", session, status=422 if error else 200,
                  fiscal_year=fy, query="", runs=svc.assessments.runs(session.staff, lgcode),
                  found=[], bad_lines=svc.assessments.import_errors(session.staff, lgcode, fy),
                  report=report, error=error)


@router.post("/runs")
def start_run(request: Request, session: PageAuth, form: PostedForm) -> Response:
    """Runs the year's assessment in this request: fine for a small municipality (the demo);
    a large one runs `kiban tax assess` and workers (docs/tax-batch.md)."""
    check_csrf(request, session, str(form.get("csrf_token", "")))
    lgcode = _lgcode(session)
    fy = _year(str(form.get("fiscal_year", "")))
    summary = services(request).assessments.assess(lgcode, fy, session.staff.id)
    return RedirectResponse(f"/console/tax/runs/{summary['id']}", status_code=303)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, session: PageAuth, run_id: str) -> Response:
    lgcode = _lgcode(session)
    summary = services(request).assessments.run_summary(session.staff, lgcode, run_id)
    peak = max([1] + [b["count"] for b in summary["histogram"]])
    return render(request, "tax_run.html", session, run=summary, peak=peak)


@router.get("/assessments/{assessment_id}", response_class=HTMLResponse)
def assessment_page(request: Request, session: PageAuth, assessment_id: str) -> Response:
    lgcode = _lgcode(session)
    view = services(request).assessments.get(session.staff, lgcode, assessment_id)
    return render(request, "tax_assessment.html", session, a=view,
                  calc=view["calculation"], steps=view["calculation"].get("steps", []))


@router.post("/assessments/{assessment_id}/certificates")
def issue_certificate(request: Request, session: PageAuth, assessment_id: str,
                      form: PostedForm) -> Response:
    """Issuing is recorded (and can be withdrawn), so it is a POST with the CSRF token."""
    check_csrf(request, session, str(form.get("csrf_token", "")))
    serial, pdf = services(request).assessments.issue_certificate_pdf(
        session.staff, _lgcode(session), assessment_id, str(form.get("kind", "")))
    return Response(pdf, media_type="application/pdf", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{serial}.pdf"'})


@router.get("/assessments/{assessment_id}/{kind}.pdf")
def assessment_pdf(request: Request, session: PageAuth, assessment_id: str, kind: str
                   ) -> Response:
    lgcode = _lgcode(session)
    svc = services(request).assessments
    if kind == "tax-notice":
        form = svc.notice(session.staff, lgcode, assessment_id, "tax-notice")
    elif kind == "special-collection":
        form = svc.notice(session.staff, lgcode, assessment_id, "special-collection")
    else:
        return Response(status_code=404)
    muni = services(request).municipalities.get(lgcode)
    labels = {k: str(v.get("name", k)) for k, v in standard_spec.current().items.items()}
    pdf = tax_notices.render(form, municipality=f"{muni['prefecture']}{muni['name']}",
                             labels=labels)
    return Response(pdf, media_type="application/pdf", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{form["form"]}-{assessment_id[:8]}.pdf"'})

