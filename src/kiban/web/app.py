"""The application factory."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiban import __version__
from kiban.assist import api as assist_api
from kiban.assist import pages as assist_pages
from kiban.core.clock import Clock, SystemClock
from kiban.core.errors import FieldError, KibanError, ValidationFailed
from kiban.identity import oidc_api, pki_api, portal, verify_api, verify_pages
from kiban.linkage import api as linkage_api
from kiban.linkage import pages as linkage_pages
from kiban.opendata import api as opendata_api
from kiban.opendata import console as opendata_console
from kiban.opendata import pages as opendata_pages
from kiban.platform import settings as settings_module
from kiban.platform.db import Database, bypasses_row_security
from kiban.platform.settings import Settings, UnsafeConfiguration
from kiban.privacy import api as privacy_api
from kiban.privacy import pages as privacy_pages
from kiban.privacy import portal_pages as privacy_portal_pages
from kiban.procedures import api as procedures_api
from kiban.procedures import life_events_api, life_events_pages
from kiban.procedures import pages as procedures_pages
from kiban.registry import api as registry_api
from kiban.registry import pages as registry_pages
from kiban.registry import reports_api as registry_reports_api
from kiban.standard import api as standard_api
from kiban.standard import pages as standard_pages
from kiban.talent import api as talent_api
from kiban.talent import pages as talent_pages
from kiban.tax import api as tax_api
from kiban.tax import assess_api as tax_assess_api
from kiban.tax import assess_pages as tax_assess_pages
from kiban.tax import pages as tax_pages
from kiban.web import admin, pages
from kiban.web.context import Services
from kiban.web.deps import problem
from kiban.web.templating import templates

log = logging.getLogger("kiban")
access_log = logging.getLogger("kiban.access")
STATIC = Path(__file__).parent / "static"


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"),
]
_API_HEADERS = [*_SECURITY_HEADERS, (b"cache-control", b"no-store")]


class SecurityHeaders:
    """Security headers on every response (unless the response set its own), our own access
    log, and unhandled exceptions turned into a problem+json 500. A plain ASGI middleware:
    Starlette's BaseHTTPMiddleware (`@app.middleware("http")`) costs a task and a stream per
    request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        extra = _API_HEADERS if path.startswith("/api/") else _SECURITY_HEADERS
        status = [0]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in extra if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            # Handled here, not re-raised: a traceback in the server log would quote SQL
            # parameters and with them personal data. Log the type and path only.
            log.error("unhandled %s on %s %s", type(exc).__name__, scope["method"], path)
            if status[0]:  # the response had begun: all that can be done is to stop
                return
            await problem(KibanError(ja="内部エラーが発生しました。", en="Internal Server Error",
                                     status=500, code="internal"), path)(
                scope, receive, send_with_headers)
        finally:
            # Our own access log: the path only, never the query string, which can hold a
            # searched name or date of birth (uvicorn's access log is switched off).
            access_log.info("%s %s %s %.1fms", scope["method"], path, status[0] or 500,
                            (time.perf_counter() - started) * 1000)


def _field_name(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    name = ""
    for p in parts:
        name += f"[{p}]" if p.isdigit() else (f".{p}" if name else p)
    return name or "body"


def create_app(settings: Settings | None = None, clock: Clock | None = None,
               db: Database | None = None) -> FastAPI:
    settings = settings or settings_module.load()
    svc = Services.build(settings, clock or SystemClock(), db)
    svc.linkage.check_configuration()  # production: no start without the hub's secret and keys
    if settings.mode == "production" and svc.db.is_postgres:
        with svc.db.engine.connect() as conn:
            if bypasses_row_security(conn):
                raise UnsafeConfiguration(
                    "KIBAN_DATABASE_URL connects as a role that bypasses row-level security "
                    "(superuser, BYPASSRLS or table owner): use the application role")
    app = FastAPI(
        title="Kiban API", version=__version__,
        description="Kiban (基盤): the shared, standards-conformant municipal platform. "
                    "Errors are application/problem+json (RFC 9457) with Japanese and English "
                    "messages. The registry's change POSTs accept an Idempotency-Key header.",
    )
    app.state.services = svc

    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
            "accept", "")

    @app.exception_handler(KibanError)
    async def kiban_error(request: Request, exc: KibanError) -> Response:
        if wants_html(request):
            if exc.status == 401:
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            return templates.TemplateResponse(request, "error.html", {"error": exc},
                                              status_code=exc.status)
        return problem(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for e in exc.errors():
            name = _field_name(tuple(e.get("loc", ())))
            errors.append(FieldError(name, f"{name} の入力が不正です({e.get('type', '')})。",
                                     f"{name}: {e.get('msg', '')}"))
        return problem(ValidationFailed(errors or [FieldError("body", "入力が不正です。",
                                                              "Invalid input.")]),
                       request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        ja = {404: "ページが見つかりません。", 405: "この操作はできません。"}.get(
            exc.status_code, "エラーが発生しました。")
        err = KibanError(ja=ja, en=str(exc.detail), status=exc.status_code, code="http")
        if wants_html(request):
            return templates.TemplateResponse(request, "error.html", {"error": err},
                                              status_code=exc.status_code)
        return problem(err, request.url.path)

    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def root() -> Response:
        return RedirectResponse("/console", status_code=303)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(admin.router)
    app.include_router(registry_api.router)
    app.include_router(pages.router)
    app.include_router(registry_reports_api.router)
    app.include_router(registry_pages.router)
    app.include_router(talent_api.router)
    app.include_router(standard_api.router)
    app.include_router(standard_pages.router)
    app.include_router(talent_pages.router)
    app.include_router(verify_api.router)
    app.include_router(verify_pages.router)
    app.include_router(pki_api.router)
    app.include_router(oidc_api.router)
    app.include_router(portal.router)
    app.include_router(opendata_api.router)
    app.include_router(opendata_pages.router)
    app.include_router(opendata_console.router)
    app.include_router(tax_api.router)
    app.include_router(tax_pages.router)
    app.include_router(tax_assess_api.router)
    app.include_router(tax_assess_pages.router)
    app.include_router(privacy_api.router)
    app.include_router(privacy_pages.router)
    app.include_router(privacy_portal_pages.router)
    app.include_router(linkage_api.router)
    app.include_router(linkage_api.resident_router)
    app.include_router(assist_api.router)
    app.include_router(assist_pages.router)
    app.include_router(linkage_pages.router)
    app.include_router(procedures_api.router)
    app.include_router(procedures_api.resident_router)
    app.include_router(procedures_pages.router)
    app.include_router(life_events_api.router)
    app.include_router(life_events_pages.router)
    return app
