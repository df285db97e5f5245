"""Who is asking: the resident of a portal session (its sealed cookie, kiban.identity.portal),
resolved to (lgcode, resident id) by the procedures service; and the CSRF token of the
resident's forms (an HMAC of the session's subject under the platform secret)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import Depends, Request

from kiban.core.errors import Forbidden, KibanError
from kiban.identity.portal import SESSION_COOKIE, unseal
from kiban.platform.auth import StaffMember
from kiban.procedures.service import Procedures, Resident
from kiban.web.deps import services


class NotSignedIn(KibanError):
    def __init__(self) -> None:
        super().__init__(ja="住民ポータルにログインしてください。", en="Log in to the resident portal first.",
                         status=401, code="unauthorized")


def procedures(request: Request) -> Procedures:
    return services(request).procedures


def portal_claims(request: Request) -> dict[str, object] | None:
    return unseal(request, request.cookies.get(SESSION_COOKIE))


def optional_resident(request: Request) -> Resident | None:
    claims = portal_claims(request)
    if claims is None:
        return None
    return procedures(request).resolve_portal_subject(dict(claims))


def resident(request: Request) -> Resident:
    found = optional_resident(request)
    if found is None:
        raise NotSignedIn()
    if request.method not in ("GET", "HEAD") and request.url.path.startswith("/portal/api/"):
        # JSON only: a cross-site HTML form cannot send it without a CORS preflight (none is allowed).
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise Forbidden("JSON で送信してください。", "Send application/json.")
    return found


def csrf_token(request: Request) -> str:
    claims = portal_claims(request) or {}
    key = hashlib.sha256(b"kiban-procedures-csrf:" + services(request).settings.secret_key.encode()).digest()
    return hmac.new(key, str(claims.get("sub", "")).encode(), hashlib.sha256).hexdigest()[:32]


def check_csrf(request: Request, sent: str) -> None:
    if not hmac.compare_digest(sent or "", csrf_token(request)):
        raise Forbidden("フォームの有効期限が切れました。もう一度お試しください。", "CSRF token missing or wrong.")


def after_approval(request: Request, actor: StaffMember, lgcode: str, view: dict[str, Any]) -> None:
    """The 転出届's follow-up (issue 7 part 4), when the life-events service is wired in."""
    proc = procedures(request).catalog.get(view["procedure_id"])
    life_events = getattr(services(request), "life_events", None)
    if proc is not None and proc.on_approve == "move_out" and life_events is not None:
        life_events.move_out_approved(actor, lgcode, view)


ResidentAuth = Annotated[Resident, Depends(resident)]
