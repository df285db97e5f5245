"""HTTP interface of the exchange hub: the exchange itself, the member and permission
registers, the log in Certificate Transparency's JSON shapes, and a resident's exchanges."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from kiban import __version__
from kiban.core.clock import Clock, SystemClock
from kiban.core.errors import FieldError, KibanError, ValidationFailed
from kiban.linkage import model, protocol
from kiban.linkage.service import HUB_MEMBER, Hub
from kiban.platform import settings as settings_module
from kiban.platform.auth import Permission, Session
from kiban.platform.settings import Settings
from kiban.privacy.access import PersonalRead, personal_read
from kiban.web.context import Services
from kiban.web.deps import api_session, problem, services

router = APIRouter(prefix="/api/v1/linkage", tags=["linkage"])
resident_router = APIRouter(prefix="/api/v1/municipalities", tags=["linkage"])
Auth = Annotated[Session, Depends(api_session)]
MAX_INDEX = 2**53  # tree sizes and leaf indexes; beyond it no database integer type is safe


def hub(request: Request) -> Hub:
    return services(request).linkage


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExchangeRequest(Strict):
    """The requester's message. Its exact bytes are signed (Ed25519) and the signature sent in
    `X-Kiban-Signature` (base64), the client's subsystem in `X-Kiban-Client`."""

    protocol: str = Field(model.PROTOCOL_VERSION, description="always kiban-linkage/1")
    request_id: str = Field(description="unique per client, 8 to 64 of A-Z a-z 0-9 -", examples=["5b4c…"])
    issued_at: str = Field(description="ISO 8601 with time zone; within 5 minutes of the hub's clock")
    client: str = Field(description="the requesting subsystem", examples=["JP/GOV/kyokai-kenpo/kyufu"])
    provider: str = Field(examples=["JP/LG/131016/jumin"])
    item: str = Field(examples=["jumin/household-composition"])
    procedure: str = Field(description="the task (事務) code of the permission table")
    subject: str = Field(description="the requester's own agency-specific code for the person")
    params: dict[str, Any] = Field(default_factory=dict)


class ExchangeResponse(BaseModel):
    """Signed by the hub (`X-Kiban-Signature` over the exact body); `request_hash` (also in
    `X-Kiban-Request-Hash`) is base64 SHA-256 of the request body as received."""

    protocol: str
    request_id: str
    request_hash: str
    status: str = Field(description="ok or refused")
    provider: str | None = None
    item: str | None = None
    legal_basis: str | None = None
    table_version: int | None = None
    provider_response: str | None = Field(None, description="the provider's signed reply, verbatim")
    provider_signature: str | None = None
    error: dict[str, str] | None = Field(None, description="code, title_ja, title_en when refused")
    log: dict[str, int]


async def _read_limited(request: Request, limit: int) -> tuple[bytes, bool]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return b"", True
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


