"""JSON API of the specialist pool: /api/v1/talent/..."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from kiban.platform.auth import Permission, Session
from kiban.web.deps import api_session, idempotent, services

router = APIRouter(prefix="/api/v1/talent", tags=["talent"])
Auth = Annotated[Session, Depends(api_session)]
Month = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$", examples=["2026-06"])]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfileIn(Strict):
    display_name: str
    skills: list[str] = Field(description="codes from GET /api/v1/talent/skills")
    experience: str = ""
    regions: list[str] = Field(default_factory=list, description="prefectures served on site")
    onsite: bool = False
    remote: bool = True
    days_per_month: int = Field(description="days a month offered, 1 to 22")
    rate_per_day: int = Field(description="expected yen per day")
    hidden: list[Literal["display_name", "experience", "rate_per_day"]] = Field(
        default_factory=list, description="fields shown only to engaged municipalities")
    listed: bool = True


class ShareIn(Strict):
    lgcode: str
    days: int


class NeedIn(Strict):
    title: str
    tasks: str
    required_skills: list[str]
    preferred_skills: list[str] = Field(default_factory=list)
    days_per_month: int
    start: Month
    end: Month
    onsite_percent: int = Field(description="share of the days worked on site, 0 to 100")
    budget_per_month: int = Field(description="yen a month, all municipalities together")
    shares: list[ShareIn] | None = Field(
        None, description="a joint need (広域確保): each municipality's days; they add up to "
                          "days_per_month and each confirms its own share")


class OfferIn(Strict):
    specialist_id: str
    start: Month | None = None
    end: Month | None = None
    days: dict[str, int] | None = Field(None, description="days per municipality; default: "
                                                          "the need's shares")


class ReportIn(Strict):
    month: Month
    days: dict[str, int] = Field(description="days worked for each municipality")
    summary: str


class EndIn(Strict):
    last_month: Month


class EvaluationIn(Strict):
    rating: int = Field(ge=1, le=5)
    comment: str = ""


@router.get("/skills", summary="The maintained skill list")
def skills(request: Request, session: Auth) -> list[dict[str, Any]]:
    del session
    return services(request).talent.skills()


@router.get("/specialists/me", summary="My profile (specialists)")
def my_profile(request: Request, session: Auth) -> dict[str, Any] | None:
    return services(request).talent.my_profile(session.staff)


@router.put("/specialists/me", summary="Register or update my profile (specialists)")
def save_profile(request: Request, session: Auth, body: ProfileIn) -> dict[str, Any]:
    return services(request).talent.save_profile(session.staff, body.model_dump())


@router.get("/specialists/{specialist_id}", summary="A specialist's profile (public fields)")
def profile(request: Request, session: Auth, specialist_id: str) -> dict[str, Any]:
    return services(request).talent.profile(session.staff, specialist_id)


@router.get("/needs", summary="Open needs, or my municipality's")
def needs(request: Request, session: Auth,
          scope: Annotated[Literal["open", "mine"], Query()] = "open") -> list[dict[str, Any]]:
    return services(request).talent.needs(session.staff, scope)


@router.post("/needs", status_code=201, summary="Post a need, alone or jointly")
def post_need(request: Request, session: Auth, body: NeedIn) -> Response:
    session.staff.require(Permission.TALENT_MANAGE)
    svc = services(request)
    data = body.model_dump()
    if body.shares is None:
        data.pop("shares")

    def run() -> tuple[int, Any]:
        return 201, svc.talent.post_need(session.staff, data)
    return idempotent(request, session.staff.lgcode or "", body.model_dump(mode="json"), run)


@router.get("/needs/{need_id}", summary="One need")
def need(request: Request, session: Auth, need_id: str) -> dict[str, Any]:
    return services(request).talent.need(session.staff, need_id)


@router.post("/needs/{need_id}/confirm", summary="Confirm my municipality's share of a joint need")
def confirm(request: Request, session: Auth, need_id: str) -> dict[str, Any]:
    return services(request).talent.confirm_share(session.staff, need_id)


@router.post("/needs/{need_id}/close", summary="Close a need to new offers")
def close(request: Request, session: Auth, need_id: str) -> dict[str, Any]:
    return services(request).talent.close_need(session.staff, need_id)


@router.get("/needs/{need_id}/candidates", summary="Specialists ranked for a need, with reasons")
def candidates(request: Request, session: Auth, need_id: str,
               limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
    return services(request).talent.candidates(session.staff, need_id, limit)


@router.get("/matches", summary="Open needs ranked for me, with reasons (specialists)")
def matches(request: Request, session: Auth) -> list[dict[str, Any]]:
    return services(request).talent.matching_needs(session.staff)


@router.post("/needs/{need_id}/offers", status_code=201, summary="Offer a specialist an engagement")
def offer(request: Request, session: Auth, need_id: str, body: OfferIn) -> dict[str, Any]:
    data = {k: v for k, v in body.model_dump().items() if v is not None}
    return services(request).talent.offer(session.staff, need_id, data)


@router.get("/engagements", summary="My engagements (a specialist's or my municipality's)")
def engagements(request: Request, session: Auth) -> list[dict[str, Any]]:
    return services(request).talent.engagements(session.staff)


@router.get("/engagements/{engagement_id}", summary="One engagement with reports and evaluations")
def engagement(request: Request, session: Auth, engagement_id: str) -> dict[str, Any]:
    return services(request).talent.engagement(session.staff, engagement_id)


@router.post("/engagements/{engagement_id}/accept", summary="Accept an offer (specialists)")
def accept(request: Request, session: Auth, engagement_id: str) -> dict[str, Any]:
    return services(request).talent.respond(session.staff, engagement_id, accept=True)


@router.post("/engagements/{engagement_id}/decline", summary="Decline an offer (specialists)")
def decline(request: Request, session: Auth, engagement_id: str) -> dict[str, Any]:
    return services(request).talent.respond(session.staff, engagement_id, accept=False)


@router.post("/engagements/{engagement_id}/withdraw", summary="Withdraw an offer")
def withdraw(request: Request, session: Auth, engagement_id: str) -> dict[str, Any]:
    return services(request).talent.withdraw(session.staff, engagement_id)


@router.post("/engagements/{engagement_id}/reports", status_code=201,
             summary="Submit a monthly activity report (specialists)")
def report(request: Request, session: Auth, engagement_id: str, body: ReportIn
           ) -> dict[str, Any]:
    return services(request).talent.report(session.staff, engagement_id, body.model_dump())


@router.post("/engagements/{engagement_id}/end", summary="End an engagement after a month")
def end(request: Request, session: Auth, engagement_id: str, body: EndIn) -> dict[str, Any]:
    return services(request).talent.end(session.staff, engagement_id, body.last_month)


@router.post("/engagements/{engagement_id}/evaluations", status_code=201,
             summary="Evaluate an ended engagement (one per municipality)")
def evaluate(request: Request, session: Auth, engagement_id: str, body: EvaluationIn
             ) -> dict[str, Any]:
    return services(request).talent.evaluate(session.staff, engagement_id, body.model_dump())


@router.get("/coverage/{prefecture}", summary="A prefecture's coverage and skill shortages")
def coverage(request: Request, session: Auth, prefecture: str,
             month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None
             ) -> dict[str, Any]:
    return services(request).talent.coverage(session.staff, prefecture, month)
