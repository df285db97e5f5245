"""Request dependencies: the signed-in staff member, CSRF, idempotency, problem responses."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from starlette.datastructures import FormData

from kiban.core.errors import Conflict, Forbidden, KibanError
from kiban.platform.auth import Session, constant_time_equal
from kiban.platform.tables import idempotency_keys
from kiban.web.context import Services

SESSION_COOKIE = "kiban_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Unauthenticated(KibanError):
    def __init__(self) -> None:
        super().__init__(ja="ログインしてください。", en="Sign in first.", status=401,
                         code="unauthorized")


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def optional_session(request: Request) -> Session | None:
    if hasattr(request.state, "session"):
        cached: Session | None = request.state.session
        return cached
    svc = services(request)
    token = bearer_token(request) or request.cookies.get(SESSION_COOKIE)
    session = svc.accounts.session(token, svc.clock.now()) if token else None
    request.state.session = session
    request.state.via_cookie = session is not None and bearer_token(request) is None
    return session


def check_csrf(request: Request, session: Session, form_token: str | None = None) -> None:
    """Cookie-authenticated unsafe requests must echo the session's CSRF token (header for
    scripts, hidden field for forms). Bearer-token clients send no cookie, so need none."""
    if request.method in SAFE_METHODS or not getattr(request.state, "via_cookie", False):
        return
    sent = form_token or request.headers.get("x-csrf-token") or ""
    if not constant_time_equal(sent, session.csrf_token):
        raise Forbidden("フォームの有効期限が切れました。もう一度お試しください。",
                        "CSRF token missing or wrong.")


def api_session(request: Request) -> Session:
    session = optional_session(request)
    if session is None:
        raise Unauthenticated()
    check_csrf(request, session)
    return session


async def read_form(request: Request) -> FormData:
    """Parsed in the event loop, so the handler itself can be a plain (threadpool) function
    that may block on the database."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(read_form)]


def problem(error: KibanError, instance: str = "") -> JSONResponse:
    """RFC 9457 problem details, with the message in Japanese and English."""
    body: dict[str, Any] = {
        "type": f"https://kiban.example/problems/{error.code}",
        "title": error.en, "status": error.status, "detail": error.ja,
        "title_ja": error.ja, "title_en": error.en, "instance": instance,
    }
    if error.field:
        body["field"] = error.field
    if error.errors:
        body["errors"] = [{"field": e.field, "ja": e.ja, "en": e.en} for e in error.errors]
    return JSONResponse(body, status_code=error.status, media_type="application/problem+json")


def idempotent(request: Request, lgcode: str, body: Any,
               run: Callable[[], tuple[int, Any]]) -> Response:
    """Runs `run` once per Idempotency-Key: a repeat with the same body gets the first answer;
    the same key with another body is refused.

    The key is claimed first, in the transaction `run`'s change then joins (one unit of
    work), and its answer stored there too: the claim, the change and the answer commit
    together or not at all. A second request with the key waits at its claim until the
    first commits (then gets its answer) or rolls back (then runs itself)."""
    key = request.headers.get("idempotency-key")
    if not key:
        status, payload = run()
        return JSONResponse(payload, status_code=status)
    if len(key) > 200:
        raise Conflict("Idempotency-Key が長すぎます。", "Idempotency-Key is too long.",
                       field="Idempotency-Key")
    svc = services(request)
    # A stored answer goes back only to the staff member who made the request, and only
    # within their own municipality: the checks inside `run` never happen on a replay.
    session = optional_session(request)
    if session is None:
        raise Unauthenticated()
    if session.staff.lgcode != lgcode:
        raise Forbidden("この地方公共団体のデータは扱えません。",
                        "You cannot act for this municipality.")
    request_hash = hashlib.sha256((session.staff.id + "\n" + request.url.path + json.dumps(
        body, sort_keys=True, default=str)).encode()).hexdigest()
    key_row = (idempotency_keys.c.lgcode == lgcode) & (idempotency_keys.c.key == key)
    with svc.db.unit_of_work(lgcode) as conn:
        upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        claimed = conn.execute(upsert(idempotency_keys).values(
            lgcode=lgcode, key=key, request_hash=request_hash, status=0, response="",
            created_at=svc.clock.now()).on_conflict_do_nothing().returning(
                idempotency_keys.c.key)).first()
        if claimed is None:
            row = conn.execute(select(idempotency_keys.c.request_hash, idempotency_keys.c.status,
                                      idempotency_keys.c.response).where(key_row)).first()
            return _replay(row, request_hash)
        status, payload = run()  # a failure rolls the claim back with the change
        conn.execute(update(idempotency_keys).where(key_row).values(
            status=status, response=json.dumps(payload, default=str)))
    return JSONResponse(payload, status_code=status)


def _replay(row: Any, request_hash: str) -> Response:
    if row is None or row.request_hash != request_hash:
        raise Conflict("同じ Idempotency-Key で別の内容が送られました。",
                       "This Idempotency-Key was used with a different request.",
                       field="Idempotency-Key")
    if row.status == 0:
        # A claim stored without an answer (left by an earlier version, which claimed in a
        # transaction of its own): whether its change committed is for the change history
        # to tell; re-running it blindly could record a move twice.
        raise Conflict("同じ Idempotency-Key の処理が実行中か、中断されました。異動履歴を確認してください。",
                       "A request with this Idempotency-Key is still being processed or was "
                       "interrupted; check the change history before retrying.",
                       field="Idempotency-Key")
    return JSONResponse(json.loads(row.response), status_code=row.status,
                        headers={"Idempotent-Replayed": "true"})
