"""JSON API of the standard: the spec, versions, the public deviation register, change
proposals. Reading the spec and the deviations needs no sign-in: they are public."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from kiban.core.errors import NotFound
from kiban.platform.auth import Permission, Session
from kiban.web.deps import api_session, services

router = APIRouter(prefix="/api/v1", tags=["standard"])
Auth = Annotated[Session, Depends(api_session)]
LgCode = Annotated[str, Path(pattern=r"^\d{6}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviationIn(Strict):
    requirement: str = Field(examples=["JR-0415"])
    what: str = Field(description="what differs from the requirement")
    reason: str
    decided_by: str = Field(description="who decided (office and title)")
    decided_on: str = Field(examples=["2026-10-01"])
    review_on: str = Field(description="when the deviation will be reviewed (within 3 years)")
    value: str = Field("", description="the behaviour switch's value, for a requirement that "
                                       "has one")


class ProposalIn(Strict):
    requirement: str | None = Field(None, description="the requirement to change; none for a "
                                                      "new one")
    title: str
    proposed_text: str
    rationale: str


class CommentIn(Strict):
    text: str


class DecisionIn(Strict):
    accept: bool
    reason: str


def _requirement(r: Any) -> dict[str, Any]:
    data = asdict(r)
    data["legal_basis"] = [{"law": law, "article": article} for law, article in r.legal_basis]
    data["kind_label"] = r.kind_label
    return data


@router.get("/standard", summary="The standard's version and size (public)")
def standard(request: Request) -> dict[str, Any]:
    spec = services(request).standard.spec
    return {"name": spec.name, "version": spec.version,
            "requirements": {d: len(spec.domain(d)) for d in ("registry", "tax")},
            "forms": sorted(spec.forms), "items": len(spec.items)}


@router.get("/standard/requirements", summary="Requirements of the standard (public)")
def requirements(request: Request, domain: Literal["registry", "tax"] | None = None
                 ) -> list[dict[str, Any]]:
    spec = services(request).standard.spec
    return [_requirement(r) for r in sorted(spec.requirements.values(), key=lambda r: r.id)
            if domain is None or r.domain == domain]


@router.get("/standard/requirements/{requirement_id}", summary="One requirement (public)")
def requirement(request: Request, requirement_id: str) -> dict[str, Any]:
    found = services(request).standard.spec.requirements.get(requirement_id)
    if found is None:
        raise NotFound("要件が見つかりません。", "No such requirement.")
    return _requirement(found)


@router.get("/standard/changelog", summary="Released versions and the next one (public)")
def changelog(request: Request) -> dict[str, Any]:
    return services(request).standard.changelog()


@router.get("/standard/deviations", summary="Every municipality's deviations (public)")
def deviations(request: Request, lgcode: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
               include_withdrawn: bool = False) -> list[dict[str, Any]]:
    return services(request).standard.deviations(lgcode, include_withdrawn)


@router.post("/municipalities/{lgcode}/deviations", status_code=201,
             summary="Record a deviation from a mandatory requirement")
def record_deviation(request: Request, lgcode: LgCode, session: Auth,
                     body: DeviationIn) -> dict[str, Any]:
    return services(request).standard.record_deviation(session.staff, lgcode, body.model_dump())


@router.post("/standard/deviations/{deviation_id}/withdraw", summary="Withdraw a deviation")
def withdraw_deviation(request: Request, deviation_id: str, session: Auth) -> dict[str, Any]:
    return services(request).standard.withdraw_deviation(session.staff, deviation_id)


@router.get("/municipalities/{lgcode}/standard",
            summary="The version and the options and switches in force for a municipality")
def municipality_standard(request: Request, lgcode: LgCode, session: Auth) -> dict[str, Any]:
    if not session.staff.can(Permission.PLATFORM_MANAGE):
        session.staff.require(Permission.DASHBOARD, lgcode)
    svc = services(request).standard
    return {"version": svc.spec.version, "settings": svc.effective_settings(lgcode),
            "deviations": svc.deviations(lgcode)}


@router.get("/standard/proposals", summary="Change proposals")
def proposals(request: Request, session: Auth,
              status: Literal["open", "accepted", "rejected"] | None = None
              ) -> list[dict[str, Any]]:
    return services(request).standard.proposals(session.staff, status)


@router.post("/standard/proposals", status_code=201, summary="Propose a change to the standard")
def propose(request: Request, session: Auth, body: ProposalIn) -> dict[str, Any]:
    return services(request).standard.propose(session.staff, body.model_dump())


@router.get("/standard/proposals/{proposal_id}", summary="One proposal with its endorsements")
def proposal(request: Request, proposal_id: str, session: Auth) -> dict[str, Any]:
    return services(request).standard.proposal(session.staff, proposal_id)


@router.post("/standard/proposals/{proposal_id}/endorsements", status_code=201,
             summary="Endorse a proposal (one per municipality)")
def endorse(request: Request, proposal_id: str, session: Auth) -> dict[str, Any]:
    return services(request).standard.endorse(session.staff, proposal_id)


@router.post("/standard/proposals/{proposal_id}/comments", status_code=201,
             summary="Comment on a proposal")
def comment(request: Request, proposal_id: str, session: Auth, body: CommentIn) -> dict[str, Any]:
    return services(request).standard.comment(session.staff, proposal_id, body.text)


@router.post("/standard/proposals/{proposal_id}/decision",
             summary="Accept or reject a proposal (the standard's maintainers)")
def decide(request: Request, proposal_id: str, session: Auth, body: DecisionIn) -> dict[str, Any]:
    return services(request).standard.decide(session.staff, proposal_id, body.accept, body.reason)
