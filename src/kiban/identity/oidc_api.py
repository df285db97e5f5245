"""Kiban's OpenID Connect provider over HTTP: discovery, JWKS, the authorization endpoint (a
page where the person signs the challenge with the card), the token and userinfo endpoints.

Token-endpoint errors are RFC 6749 §5.2 JSON (`{"error": ...}`), not problem+json: that is
what OAuth clients read. The issuer is KIBAN_OIDC_ISSUER, else the URL the request came to.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from kiban.identity import linking, oidc
from kiban.web import i18n
from kiban.web.deps import services
from kiban.web.pages import render

router = APIRouter(include_in_schema=False)

SCOPE_LABELS = {"name": "氏名", "address": "住所", "birthdate": "生年月日", "gender": "性別"}
REASONS = {
    "bad_signature": "チャレンジへの署名が正しくありません。",
    "revoked": "このカードの利用者証明用電子証明書は失効しています。",
    "expired": "このカードの利用者証明用電子証明書は有効期限が切れています。",
    "not_yet_valid": "この電子証明書はまだ有効ではありません。",
    "not_linked": "このカードは住民記録と紐付けられていません。",
    "no_record": "住民記録が見つかりません(転出・死亡など)。",
    "bad_challenge": "ログイン要求が不正です。最初からやり直してください。",
    "challenge_expired": "ログイン要求の有効期限が切れました。最初からやり直してください。",
    "challenge_used": "このログイン要求は既に使われています。最初からやり直してください。",
    "untrusted": "信頼できる認証局の電子証明書ではありません。",
    "wrong_key_usage": "利用者証明用電子証明書ではありません。",
    "not_configured": "カードによるログインは現在利用できません(信頼する認証局が設定されていません)。",
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SCOPE_LABELS_EN = {"name": "Name", "address": "Address", "birthdate": "Date of birth", "gender": "Sex"}
REASONS_EN = {
    "bad_signature": "The signature over the challenge is not correct.",
    "revoked": "This card's user authentication certificate has been revoked.",
    "expired": "This card's user authentication certificate has expired.",
    "not_yet_valid": "This certificate is not valid yet.",
    "not_linked": "This card is not linked to a resident record.",
    "no_record": "No resident record was found (moved out, deceased, ...).",
    "bad_challenge": "The login request is not valid. Please start again.",
    "challenge_expired": "The login request has expired. Please start again.",
    "challenge_used": "This login request has already been used. Please start again.",
    "untrusted": "The certificate is not from a trusted certification authority.",
    "wrong_key_usage": "This is not a user authentication certificate.",
    "not_configured": "Card login is not available now (no trusted certification authority is configured).",
}
i18n.register({
    "card.title": {"ja": "マイナンバーカードでログイン", "en": "Log in with the My Number card"},
    "card.service": {"ja": "ログインを求めているサービス:", "en": "The service asking you to log in:"},
    "card.shares": {"ja": "ログインすると、次の情報がこのサービスに提供されます:",
                    "en": "If you log in, the service receives:"},
    "card.explain": {"ja": "カードの利用者証明用電子証明書の鍵で、次の要求に署名します。",
                     "en": "The card signs this login request with its user authentication key."},
    "card.file": {"ja": "仮想カード(デモ・テスト用のファイル)", "en": "Virtual card file (demo and test only)"},
    "card.hint": {"ja": "実際のカードでは、カードリーダーまたはスマートフォンのアプリが署名します。",
                  "en": "With a real card, a card reader or the smartphone app signs."},
    "card.sign": {"ja": "カードで署名してログイン", "en": "Sign with the card and log in"},
    "card.choose": {"ja": "カードのファイルを選んでください。", "en": "Choose the card file."},
    "card.signing": {"ja": "署名しています…", "en": "Signing…"},
    "card.unreadable": {"ja": "カードを読めませんでした。", "en": "The card file could not be used."},
    "card.refused": {"ja": "ログインできません({reason})。", "en": "You cannot log in ({reason})."},
})


def issuer(request: Request) -> str:
    return oidc.issuer_for(str(request.base_url))


def provider(request: Request) -> oidc.Provider:
    """Built once per application (the key derivation and client list are read once)."""
    built: oidc.Provider | None = getattr(request.app.state, "oidc_provider", None)
    if built is None:
        svc = services(request)
        links = linking.for_platform(svc.db, svc.clock, svc.registry, svc.municipalities, svc.settings.mode)
        built = oidc.Provider(svc.db, svc.clock, links, svc.settings.secret_key)
        request.app.state.oidc_provider = built
    return built


@router.get("/.well-known/openid-configuration")
def discovery(request: Request) -> dict[str, Any]:
    return provider(request).discovery(issuer(request))


@router.get("/oidc/jwks")
def jwks(request: Request) -> dict[str, Any]:
    return provider(request).jwks()


def _login_page(request: Request, auth: oidc.AuthRequest, reason: str | None = None, status: int = 200) -> Response:
    op = provider(request)
    lang = i18n.negotiate(request)
    labels, reasons = (SCOPE_LABELS_EN, REASONS_EN) if lang == "en" else (SCOPE_LABELS, REASONS)
    return i18n.render(request, "card_login.html", None, status=status, challenge=op.challenge(auth),
                       client_id=auth.client_id, scopes=[labels[s] for s in auth.scope.split() if s in labels],
                       reason=reason,
                       message=reasons.get(reason or "") or i18n.translate("card.refused", lang, reason=reason))


@router.get("/oidc/authorize")
def authorize(request: Request) -> Response:
    params = dict(request.query_params)
    try:
        auth = provider(request).authorization_request(issuer(request), params)
    except oidc.AuthError as exc:
        return RedirectResponse(oidc.Provider.error_redirect(params, exc.error, exc.description), status_code=303)
    # ClientError is a KibanError: the app's handler shows it, never redirecting.
    return _login_page(request, auth)


@router.post("/oidc/authorize/answer")
async def answer(request: Request) -> Response:
    form = await request.form()
    challenge = str(form.get("challenge", ""))
    certificate = str(form.get("certificate", "")).encode()
    signature = str(form.get("signature", ""))
    op = provider(request)
    try:
        location = await run_in_threadpool(op.answer, challenge, certificate, signature)
    except oidc.LoginRefused as refused:
        try:
            auth = op.request_of(challenge)
        except oidc.LoginRefused:
            return render(request, "error.html", None, status=400, error=oidc.ClientError(refused.reason))
        return _login_page(request, auth, refused.reason, status=400)
    return RedirectResponse(location, status_code=303)


@router.post("/oidc/token")
async def token(request: Request) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        body = await run_in_threadpool(provider(request).token, issuer(request), form)
    except oidc.TokenError as exc:
        return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status,
                            headers=NO_STORE)
    return JSONResponse(body, headers=NO_STORE)


@router.get("/oidc/userinfo")
def userinfo(request: Request) -> Response:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return JSONResponse({"error": "invalid_token"}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    try:
        return JSONResponse(provider(request).userinfo(issuer(request), header[7:].strip()), headers=NO_STORE)
    except oidc.TokenError as exc:
        return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status,
                            headers={"WWW-Authenticate": f'Bearer error="{exc.error}"'})
