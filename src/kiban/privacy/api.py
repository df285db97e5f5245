"""JSON API of personal-information protection: /api/v1/municipalities/{lgcode}/privacy/..."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from kiban.platform.auth import Session
from kiban.privacy import service as privacy_service
from kiban.privacy.model import ProposalIn
from kiban.web.deps import api_session, services

router = APIRouter(prefix="/api/v1/municipalities/{lgcode}/privacy", tags=["privacy"])
LgCode = Annotated[str, Path(pattern=r"^\d{6}$", description="地方公共団体コード (6 digits)")]
Auth = Annotated[Session, Depends(api_session)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallIn(Strict):
    title: str = Field(max_length=200)
    opens_on: date
    closes_on: date
    files: list[str] = Field(max_length=20)


class ProposerIn(Strict):
    organisation: str = Field(max_length=200)
    contact_email: str = Field(max_length=200)
    disqualifications: list[str] = Field(default_factory=list, max_length=10, description=(
        "第113条 disqualifications the proposer declares (each refuses the proposal)"))


class ProposalBody(Strict):
    call_id: str
    file_id: str = "resident_registry"
    proposer: ProposerIn
    purpose: str = Field(max_length=2000)
    items: list[str] = Field(max_length=20, description="items of the file: age, sex, town_code…")
    sensitive: str | None = Field(None, description="the item kept as is, protected by l-diversity")
    k: int = Field(ge=1, le=1000)
    l: int = Field(2, ge=1, le=100)  # noqa: E741
    use_from: date
    use_to: date


class ContractIn(Strict):
    contract_no: str = Field(max_length=60)
    signed_on: date
    fee_yen: int = Field(ge=0)


class BudgetIn(Strict):
    epsilon_total: float
    dataset: str = Field(privacy_service.DP_DATASET, description=(
        "registry (registry statistics), tax (tax statistics) or opendata_population (the "
        "open dataset 地域・年齢別人口 made with DP)"))


class TaxReleaseIn(Strict):
    fiscal_year: int
    by: str = Field(description="town (町字 on 1 January) or income_band (総所得金額等)")
    epsilon: float = Field(description="spent from the tax budget: half for counts, half for sums")
    upper: int = Field(500_000, description="each taxpayer's 所得割 clamped to [0, upper] yen")


class ReleaseIn(Strict):
    epsilon: float
    upper: int = 100


@router.get("/file-register", summary="個人情報ファイル簿 (法第75条), generated from the data model")
def file_register(lgcode: LgCode) -> dict[str, Any]:
    return {"lgcode": lgcode, "columns": [{"key": k, "label": label, "basis": basis}
                                          for k, label, basis in privacy_service.REGISTER_COLUMNS],
            "files": privacy_service.register_entries()}


@router.get("/file-register.csv", summary="個人情報ファイル簿 as CSV (UTF-8 with BOM)")
def file_register_csv(lgcode: LgCode) -> Response:
    text = privacy_service.register_csv(privacy_service.register_entries())
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="file-register-{lgcode}.csv"'})


@router.get("/calls", summary="提案募集: open and past calls for proposals (public)")
def calls(request: Request, lgcode: LgCode) -> list[dict[str, Any]]:
    return services(request).privacy.calls(lgcode)


@router.post("/calls", status_code=201, summary="Open a call for proposals (≥30 days)")
def open_call(request: Request, lgcode: LgCode, session: Auth, body: CallIn) -> dict[str, Any]:
    return services(request).privacy.open_call(session.staff, lgcode, body.title, body.opens_on,
                                               body.closes_on, body.files)


@router.post("/proposals", status_code=201,
             summary="A data user's proposal for anonymised data (public); refusals name the rule")
def submit(request: Request, lgcode: LgCode, body: ProposalBody) -> dict[str, Any]:
    p = ProposalIn(purpose=body.purpose, items=body.items, sensitive=body.sensitive, k=body.k,
                   l=body.l, use_from=body.use_from, use_to=body.use_to,
                   disqualifications=body.proposer.disqualifications)
    proposer = {"organisation": body.proposer.organisation,
                "contact_email": body.proposer.contact_email}
    return services(request).privacy.submit(lgcode, body.call_id, proposer, body.file_id, p)


@router.get("/proposals", summary="Proposals (privacy officer)")
def proposals(request: Request, lgcode: LgCode, session: Auth) -> list[dict[str, Any]]:
    return services(request).privacy.proposals(session.staff, lgcode)


@router.get("/proposals/{proposal_id}", summary="One proposal with its screening and processing record")
def proposal(request: Request, lgcode: LgCode, proposal_id: str, session: Auth) -> dict[str, Any]:
    return services(request).privacy.proposal(session.staff, lgcode, proposal_id)


@router.post("/proposals/{proposal_id}/screening", summary="Screen (法第112条): eligibility, ≥1,000 persons")
def screen(request: Request, lgcode: LgCode, proposal_id: str, session: Auth) -> dict[str, Any]:
    return services(request).privacy.screen(session.staff, lgcode, proposal_id)


@router.post("/proposals/{proposal_id}/processing",
             summary="Make the anonymised data (規則第62条): the file holder; k, l, loss and risk")
def process(request: Request, lgcode: LgCode, proposal_id: str, session: Auth) -> dict[str, Any]:
    return services(request).privacy.process(session.staff, lgcode, proposal_id)


@router.post("/proposals/{proposal_id}/contract", summary="The 利用契約 (法第115条)")
def contract(request: Request, lgcode: LgCode, proposal_id: str, session: Auth,
             body: ContractIn) -> dict[str, Any]:
    return services(request).privacy.contract(session.staff, lgcode, proposal_id,
                                              body.contract_no, body.signed_on, body.fee_yen)


@router.get("/proposals/{proposal_id}/dataset", summary="Deliver the anonymised dataset (CSV)",
            responses={200: {"content": {"text/csv": {}}}})
def dataset(request: Request, lgcode: LgCode, proposal_id: str, session: Auth) -> Response:
    data, sha = services(request).privacy.deliver(session.staff, lgcode, proposal_id)
    return Response("\ufeff" + data, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="anonymised-{proposal_id}.csv"',
        "X-Content-SHA256": sha})


@router.put("/budget", summary="Set the privacy budget (total ε) of a dataset (registry, tax, "
                               "opendata_population)")
def set_budget(request: Request, lgcode: LgCode, session: Auth, body: BudgetIn) -> dict[str, Any]:
    return services(request).privacy.set_budget(session.staff, lgcode, body.epsilon_total,
                                                body.dataset)


@router.get("/budgets", summary="Privacy budgets: total, spent, left")
def budgets(request: Request, lgcode: LgCode, session: Auth) -> list[dict[str, Any]]:
    return services(request).privacy.budgets(session.staff, lgcode)


@router.post("/releases/population", status_code=201,
             summary="地域・年齢別人口 with differential privacy (spends ε)")
def release_population(request: Request, lgcode: LgCode, session: Auth,
                       body: ReleaseIn) -> dict[str, Any]:
    return services(request).privacy.release_population(session.staff, lgcode, body.epsilon)


@router.post("/releases/age-sum", status_code=201,
             summary="Sum of ages per 町字 with differential privacy (spends ε)")
def release_age_sum(request: Request, lgcode: LgCode, session: Auth,
                    body: ReleaseIn) -> dict[str, Any]:
    return services(request).privacy.release_sum(session.staff, lgcode, body.epsilon, body.upper)


@router.post("/releases/tax", status_code=201,
             summary="Taxpayers and the sum of 所得割 per 町字 or income band with differential "
                     "privacy (税務担当; spends ε from the tax budget)")
def release_tax(request: Request, lgcode: LgCode, session: Auth,
                body: TaxReleaseIn) -> dict[str, Any]:
    svc = services(request)
    return svc.privacy.release_tax(session.staff, lgcode, svc.assessments, body.fiscal_year,
                                   body.by, body.epsilon, body.upper)


@router.get("/releases", summary="Every DP release (public)")
def releases(request: Request, lgcode: LgCode) -> list[dict[str, Any]]:
    return services(request).privacy.releases(lgcode)


@router.get("/flagged-accesses", summary="Reads outside the reader's purposes (privacy officer)")
def flagged(request: Request, lgcode: LgCode, session: Auth) -> list[dict[str, Any]]:
    return services(request).privacy.flagged(session.staff, lgcode,
                                             channel="api:GET /privacy/flagged-accesses")


@router.get("/residents/{resident_id}/accesses",
            summary="Who (department, role) read a resident's record, when and why — for the "
                    "resident portal and 開示請求")
def resident_accesses(request: Request, lgcode: LgCode, resident_id: str,
                      session: Auth) -> dict[str, Any]:
    return services(request).privacy.accesses_of(
        session.staff, lgcode, resident_id,
        channel="api:GET /privacy/residents/{resident_id}/accesses")
