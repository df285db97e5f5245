"""Platform API: sign-in tokens, municipalities (tenants), their settings, 町字 and staff."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from kiban.platform.auth import Permission, Session
from kiban.web.deps import api_session, services

router = APIRouter(prefix="/api/v1", tags=["platform"])
Auth = Annotated[Session, Depends(api_session)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credentials(Strict):
    username: str
    password: str


class MunicipalityIn(Strict):
    lgcode: str = Field(description="6-digit 地方公共団体コード with check digit")
    name: str
    prefecture: str
    name_kana: str = ""
    conformance: bool = Field(False, description="a throwaway municipality of the conformance "
                                                 "kit, which it retires afterwards")


class Town(Strict):
    code: str
    name: str
    name_kana: str = ""
    postcode: str = ""


class StaffIn(Strict):
    username: str
    password: str
    display_name: str
    department: str = ""
    roles: list[str] = Field(min_length=1)


def _municipality(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "created_at": row["created_at"].isoformat()}


@router.post("/tokens", status_code=201, summary="Exchange staff credentials for an API token")
def create_token(request: Request, body: Credentials) -> dict[str, Any]:
    svc = services(request)
    client = request.client.host if request.client else "-"
    token, session = svc.accounts.login(
        body.username, body.password, client, svc.clock.now(), svc.settings.login_attempts,
        svc.settings.login_window_seconds, kind="api")
    return {"token": token, "token_type": "Bearer", "lgcode": session.staff.lgcode,
            "roles": sorted(session.staff.roles)}


@router.get("/municipalities", summary="Municipalities the caller may see")
def list_municipalities(request: Request, session: Auth) -> list[dict[str, Any]]:
    rows = services(request).municipalities.list()
    if not session.staff.can(Permission.PLATFORM_MANAGE):
        rows = [r for r in rows if r["lgcode"] == session.staff.lgcode]
    return [_municipality(r) for r in rows]


@router.post("/municipalities", status_code=201, summary="Register a municipality")
def create_municipality(request: Request, session: Auth, body: MunicipalityIn) -> dict[str, Any]:
    session.staff.require(Permission.PLATFORM_MANAGE)
    svc = services(request)
    row = svc.municipalities.create(body.lgcode, body.name, body.prefecture, svc.clock.now(),
                                    body.name_kana, actor=session.staff.id,
                                    purpose="conformance" if body.conformance else "")
    return _municipality(row)


@router.post("/municipalities/{lgcode}/retire", summary="Retire a conformance-test municipality")
def retire_municipality(request: Request, lgcode: str, session: Auth) -> dict[str, Any]:
    session.staff.require(Permission.PLATFORM_MANAGE)
    svc = services(request)
    svc.municipalities.retire(lgcode, svc.clock.now(), session.staff.id)
    closed = svc.accounts.deactivate_municipality(lgcode)
    return {"lgcode": lgcode, "status": "retired", "accounts_closed": closed}


@router.get("/municipalities/{lgcode}", summary="One municipality with its settings")
def get_municipality(request: Request, lgcode: str, session: Auth) -> dict[str, Any]:
    if not session.staff.can(Permission.PLATFORM_MANAGE):
        session.staff.require(Permission.DASHBOARD, lgcode)
    return _municipality(services(request).municipalities.get(lgcode))


@router.patch("/municipalities/{lgcode}/settings", summary="Change municipality settings")
def update_settings(request: Request, lgcode: str, session: Auth,
                    body: dict[str, Any]) -> dict[str, Any]:
    session.staff.require(Permission.MUNICIPALITY_MANAGE, lgcode)
    svc = services(request)
    return svc.municipalities.update_settings(lgcode, body, svc.clock.now(), session.staff.id)


@router.get("/municipalities/{lgcode}/towns", summary="The 町字 master")
def list_towns(request: Request, lgcode: str, session: Auth) -> list[dict[str, str]]:
    session.staff.require(Permission.DASHBOARD, lgcode)
    return [{"code": c, "name": n}
            for c, n in services(request).municipalities.towns(lgcode).items()]


@router.put("/municipalities/{lgcode}/towns", summary="Replace the 町字 master")
def replace_towns(request: Request, lgcode: str, session: Auth,
                  body: list[Town]) -> dict[str, int]:
    if not session.staff.can(Permission.PLATFORM_MANAGE):  # operators onboard municipalities
        session.staff.require(Permission.MUNICIPALITY_MANAGE, lgcode)
    svc = services(request)
    count = svc.municipalities.set_towns(lgcode, [t.model_dump() for t in body], svc.clock.now(),
                                         session.staff.id)
    return {"count": count}


@router.get("/municipalities/{lgcode}/staff", summary="Staff accounts")
def list_staff(request: Request, lgcode: str, session: Auth) -> list[dict[str, Any]]:
    session.staff.require(Permission.MUNICIPALITY_MANAGE, lgcode)
    return [{"id": m.id, "username": m.username, "display_name": m.display_name,
             "department": m.department, "roles": sorted(m.roles)}
            for m in services(request).accounts.list(lgcode)]


@router.post("/municipalities/{lgcode}/staff", status_code=201, summary="Create a staff account")
def create_staff(request: Request, lgcode: str, session: Auth, body: StaffIn) -> dict[str, Any]:
    if not session.staff.can(Permission.PLATFORM_MANAGE):
        session.staff.require(Permission.MUNICIPALITY_MANAGE, lgcode)
    svc = services(request)
    svc.municipalities.get(lgcode)
    if "platform_admin" in body.roles:
        session.staff.require(Permission.PLATFORM_MANAGE)
    m = svc.accounts.create(body.username, body.password, body.display_name, body.roles, lgcode,
                            svc.clock.now(), body.department)
    return {"id": m.id, "username": m.username, "roles": sorted(m.roles)}
