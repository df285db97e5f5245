"""The standard tax API's assessment routes (kiban/standard/kit/tax_checks.py): 賦課, 更正,
notices and certificates, under /api/v1/municipalities/{lgcode}/tax/…, for the tax_officer
role. Bodies are taken as JSON and checked by the service, so every refusal names its field
as the standard writes it (income.salary_revenue, collection.method, …)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, Response

from kiban.platform.auth import Session
from kiban.web.deps import api_session, idempotent, services

router = APIRouter(prefix="/api/v1/municipalities/{lgcode}/tax", tags=["tax"])
Auth = Annotated[Session, Depends(api_session)]
AnyBody = Annotated[Any, Body()]


@router.post("/assessments", status_code=201, summary="賦課: assess one taxpayer")
def create_assessment(request: Request, lgcode: str, session: Auth, body: AnyBody) -> Response:
    svc = services(request)
    return idempotent(request, lgcode, body, lambda: (
        201, svc.assessments.create(session.staff, lgcode, body)))


@router.get("/assessments/{assessment_id}", summary="The current version of an assessment")
def get_assessment(request: Request, lgcode: str, assessment_id: str, session: Auth
                   ) -> dict[str, Any]:
    return services(request).assessments.get(session.staff, lgcode, assessment_id)


@router.post("/assessments/{assessment_id}/corrections", status_code=201,
             summary="更正: a new version from corrected input")
def correct_assessment(request: Request, lgcode: str, assessment_id: str, session: Auth,
                       body: AnyBody) -> Response:
    svc = services(request)
    return idempotent(request, lgcode, body, lambda: (
        201, svc.assessments.correct(session.staff, lgcode, assessment_id, body)))


@router.get("/assessments/{assessment_id}/notices/special-collection",
            summary="特別徴収税額決定通知書 (F-TAX-01)")
def special_collection_notice(request: Request, lgcode: str, assessment_id: str,
                              session: Auth) -> dict[str, Any]:
    return services(request).assessments.notice(session.staff, lgcode, assessment_id,
                                                "special-collection")


@router.get("/assessments/{assessment_id}/notices/tax-notice", summary="納税通知書 (F-TAX-02)")
def tax_notice(request: Request, lgcode: str, assessment_id: str, session: Auth
               ) -> dict[str, Any]:
    return services(request).assessments.notice(session.staff, lgcode, assessment_id,
                                                "tax-notice")


@router.post("/certificates", status_code=201,
             summary="所得・課税証明書 (F-TAX-03) or 非課税証明書 (F-TAX-04), as data")
def certificate(request: Request, lgcode: str, session: Auth, body: AnyBody) -> JSONResponse:
    made = services(request).assessments.certificate(session.staff, lgcode, body)
    return JSONResponse(made, status_code=201)


@router.post("/certificates/signed", status_code=201, response_class=Response,
             summary="所得・課税証明書 or 非課税証明書 as a signed PDF that /verify vouches for",
             responses={201: {"content": {"application/pdf": {}}}})
def signed_certificate(request: Request, lgcode: str, session: Auth, body: AnyBody) -> Response:
    payload = body if isinstance(body, dict) else {}
    serial, pdf = services(request).assessments.issue_certificate_pdf(
        session.staff, lgcode, str(payload.get("assessment_id") or ""), str(payload.get("kind") or ""))
    return Response(pdf, status_code=201, media_type="application/pdf", headers={
        "X-Certificate-Serial": serial, "Cache-Control": "no-store",
        "Content-Disposition": f'inline; filename="{serial}.pdf"'})


@router.get("/runs/{run_id}", summary="A batch run's progress and summary")
def run_summary(request: Request, lgcode: str, run_id: str, session: Auth) -> dict[str, Any]:
    return services(request).assessments.run_summary(session.staff, lgcode, run_id)
