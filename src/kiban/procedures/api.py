"""JSON routes of online procedures: the catalog (public), the resident's applications
(portal session, under /portal/api/ where its cookie is sent) and the staff work queue."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from kiban.core.errors import FieldError, KibanError, ValidationFailed
from kiban.privacy.access import PersonalRead, personal_read
from kiban.procedures.access import ResidentAuth, after_approval, procedures
from kiban.procedures.service import SubmissionStopped
from kiban.web.deps import problem

router = APIRouter(tags=["procedures"])
resident_router = APIRouter(prefix="/portal/api/procedures", tags=["procedures"])
FIELDS = ["name", "birth_date", "sex", "address", "application", "evidence"]
QueueRead = Annotated[PersonalRead, Depends(personal_read("resident_registration", FIELDS))]
BASE = "/api/v1/municipalities/{lgcode}/procedures"


# --- catalog ------------------------------------------------------------------------------

@router.get("/api/v1/procedures/catalog")
def catalog(request: Request) -> dict[str, Any]:
    return {"items": [p.as_json() for p in procedures(request).catalog.values()]}


@router.get("/api/v1/procedures/catalog/{procedure_id}")
def catalog_entry(request: Request, procedure_id: str) -> dict[str, Any]:
    return procedures(request).procedure(procedure_id).as_json()


# --- the resident -------------------------------------------------------------------------

class DraftBody(BaseModel):
    procedure: str = Field(max_length=64)
    form: dict[str, Any]
    draft_id: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)


class SubmitBody(BaseModel):
    payload: str = Field(max_length=90_000, description="base64 of the exact signed bytes")
    signature: str = Field(max_length=32_000, description="base64 of the detached CMS signature (DER)")
    draft_id: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)


def refused(exc: KibanError, path: str, draft_id: str | None) -> Response:
    response = problem(exc, path)
    if draft_id:
        import json
        body = json.loads(bytes(response.body))
        body["draft_id"] = draft_id
        return JSONResponse(body, status_code=exc.status, media_type="application/problem+json")
    return response


@resident_router.get("/applications")
def my_applications(request: Request, who: ResidentAuth) -> dict[str, Any]:
    return {"items": procedures(request).my_applications(who)}


@resident_router.post("/drafts", status_code=201)
def save_draft(request: Request, who: ResidentAuth, body: DraftBody) -> dict[str, Any]:
    return procedures(request).save_draft(who, body.procedure, body.form, body.draft_id, body.email)


@resident_router.post("/applications", status_code=201)
def submit(request: Request, who: ResidentAuth, body: SubmitBody) -> Response:
    try:
        payload = base64.b64decode(body.payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed([FieldError("payload", "申請データが base64 ではありません。",
                                           "payload must be base64.")]) from None
    try:
        status, view = procedures(request).submit(
            who, payload, body.signature, idempotency_key=request.headers.get("idempotency-key"),
            draft_id=body.draft_id, email=body.email)
    except SubmissionStopped as exc:
        return refused(exc, request.url.path, exc.draft_id)
    except ValidationFailed as exc:
        return refused(exc, request.url.path, getattr(exc, "draft_id", None))
    headers = {"Idempotent-Replayed": "true"} if view.get("replayed") else {}
    return JSONResponse(view, status_code=status, headers=headers)


@resident_router.get("/applications/{application_id}")
def my_application(request: Request, who: ResidentAuth, application_id: str) -> dict[str, Any]:
    return procedures(request).my_application(who, application_id)


@resident_router.get("/applications/{application_id}/document")
def my_document(request: Request, who: ResidentAuth, application_id: str) -> Response:
    serial, pdf = procedures(request).my_document(who, application_id)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{serial}.pdf"',
                             "Cache-Control": "no-store"})


@resident_router.get("/notifications")
def my_notifications(request: Request, who: ResidentAuth) -> dict[str, Any]:
    return {"items": procedures(request).notifications(who)}


@resident_router.post("/notifications/read")
def read_notifications(request: Request, who: ResidentAuth) -> dict[str, Any]:
    return {"marked": procedures(request).mark_notifications_read(who)}


# --- the staff work queue -----------------------------------------------------------------

class Decision(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)
    assessment_id: str | None = Field(default=None, max_length=64)
    kind: str | None = Field(default=None, max_length=20)


@router.get(f"{BASE}/applications")
def queue(request: Request, lgcode: str, read: QueueRead, procedure: str | None = None,
          state: str | None = None, page: int = 1, per_page: int = 50) -> dict[str, Any]:
    with read.transaction():
        result = procedures(request).queue(read.session.staff, lgcode, procedure, state, page, per_page)
        read.record([i["resident_id"] for i in result["items"]], ["application"])
    return result


@router.get(f"{BASE}/applications/{{application_id}}")
def application(request: Request, lgcode: str, application_id: str, read: QueueRead) -> dict[str, Any]:
    with read.transaction():
        view = procedures(request).get(read.session.staff, lgcode, application_id)
        read.record([view["resident_id"]])
    return view


@router.post(f"{BASE}/applications/{{application_id}}/{{action}}")
def decide(request: Request, lgcode: str, application_id: str, action: str, read: QueueRead,
           body: Decision | None = None) -> dict[str, Any]:
    svc = procedures(request)
    staff = read.session.staff
    body = body or Decision()
    with read.transaction():
        if action == "claim":
            view = svc.claim(staff, lgcode, application_id)
        elif action == "approve":
            view = svc.approve(staff, lgcode, application_id, body.model_dump(exclude_none=True))
        elif action == "reject":
            view = svc.reject(staff, lgcode, application_id, body.reason or "")
        elif action == "request-correction":
            view = svc.request_correction(staff, lgcode, application_id, body.reason or "")
        else:
            raise KibanError("その操作はありません。", "Unknown action.", status=404, code="not-found")
        read.record([view["resident_id"]])
    if action == "approve":
        after_approval(request, staff, lgcode, view)
    return view
