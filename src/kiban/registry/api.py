"""JSON API of the registry: /api/v1/municipalities/{lgcode}/... (OpenAPI: /openapi.json)."""


from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from kiban.platform.auth import Permission, Session
from kiban.privacy.access import PERSON_FIELDS, PersonalRead, personal_read, resident_ids
from kiban.web.deps import api_session, idempotent, services

router = APIRouter(prefix="/api/v1/municipalities/{lgcode}", tags=["registry"])
LgCode = Annotated[str, Path(pattern=r"^\d{6}$", description="地方公共団体コード (6 digits)")]
Auth = Annotated[Session, Depends(api_session)]
# Reads of personal data: purpose checked before, the residents read recorded after (issue 9).
RegistryRead = Annotated[PersonalRead, Depends(personal_read("resident_registration",
                                                             PERSON_FIELDS))]
CertificateRead = Annotated[PersonalRead, Depends(personal_read("certificate_issue",
                                                                ["certificate"]))]
AuditRead = Annotated[PersonalRead, Depends(personal_read("audit", ["access_log"]))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(Strict):
    town_code: str = Field(description="町字 code from the municipality's master")
    banchi: str = Field(examples=["1番地2", "3-4"])
    katagaki: str = ""


class ForeignIn(Strict):
    nationality: str
    residence_status: str
    period: str
    expiry: date
    card_number: str
    alias: str = ""
    category: str = "中長期在留者"


class PersonIn(Strict):
    family_name: str
    given_name: str = ""
    family_kana: str
    given_kana: str
    birth_date: date
    sex: Literal["1", "2"]
    relationship: str = Field(description="続柄: 世帯主, 妻, 子, ...")
    juminhyo_code: str | None = Field(None, description="carried over from the 転出証明書")
    my_number: str | None = None
    former_surname: str = ""
    honseki: str = ""
    hittosha: str = ""
    previous_address: str = ""
    foreign: ForeignIn | None = None


class MoveIn(Strict):
    origin: Literal["domestic", "abroad"] = "domestic"
    occurred_on: date = Field(description="異動日 (the day of moving)")
    notified_on: date
    address: AddressIn | None = None
    household_id: str | None = Field(None, description="join this household instead")
    previous_address: str = ""
    from_lgcode: str = ""
    members: list[PersonIn] = Field(min_length=1)
    late_reason: str = Field("", max_length=500, description=(
        "why the notice is late (JR-0415); required for a late notice where the municipality's "
        "recorded deviation sets late_notice_policy to require_reason"))


class AuthorityEntry(Strict):
    occurred_on: date
    reason: str = Field(min_length=1)
    address: AddressIn | None = None
    household_id: str | None = None
    members: list[PersonIn] = Field(min_length=1)


class SpecialMoveIn(Strict):
    transfer_id: str
    occurred_on: date
    notified_on: date
    address: AddressIn | None = None
    household_id: str | None = None
    relationship: str | None = None


class Relocation(Strict):
    household_id: str
    occurred_on: date
    notified_on: date
    address: AddressIn
    member_ids: list[str] | None = None
    new_head_id: str | None = None
    remaining_head_id: str | None = None
    relationships: dict[str, str] | None = None
    late_reason: str = Field("", max_length=500, description=(
        "why the notice is late (JR-0415); required for a late notice where the municipality's "
        "recorded deviation sets late_notice_policy to require_reason"))


class MoveOut(Strict):
    resident_ids: list[str] = Field(min_length=1)
    planned_on: date
    notified_on: date
    destination: str
    dest_lgcode: str | None = None
    abroad: bool = False
    remaining_head_id: str | None = None


class Birth(Strict):
    household_id: str
    notified_on: date
    child: PersonIn
    late_reason: str = Field("", max_length=500, description=(
        "why the notice is late (JR-0415); required for a late notice where the municipality's "
        "recorded deviation sets late_notice_policy to require_reason"))


class Death(Strict):
    resident_id: str
    occurred_on: date
    notified_on: date
    remaining_head_id: str | None = None
    late_reason: str = Field("", max_length=500, description=(
        "why the notice is late (JR-0415); required for a late notice where the municipality's "
        "recorded deviation sets late_notice_policy to require_reason"))


class Split(Strict):
    household_id: str
    member_ids: list[str] = Field(min_length=1)
    new_head_id: str
    occurred_on: date
    notified_on: date
    remaining_head_id: str | None = None
    relationships: dict[str, str] | None = None


class Merge(Strict):
    household_id: str
    other_household_id: str
    relationships: dict[str, str]
    occurred_on: date
    notified_on: date


class HeadChange(Strict):
    household_id: str
    new_head_id: str
    relationships: dict[str, str]
    occurred_on: date
    notified_on: date


class AuthorityRemoval(Strict):
    resident_ids: list[str] = Field(min_length=1)
    occurred_on: date
    reason: str = Field(min_length=1)
    remaining_head_id: str | None = None


class Correction(Strict):
    resident_id: str
    updates: dict[str, Any]
    reason: str = Field(min_length=1)


class Cancellation(Strict):
    event_id: str
    reason: str = Field(min_length=1)


class JuminhyoCodeChange(Strict):
    resident_id: str
    notified_on: date = Field(description="請求の年月日")
    reason: str = Field("", max_length=200)


class Requester(Strict):
    kind: Literal["self", "third_party"] = Field(
        description="self: 本人又は同一世帯の者 (住基法12条); third_party: 本人等以外の者 (12条の3)")
    name: str = Field("", max_length=200, description="申出者 (required for a third party)")
    purpose: str = Field("", max_length=200, description="利用目的 (required for a third party)")


class CertificateRequest(Strict):
    resident_ids: list[str] = Field(min_length=1)
    kind: Literal["juminhyo", "joshu", "kisai_jiko"] = Field(
        "juminhyo", description="住民票の写し, 除票の写し, 住民票記載事項証明書 (JR-0506)")
    form: Literal["household", "individual"] | None = Field(
        None, description="世帯連記式 or 個人票; by default the municipality's "
        "certificate_default_form (JR-0504)")
    head_and_relationship: bool = True
    honseki: bool = False
    juminhyo_code: bool = False
    my_number: bool = False
    items: list[str] | None = Field(None, description="kisai_jiko only: the items to certify, "
                                    "e.g. person.family_name, person.birth_date, address")
    requester: Requester | None = Field(None, description="who asks (JR-0505)")


class SuppressionIn(Strict):
    resident_id: str
    reason: str = Field(min_length=1, max_length=200)
    starts_on: date
    ends_on: date | None = None


class SuppressionEnd(Strict):
    reason: str = Field("", max_length=200)


def _change(name: str, model: type[Strict], method: str, summary: str) -> None:
    def handler(request: Request, lgcode: LgCode, session: Auth,
                      body: Annotated[model, Body()]) -> Response:  # type: ignore[valid-type]
        svc = services(request)
        data = body.model_dump(mode="python")  # type: ignore[attr-defined]
        if model is AuthorityEntry:
            data["authority"] = True

        def run() -> tuple[int, Any]:
            return 201, getattr(svc.registry, method)(session.staff, lgcode, data)

        return idempotent(request, lgcode, body.model_dump(mode="json"), run)  # type: ignore[attr-defined]

    router.add_api_route(f"/changes/{name}", handler, methods=["POST"], status_code=201,
                         summary=summary, name=f"change_{name}")


for _name, _model, _method, _summary in (
    ("move-in", MoveIn, "move_in", "転入 (domestic or from abroad) — JR-0401/0402"),
    ("authority-entry", AuthorityEntry, "move_in", "職権記載 — JR-0411"),
    ("special-move-in", SpecialMoveIn, "special_move_in", "特例転入 — JR-0403"),
    ("relocation", Relocation, "relocate", "転居 — JR-0404"),
    ("move-out", MoveOut, "move_out", "転出 — JR-0405"),
    ("birth", Birth, "birth", "出生 — JR-0406"),
    ("death", Death, "death", "死亡 — JR-0407"),
    ("household-split", Split, "split_household", "世帯分離 — JR-0408"),
    ("household-merge", Merge, "merge_households", "世帯合併 — JR-0409"),
    ("head-change", HeadChange, "change_head", "世帯主変更 — JR-0410"),
    ("authority-removal", AuthorityRemoval, "authority_removal", "職権消除 — JR-0412"),
    ("correction", Correction, "correct", "職権修正 — JR-0413"),
    ("cancellation", Cancellation, "cancel", "異動の取消 — JR-0414"),
    ("juminhyo-code-change", JuminhyoCodeChange, "change_juminhyo_code",
     "住民票コードの変更請求 — JR-0421"),
):
    _change(_name, _model, _method, _summary)


@router.get("/residents", summary="Search residents — JR-0201")
def search_residents(
    request: Request, lgcode: LgCode, session: Auth, read: RegistryRead,
    name: str | None = None, birth_date: date | None = None, town_code: str | None = None,
    banchi: str | None = None, juminhyo_code: str | None = None,
    include_removed: bool = False, page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    with read.transaction():  # the read and its record commit together
        result = services(request).registry.search(
            session.staff, lgcode, name=name, birth_date=birth_date, town_code=town_code,
            banchi=banchi, juminhyo_code=juminhyo_code, include_removed=include_removed,
            page=page, per_page=per_page)
        read.record(i["id"] for i in result["items"])
    return result


@router.get("/residents/{resident_id}", summary="One resident (除票 included)")
def get_resident(request: Request, lgcode: LgCode, resident_id: str,
                 session: Auth, read: RegistryRead) -> dict[str, Any]:
    with read.transaction():  # the read and its record commit together
        result = services(request).registry.get(session.staff, lgcode, resident_id)
        read.record([result["id"]])
    return result


@router.get("/residents/{resident_id}/history", summary="Every change of a resident")
def resident_history(request: Request, lgcode: LgCode, resident_id: str,
                     session: Auth, read: RegistryRead) -> list[dict[str, Any]]:
    with read.transaction():  # the read and its record commit together
        result = services(request).registry.history(session.staff, lgcode, resident_id)
        read.record([resident_id, *(rid for e in result for rid in [*e["before"], *e["after"]])],
                    ["history", *read.fields])
    return result


@router.get("/households/{household_id}", summary="A household and its members")
def get_household(request: Request, lgcode: LgCode, household_id: str,
                  session: Auth, read: RegistryRead) -> dict[str, Any]:
    with read.transaction():  # the read and its record commit together
        result = services(request).registry.household(session.staff, lgcode, household_id)
        read.record(m["id"] for m in result["members"])
    return result


@router.get("/moveout-transfers", summary="Move-out data sent ahead to this municipality")
def incoming_transfers(request: Request, lgcode: LgCode, session: Auth,
                       read: RegistryRead, juminhyo_code: str | None = None
                       ) -> list[dict[str, Any]]:
    with read.transaction():  # the read and its record commit together
        result = services(request).registry.incoming_transfers(session.staff, lgcode, juminhyo_code)
        read.record((t["id"] for t in result), ["juminhyo_code", "name"], {"record": "moveout_transfer"})
    return result


@router.post("/certificates", summary="Issue a 住民票の写し or 除票の写し as PDF — JR-0501",
             response_class=Response,
             responses={201: {"content": {"application/pdf": {}}}})
def issue_certificate(request: Request, lgcode: LgCode, session: Auth,
                      body: CertificateRequest) -> Response:
    serial, pdf = services(request).registry.issue_certificate(
        session.staff, lgcode, body.model_dump())
    return Response(pdf, status_code=201, media_type="application/pdf", headers={
        "X-Certificate-Serial": serial,
        "Content-Disposition": f'inline; filename="{serial}.pdf"'})


@router.get("/certificates", summary="Issued certificates")
def list_certificates(request: Request, lgcode: LgCode, session: Auth,
                      read: CertificateRead) -> list[dict[str, Any]]:
    with read.transaction():  # the read and its record commit together
        result = services(request).registry.certificates(session.staff, lgcode)
        read.record(resident_ids(result))
    return result


class WithdrawalIn(Strict):
    reason: str = Field(min_length=1, max_length=200, description="why the certificate is withdrawn")


@router.post("/certificates/{serial}/withdraw", summary="Withdraw an issued certificate (supervisor)")
def withdraw_certificate(request: Request, lgcode: LgCode, session: Auth,
                         serial: Annotated[str, Path(pattern=r"^[0-9A-Za-z-]{1,20}$")],
                         body: WithdrawalIn) -> dict[str, Any]:
    """/verify reports the certificate withdrawn from then on."""
    return services(request).registry.withdraw_certificate(session.staff, lgcode, serial, body.reason)


@router.post("/suppressions", status_code=201,
             summary="Set a 支援措置 suppression (supervisor) — JR-0301")
def set_suppression(request: Request, lgcode: LgCode, session: Auth,
                    body: SuppressionIn) -> Response:
    svc = services(request)
    data = body.model_dump(mode="python")
    return idempotent(request, lgcode, body.model_dump(mode="json"),
                      lambda: (201, svc.registry.set_suppression(session.staff, lgcode, data)))


@router.get("/suppressions", summary="Suppressions (supervisor) — JR-0301")
def list_suppressions(request: Request, lgcode: LgCode, session: Auth, read: RegistryRead,
                      active: bool | None = None,
                      resident_id: str | None = None) -> list[dict[str, Any]]:
    with read.transaction():  # the read and its record commit together
        result = services(request).registry.suppressions(session.staff, lgcode, active=active,
                                                         resident_id=resident_id)
        read.record(resident_ids(result), ["suppression"])
    return result


@router.post("/suppressions/{suppression_id}/end", summary="End a suppression — JR-0301")
def end_suppression(request: Request, lgcode: LgCode, suppression_id: str, session: Auth,
                    body: SuppressionEnd | None = None) -> dict[str, Any]:
    return services(request).registry.end_suppression(
        session.staff, lgcode, suppression_id, body.model_dump() if body else {})


@router.get("/access-log", summary="Who read or certified a resident — JR-1005")
def access_log(request: Request, lgcode: LgCode, session: Auth, read: AuditRead,
               resident_id: str | None = None, staff_id: str | None = None,
               page: Annotated[int, Query(ge=1, le=10_000)] = 1,
               per_page: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    with read.transaction():  # the read and its record commit together
        result = services(request).registry.access_log(session.staff, lgcode,
                                                       resident_id=resident_id, staff_id=staff_id,
                                                       page=page, per_page=per_page)
        read.record(resident_ids(result["items"]))
    return result


@router.get("/dashboard", summary="Counts and population pyramid")
def dashboard(request: Request, lgcode: LgCode, session: Auth) -> dict[str, Any]:
    return services(request).registry.dashboard(session.staff, lgcode)


@router.get("/ledger/verify", summary="Verify the municipality's ledger")
def verify_ledger(request: Request, lgcode: LgCode, session: Auth) -> dict[str, Any]:
    session.staff.require(Permission.LEDGER_AUDIT, lgcode)
    return services(request).registry.verify_ledger(lgcode)