@router.post("/exchange", response_model=ExchangeResponse, openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": ExchangeRequest.model_json_schema()}}},
    "parameters": [
        {"name": protocol.CLIENT_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
        {"name": protocol.SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string"}}],
    "responses": {"400": {"description": "malformed or expired"}, "401": {"description": "unsigned or bad signature"},
                  "403": {"description": "unknown member, foreign code, or not in the permission table"},
                  "404": {"description": "unknown provider or item, or no data"},
                  "409": {"description": "replayed request ID"}, "413": {"description": "oversized"},
                  "502": {"description": "the provider failed"}}})
async def exchange(request: Request) -> Response:
    """One exchange. Every refusal has its code in `X-Kiban-Error` and in `error.code`, and is
    logged like an allowed exchange."""
    h = hub(request)
    if not h.started:
        await run_in_threadpool(h.start)
    body, truncated = await _read_limited(request, h.config.max_bytes)
    answer = await run_in_threadpool(h.exchange, body, request.headers.get(protocol.CLIENT_HEADER),
                                     request.headers.get(protocol.SIGNATURE_HEADER), truncated=truncated)
    return Response(answer.body, status_code=answer.status, media_type="application/json", headers=answer.headers)


@router.get("/hub")
def hub_identity(request: Request) -> dict[str, str]:
    """The hub's subsystem and certificate: pin it to check the hub's signatures."""
    return {"id": HUB_MEMBER, "certificate": hub(request).hub_certificate}


@router.get("/members")
def members(request: Request) -> list[dict[str, Any]]:
    """The member register (public): subsystems, certificates and the items each provides."""
    return hub(request).members()


@router.get("/members/{member_id:path}")
def member(request: Request, member_id: str) -> dict[str, Any]:
    return hub(request).member(member_id)


class MemberIn(Strict):
    id: str = Field(examples=["JP/GOV/kyokai-kenpo/kyufu"])
    kind: str = Field(examples=["agency"])
    name: str
    certificate: str | None = Field(None, description="PEM, Ed25519, CN = id, from the configured CA")
    endpoint: str = Field("", description="where the hub reaches a provider (POST); empty for a requester")
    lgcode: str | None = None
    items: dict[str, str] = Field(default_factory=dict, description="items provided: item -> description")


@router.post("/members", status_code=201)
def register(request: Request, session: Auth, body: MemberIn) -> dict[str, Any]:
    session.staff.require(Permission.PLATFORM_MANAGE)
    return hub(request).register_member(body.id, body.kind, body.name, certificate=body.certificate,
                                        endpoint=body.endpoint, lgcode=body.lgcode, items=body.items)


@router.get("/permissions")
def permissions(request: Request, version: int | None = None) -> dict[str, Any]:
    """The permission table (public), the current version unless `version` is given."""
    return hub(request).permissions(version)


@router.get("/permissions/versions")
def permission_versions(request: Request) -> list[dict[str, Any]]:
    return hub(request).permission_versions()


class RuleIn(Strict):
    requester: str
    provider: str = Field(description="a subsystem; * as MEMBER for every municipality")
    item: str
    procedure: str
    legal_basis: str


class TableIn(Strict):
    rules: list[RuleIn]
    note: str = ""


@router.post("/permissions", status_code=201)
def publish(request: Request, session: Auth, body: TableIn) -> dict[str, Any]:
    """Publishes a new version of the whole table."""
    return hub(request).publish_permissions(session.staff, [r.model_dump() for r in body.rules], body.note)


@router.get("/overview")
def overview(request: Request, session: Auth) -> dict[str, Any]:
    return hub(request).overview(session.staff)


# --- the log, as Certificate Transparency serves it (RFC 6962 section 4) ----------------------

@router.get("/ct/v1/get-sth")
def get_sth(request: Request) -> dict[str, Any]:
    return hub(request).sth()


@router.get("/ct/v1/get-proof-by-hash")
def get_proof_by_hash(request: Request, hash: Annotated[str, Query(max_length=100)],
                      tree_size: Annotated[int, Query(ge=0, le=MAX_INDEX)]) -> dict[str, Any]:
    return hub(request).proof_by_hash(hash, tree_size)


@router.get("/ct/v1/get-sth-consistency")
def get_sth_consistency(request: Request, first: Annotated[int, Query(ge=0, le=MAX_INDEX)],
                        second: Annotated[int, Query(ge=0, le=MAX_INDEX)]) -> dict[str, Any]:
    return hub(request).consistency(first, second)


@router.get("/ct/v1/get-entries")
def get_entries(request: Request, start: Annotated[int, Query(ge=0, le=MAX_INDEX)],
                end: Annotated[int, Query(ge=0, le=MAX_INDEX)]) -> dict[str, Any]:
    return hub(request).entries(start, end)


ExchangesRead = Annotated[PersonalRead, Depends(personal_read("resident_registration", ["linkage_exchanges"]))]


@resident_router.get("/{lgcode}/residents/{resident_id}/exchanges")
def resident_exchanges(request: Request, session: Auth, lgcode: str, resident_id: str,
                       read: ExchangesRead) -> dict[str, Any]:
    """The resident's やりとり履歴: every exchange of their data, with inclusion proofs (the
    read is recorded in the access records, as every personal-data read)."""
    result = hub(request).resident_exchanges(session.staff, lgcode, resident_id)
    read.record([resident_id])
    return result


def create_hub_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """The hub on its own (`kiban linkage serve`): the routes above, /healthz, problem+json."""
    settings = settings or settings_module.load()
    svc = Services.build(settings, clock or SystemClock())
    svc.linkage.start()  # production mode refuses here without its keys and secret
    app = FastAPI(title="Kiban exchange hub (情報連携基盤)", version=__version__,
                  description="Signed inter-agency exchanges, a permission table and a verifiable log.")
    app.state.services = svc

    @app.exception_handler(KibanError)
    async def kiban_error(request: Request, exc: KibanError) -> Response:
        return problem(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [FieldError(".".join(str(p) for p in e.get("loc", ())[1:]) or "body",
                             "入力が不正です。", str(e.get("msg", ""))) for e in exc.errors()]
        return problem(ValidationFailed(errors or [FieldError("body", "入力が不正です。", "Invalid input.")]),
                       request.url.path)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(router)
    app.include_router(resident_router)
    return app
