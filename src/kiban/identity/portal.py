"""The resident portal (住民ポータル): residents log in with the My Number card through OpenID
Connect, as a relying party of Kiban's own provider by default, or of any provider of the same
protocol (KIBAN_PORTAL_OIDC_ISSUER, KIBAN_PORTAL_CLIENT_ID, KIBAN_PORTAL_CLIENT_SECRET).

The login flow's state, nonce and PKCE verifier wait in a short-lived cookie; after login the
claims the resident agreed to share sit in a session cookie. Both are HMAC-sealed with the
platform's secret key, HttpOnly and SameSite=Lax (the provider sends the person back by a
top-level GET).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.concurrency import run_in_threadpool

from kiban.identity import jose, oidc, rp
from kiban.web import i18n
from kiban.web.deps import services

router = APIRouter(include_in_schema=False)
FLOW_COOKIE = "kiban_portal_flow"
SESSION_COOKIE = "kiban_portal"
FLOW_TTL = 600
SESSION_TTL = 1800
# the last: which record signed in (this deployment's provider only), for /portal/accesses
CLAIMS = ("sub", "name", "address", "birthdate", "gender", oidc.RESIDENT_CLAIM)

i18n.register({
    "portal.title": {"ja": "住民ポータル", "en": "Resident portal"},
    "portal.failed": {"ja": "ログインできませんでした({reason})。",
                      "en": "You could not be logged in ({reason})."},
    "portal.welcome": {"ja": "{name} さん、ようこそ。", "en": "Welcome, {name}."},
    "portal.your_details": {"ja": "登録されている情報", "en": "Your registered details"},
    "portal.name": {"ja": "氏名", "en": "Name"},
    "portal.address": {"ja": "住所", "en": "Address"},
    "portal.birthdate": {"ja": "生年月日", "en": "Date of birth"},
    "portal.logout": {"ja": "ログアウト", "en": "Log out"},
    "portal.intro": {"ja": "マイナンバーカード(利用者証明用電子証明書)でログインします。",
                     "en": "Log in with your My Number card (its user authentication certificate)."},
    "portal.login": {"ja": "マイナンバーカードでログイン", "en": "Log in with the My Number card"},
    "portal.services": {"ja": "できること", "en": "What you can do here"},
    "portal.procedures.link": {"ja": "オンライン申請(証明書の請求・届出・申請)",
                               "en": "Online procedures (certificates, notifications, applications)"},
    "portal.life_events.link": {"ja": "引越し・出生の手続き一覧", "en": "Moving and birth: your checklist"},
})
# Portal sections owned by other packages, linked from the home page when they are installed.
SERVICES = (("/portal/procedures", "portal.procedures.link"), ("/portal/life-events", "portal.life_events.link"))


def _available(request: Request) -> set[str]:
    found: set[str] | None = getattr(request.app.state, "portal_paths", None)
    if found is None:
        found = {r.path for r in iter_route_contexts(request.app.routes) if r.path}
        request.app.state.portal_paths = found
    return found


def _key(request: Request) -> bytes:
    return hashlib.sha256(b"kiban-portal-cookie:" + services(request).settings.secret_key.encode()).digest()


def seal(request: Request, data: dict[str, Any], ttl: int) -> str:
    payload = jose.b64url(json.dumps({**data, "exp": int(time.time()) + ttl}, ensure_ascii=False).encode())
    return f"{payload}.{jose.b64url(hmac.new(_key(request), payload.encode(), hashlib.sha256).digest())}"


def unseal(request: Request, value: str | None) -> dict[str, Any] | None:
    if not value or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not hmac.compare_digest(mac, jose.b64url(hmac.new(_key(request), payload.encode(), hashlib.sha256).digest())):
        return None
    try:
        data: dict[str, Any] = json.loads(jose.b64url_decode(payload))
    except (ValueError, jose.JoseError):
        return None
    return data if data.get("exp", 0) >= time.time() else None


def relying_party(request: Request) -> rp.RelyingParty:
    """Per application: the provider's discovery document and keys are fetched once."""
    built: rp.RelyingParty | None = getattr(request.app.state, "portal_rp", None)
    if built is None:
        base = str(request.base_url).rstrip("/")
        built = rp.RelyingParty(
            issuer=os.environ.get("KIBAN_PORTAL_OIDC_ISSUER") or oidc.issuer_for(str(request.base_url)),
            client_id=os.environ.get("KIBAN_PORTAL_CLIENT_ID") or oidc.PORTAL_CLIENT,
            redirect_uri=f"{base}/portal/callback", clock=services(request).clock,
            client_secret=os.environ.get("KIBAN_PORTAL_CLIENT_SECRET") or None)
        request.app.state.portal_rp = built
    return built


def _cookie(response: Response, request: Request, name: str, value: str, ttl: int) -> None:
    response.set_cookie(name, value, max_age=ttl, httponly=True, samesite="lax", path="/portal",
                        secure=request.url.scheme == "https")


@router.get("/portal")
def portal(request: Request) -> Response:
    resident = unseal(request, request.cookies.get(SESSION_COOKIE))
    return i18n.render(request, "portal.html", None, resident=resident,
                       failed=request.query_params.get("failed"), services=SERVICES,
                       available=_available(request))


@router.get("/portal/login")
async def login(request: Request) -> Response:
    party = relying_party(request)
    flow = rp.Flow.new()
    try:
        target = await run_in_threadpool(party.authorization_url, flow)
    except rp.RelyingPartyError:
        return RedirectResponse("/portal?failed=provider", status_code=303)
    response = RedirectResponse(target, status_code=303)
    _cookie(response, request, FLOW_COOKIE, seal(request, flow.__dict__, FLOW_TTL), FLOW_TTL)
    return response


@router.get("/portal/callback")
async def callback(request: Request) -> Response:
    sealed = unseal(request, request.cookies.get(FLOW_COOKIE))
    params = request.query_params
    if sealed is None or not hmac.compare_digest(str(params.get("state", "")), str(sealed.get("state", ""))):
        return RedirectResponse("/portal?failed=state", status_code=303)
    if params.get("error") or not params.get("code"):
        return RedirectResponse(f"/portal?failed={params.get('error', 'no_code')}"[:80], status_code=303)
    flow = rp.Flow(sealed["state"], sealed["nonce"], sealed["verifier"])
    try:
        claims = await run_in_threadpool(relying_party(request).finish, flow, str(params["code"]))
    except rp.RelyingPartyError:
        return RedirectResponse("/portal?failed=token", status_code=303)
    response = RedirectResponse("/portal", status_code=303)
    response.delete_cookie(FLOW_COOKIE, path="/portal")
    _cookie(response, request, SESSION_COOKIE, seal(request, {k: claims.get(k) for k in CLAIMS}, SESSION_TTL),
            SESSION_TTL)
    return response


@router.post("/portal/logout")
def logout() -> Response:
    response = RedirectResponse("/portal", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/portal")
    return response
