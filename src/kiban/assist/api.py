"""JSON API of the shared assistant: /api/v1/assist/...

Asking, the greeting and feedback are public (residents and visitors have no account); content,
settings, usage and unanswered questions need a staff token (団体管理者 of the municipality;
the shared bank, owner 000000, the platform's administrators)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from kiban.assist.model import MAX_CSV_BYTES
from kiban.core.errors import NotFound, invalid
from kiban.platform.auth import Session
from kiban.web.deps import api_session, services

router = APIRouter(prefix="/api/v1/assist", tags=["assist"])
Auth = Annotated[Session, Depends(api_session)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskIn(Strict):
    question: str = Field(max_length=20_000, description="at most 500 characters are answered")
    lang: str | None = Field(None, description="ja, en, zh, ko or vi; guessed when absent")


class FeedbackIn(Strict):
    ref: str = Field(description="the `ref` of the answer shown")
    helpful: bool


class FaqIn(Strict):
    question: str
    answer: str
    category: str
    department: str = ""
    last_reviewed: str = Field(description="YYYY-MM-DD", examples=["2026-10-01"])
    review_state: Literal["draft", "approved"] = "draft"
    keywords: str = ""
    url: str = ""


class AdoptionIn(Strict):
    mode: Literal["adopt", "override", "opt_out"] | None = Field(
        None, description="null: follow the municipality's adopt_shared setting")
    answer: str = Field("", description="the municipality's own answer (override)")
    last_reviewed: str | None = None


class SettingsIn(Strict):
    greeting_ja: str | None = None
    greeting_en: str | None = None
    tone: Literal["polite", "friendly"] | None = None
    categories: list[str] | None = None
    adopt_shared: bool | None = None
    threshold: float | None = Field(None, description="0 to 1; below it the assistant hands off")
    inquiry_url: str | None = None


@router.get("/{lgcode}", summary="The assistant's greeting and inquiry page (public)")
def greeting(request: Request, lgcode: str) -> dict[str, Any]:
    return services(request).assist.public_settings(lgcode)


@router.post("/{lgcode}/ask", summary="Ask a question (public)")
def ask(request: Request, lgcode: str, body: AskIn) -> dict[str, Any]:
    return services(request).assist.ask(lgcode, body.question, body.lang)


@router.post("/{lgcode}/feedback", status_code=204, summary="Was this answer helpful? (public)")
def feedback(request: Request, lgcode: str, body: FeedbackIn) -> Response:
    services(request).assist.feedback(lgcode, body.ref, body.helpful)
    return Response(status_code=204)


@router.get("/{lgcode}/faqs", summary="The municipality's FAQs (000000: the shared bank)")
def faqs(request: Request, session: Auth, lgcode: str) -> list[dict[str, Any]]:
    return services(request).assist.faqs(session.staff, lgcode)


@router.post("/{lgcode}/faqs", status_code=201, summary="Add a FAQ")
def add_faq(request: Request, session: Auth, lgcode: str, body: FaqIn) -> dict[str, Any]:
    return services(request).assist.save_faq(session.staff, lgcode, body.model_dump())


@router.post("/{lgcode}/faqs/import", summary="Import FAQs from CSV (all rows or none)",
             openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {
                 "type": "string"}}}, "required": True}})
async def import_faqs(request: Request, session: Auth, lgcode: str) -> Any:
    data = await request.body()
    svc = services(request)
    if len(data) > MAX_CSV_BYTES:
        raise invalid("file", "ファイルが大きすぎます(5MBまで)。", "The file is larger than 5 MB.")
    return await run_in_threadpool(svc.assist.import_csv, session.staff, lgcode, data)


@router.get("/{lgcode}/faqs/{faq_id}", summary="One FAQ")
def get_faq(request: Request, session: Auth, lgcode: str, faq_id: str) -> dict[str, Any]:
    found = services(request).assist.faq(session.staff, faq_id)
    if found["lgcode"] != lgcode:
        raise NotFound("FAQが見つかりません。", "No such FAQ.")
    return found


@router.put("/{lgcode}/faqs/{faq_id}", summary="Update a FAQ")
def put_faq(request: Request, session: Auth, lgcode: str, faq_id: str, body: FaqIn
            ) -> dict[str, Any]:
    return services(request).assist.save_faq(session.staff, lgcode, body.model_dump(), faq_id)


@router.delete("/{lgcode}/faqs/{faq_id}", status_code=204, summary="Delete a FAQ")
def delete_faq(request: Request, session: Auth, lgcode: str, faq_id: str) -> Response:
    get_faq(request, session, lgcode, faq_id)
    services(request).assist.delete_faq(session.staff, faq_id)
    return Response(status_code=204)


@router.get("/{lgcode}/shared", summary="The shared bank with this municipality's choices")
def shared(request: Request, session: Auth, lgcode: str) -> list[dict[str, Any]]:
    return services(request).assist.shared_bank(session.staff, lgcode)


@router.put("/{lgcode}/shared/{faq_id}", summary="Adopt, override or opt out of a shared answer")
def adopt(request: Request, session: Auth, lgcode: str, faq_id: str, body: AdoptionIn
          ) -> dict[str, Any]:
    return services(request).assist.adopt(session.staff, lgcode, faq_id, body.mode, body.answer,
                                          body.last_reviewed)


@router.get("/{lgcode}/settings", summary="Greeting, tone, categories, adoption, threshold")
def get_settings(request: Request, session: Auth, lgcode: str) -> dict[str, Any]:
    return services(request).assist.settings(session.staff, lgcode)


@router.patch("/{lgcode}/settings", summary="Change some settings")
def patch_settings(request: Request, session: Auth, lgcode: str, body: SettingsIn
                   ) -> dict[str, Any]:
    return services(request).assist.save_settings(session.staff, lgcode,
                                                  body.model_dump(exclude_none=True))


@router.get("/{lgcode}/usage", summary="Questions, answers, hand-offs and feedback (31 days)")
def usage(request: Request, session: Auth, lgcode: str) -> list[dict[str, Any]]:
    return services(request).assist.usage(session.staff, lgcode)


@router.get("/{lgcode}/unanswered", summary="Questions handed off, for writing new FAQs")
def unanswered(request: Request, session: Auth, lgcode: str) -> list[dict[str, Any]]:
    return services(request).assist.unanswered(session.staff, lgcode)


@router.post("/{lgcode}/unanswered/{item_id}/resolve", status_code=204,
             summary="Mark an unanswered question as dealt with")
def resolve(request: Request, session: Auth, lgcode: str, item_id: int) -> Response:
    services(request).assist.resolve(session.staff, lgcode, item_id)
    return Response(status_code=204)


@router.get("", summary="Usage of every municipality (platform administrators), for sharing "
                        "the cost")
def all_usage(request: Request, session: Auth) -> list[dict[str, Any]]:
    return services(request).assist.usage(session.staff, None)
