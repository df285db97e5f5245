"""Kiban as an OpenID Connect provider: login with the My Number card's authentication
certificate (issue 5 part 5).

Authorization code flow (OpenID Connect Core 1.0 §3.1) with PKCE S256 required (RFC 7636),
nonce, and the scopes `openid name address birthdate gender` (those of the Digital Agency's
authentication app). The person proves possession of the authentication certificate's key by
signing a server challenge (RSA PKCS#1 v1.5, SHA-256, as the card's chip does); the certificate
is validated (path, validity, key usage, revocation by OCSP) and must be linked to an active
resident record (part 4). ID tokens and access tokens are ES256 JWTs.

The challenge is stateless (HMAC over the authorization request, expiring in 5 minutes) and
single use: answering it stores its id with the code it produced, so a replayed answer is
refused. Codes live 60 seconds and are single use; only their hash is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kiban.core.clock import Clock
from kiban.core.errors import KibanError, NotFound
from kiban.identity import jose, store
from kiban.identity.linking import CardLinks
from kiban.identity.model import Purpose
from kiban.identity.service import IdentityError
from kiban.platform.db import Database

SCOPES = ("openid", "name", "address", "birthdate", "gender")
PORTAL_CLIENT = "kiban-portal"
CHALLENGE_TTL = timedelta(minutes=5)
CODE_TTL = timedelta(seconds=60)
TOKEN_TTL = timedelta(minutes=5)
MAX_PARAM = 500
GENDER = {"1": "male", "2": "female"}


class ClientError(KibanError):
    """Unknown client or unregistered redirect_uri: shown to the user, never redirected
    (RFC 6749 §4.1.2.1)."""

    def __init__(self, en: str) -> None:
        super().__init__(ja="ログインを要求したサービスが登録されていないか、戻り先が違います。", en=en,
                         status=400, code="invalid-client")


class AuthError(Exception):
    """An error returned to the client at its redirect_uri."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class LoginRefused(Exception):
    """The card's answer is not accepted; `reason` is a stable code shown with a message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Client:
    client_id: str
    redirect_uris: tuple[str, ...]
    secret: str | None = None


@dataclass(frozen=True)
class AuthRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str
    nonce: str
    code_challenge: str


def signing_key(secret_key: str, env: Mapping[str, str] | None = None) -> ec.EllipticCurvePrivateKey:
    """KIBAN_OIDC_SIGNING_KEY (a PEM P-256 key file) when set; otherwise a key derived from the
    platform's secret key (HKDF), so every process of one deployment signs with the same key
    without a shared file. Production refuses default secrets, so this is never a known key."""
    env = os.environ if env is None else env
    path = env.get("KIBAN_OIDC_SIGNING_KEY")
    if path:
        with open(path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("KIBAN_OIDC_SIGNING_KEY must be a P-256 private key")
        return key
    material = HKDF(hashes.SHA256(), 48, b"kiban-oidc", b"id-token-signing-key").derive(secret_key.encode())
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    return ec.derive_private_key(int.from_bytes(material, "big") % (order - 1) + 1, ec.SECP256R1())


def configured_clients(env: Mapping[str, str] | None = None) -> list[Client]:
    """KIBAN_OIDC_CLIENTS: a JSON list of {"client_id", "redirect_uris", "client_secret"?}."""
    env = os.environ if env is None else env
    raw = env.get("KIBAN_OIDC_CLIENTS", "").strip()
    if not raw:
        return []
    return [Client(str(c["client_id"]), tuple(str(u) for u in c["redirect_uris"]), c.get("client_secret"))
            for c in json.loads(raw)]


def issuer_for(base_url: str, env: Mapping[str, str] | None = None) -> str:
    """KIBAN_OIDC_ISSUER, else the URL the request came to (a demo on any host and port)."""
    env = os.environ if env is None else env
    return env.get("KIBAN_OIDC_ISSUER") or base_url.rstrip("/")


def s256(verifier: str) -> str:
    return jose.b64url(hashlib.sha256(verifier.encode()).digest())


class Provider:
    def __init__(self, db: Database, clock: Clock, links: CardLinks, secret_key: str,
                 clients: list[Client] | None = None, key: ec.EllipticCurvePrivateKey | None = None,
                 display_name: Callable[[str], str] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.links = links
        self._mac_key = hashlib.sha256(b"kiban-oidc-challenge:" + secret_key.encode()).digest()
        self._secret_key = secret_key  # for the first-party portal's resident reference
        self.key = key or signing_key(secret_key)
        self.jwk = jose.jwk(self.key.public_key())
        self.clients = {c.client_id: c for c in (clients if clients is not None else configured_clients())}

    # --- discovery ---------------------------------------------------------------------------

    def discovery(self, issuer: str) -> dict[str, Any]:
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oidc/authorize",
            "token_endpoint": f"{issuer}/oidc/token",
            "userinfo_endpoint": f"{issuer}/oidc/userinfo",
            "jwks_uri": f"{issuer}/oidc/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": list(SCOPES),
            "claims_supported": ["sub", "name", "address", "birthdate", "gender", "auth_time", "nonce"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    # --- authorization -------------------------------------------------------------------------

    def client(self, issuer: str, client_id: str) -> Client:
        if client_id == PORTAL_CLIENT:  # the resident portal of this deployment
            return Client(PORTAL_CLIENT, (f"{issuer}/portal/callback",))
        found = self.clients.get(client_id)
        if found is None:
            raise ClientError("unknown client_id")
        return found

    def authorization_request(self, issuer: str, params: Mapping[str, str]) -> AuthRequest:
        """Check the request. ClientError (show it) for the client and redirect_uri; AuthError
        (send it back to the client) for the rest."""
        if any(len(v) > MAX_PARAM for v in params.values()):
            raise ClientError("parameter too long")
        client = self.client(issuer, params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:  # exact match (RFC 6749 §3.1.2.3, OIDC Core)
            raise ClientError("redirect_uri is not registered for this client")
        if params.get("response_type") != "code":
            raise AuthError("unsupported_response_type", "only the authorization code flow")
        scopes = params.get("scope", "").split()
        if "openid" not in scopes:
            raise AuthError("invalid_scope", "the openid scope is required")
        if set(scopes) - set(SCOPES):
            raise AuthError("invalid_scope", "unsupported scope")
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
            raise AuthError("invalid_request", "PKCE with S256 is required")
        if not params.get("nonce"):
            raise AuthError("invalid_request", "nonce is required")
        return AuthRequest(client.client_id, redirect_uri, " ".join(s for s in SCOPES if s in scopes),
                           params.get("state", ""), params["nonce"], challenge)

    @staticmethod
    def error_redirect(request: AuthRequest | Mapping[str, str], error: str, description: str) -> str:
        if isinstance(request, AuthRequest):
            uri, state = request.redirect_uri, request.state
        else:
            uri, state = request.get("redirect_uri", ""), request.get("state", "")
        query = {"error": error, "error_description": description, **({"state": state} if state else {})}
        return f"{uri}{'&' if '?' in uri else '?'}{urlencode(query)}"

    def challenge(self, request: AuthRequest) -> str:
        """The text the card signs: the request, an id and an expiry, under our MAC."""
        body = {"c": request.client_id, "r": request.redirect_uri, "sc": request.scope, "s": request.state,
                "n": request.nonce, "p": request.code_challenge, "i": secrets.token_urlsafe(18),
                "e": int((self.clock.now() + CHALLENGE_TTL).timestamp())}
        payload = jose.b64url(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{jose.b64url(hmac.new(self._mac_key, payload.encode(), hashlib.sha256).digest())}"

    def _open_challenge(self, challenge: str) -> dict[str, Any]:
        try:
            payload, mac = challenge.split(".")
            expected = jose.b64url(hmac.new(self._mac_key, payload.encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(mac, expected):
                raise LoginRefused("bad_challenge")
            body: dict[str, Any] = json.loads(jose.b64url_decode(payload))
        except (ValueError, jose.JoseError) as exc:
            raise LoginRefused("bad_challenge") from exc
        if body["e"] < self.clock.now().timestamp():
            raise LoginRefused("challenge_expired")
        return body

    def request_of(self, challenge: str) -> AuthRequest:
        body = self._open_challenge(challenge)
        return AuthRequest(body["c"], body["r"], body["sc"], body["s"], body["n"], body["p"])

    def answer(self, challenge: str, certificate: bytes, signature_b64: str) -> str:
        """Check the card's answer to a challenge; the redirect (with the code) to the client.
        LoginRefused with the reason otherwise."""
        body = self._open_challenge(challenge)
        if len(certificate) > 64_000 or len(signature_b64) > 2_000:
            raise LoginRefused("oversized")
        try:
            verifier = self.links.identity()
        except IdentityError as exc:  # no trust anchor configured: refuse, do not fail
            raise LoginRefused("not_configured") from exc
        result = verifier.validate_certificate(certificate, Purpose.AUTHENTICATION)
        if not result.valid or result.signer is None:
            raise LoginRefused(result.reason.value)
        try:
            cert = (x509.load_pem_x509_certificate(certificate) if b"-----BEGIN" in certificate
                    else x509.load_der_x509_certificate(certificate))
            key = cert.public_key()
            signature = base64.b64decode(signature_b64, validate=True)
            if not isinstance(key, rsa.RSAPublicKey):
                raise LoginRefused("weak_algorithm")
            key.verify(signature, challenge.encode(), padding.PKCS1v15(), hashes.SHA256())
        except LoginRefused:
            raise
        except Exception as exc:
            raise LoginRefused("bad_signature") from exc
        found = self.links.linked_resident(result.signer.serial)
        if found is None or found[1]["kind"] != Purpose.AUTHENTICATION.value:
            raise LoginRefused("not_linked")
        lgcode, link = found
        if link["revoked_at"] is not None:
            raise LoginRefused("revoked")
        try:
            self.links.resident_record(lgcode, link["juminhyo_code"])
        except NotFound as exc:
            raise LoginRefused("no_record") from exc
        code = f"{lgcode}.{secrets.token_urlsafe(32)}"
        now = self.clock.now()
        with self.db.tenant(lgcode) as conn:
            fresh = store.add_code(conn, {
                "lgcode": lgcode, "challenge_id": body["i"], "code_hash": hashlib.sha256(code.encode()).hexdigest(),
                "client_id": body["c"], "redirect_uri": body["r"], "code_challenge": body["p"], "nonce": body["n"],
                "scope": body["sc"], "serial": link["serial"], "auth_time": now,
                "expires_at": now + CODE_TTL, "used_at": None})
        if not fresh:
            raise LoginRefused("challenge_used")
        query = {"code": code, **({"state": body["s"]} if body["s"] else {})}
        return f"{body['r']}{'&' if '?' in body['r'] else '?'}{urlencode(query)}"

    # --- tokens --------------------------------------------------------------------------------

    def token(self, issuer: str, form: Mapping[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != "authorization_code":
            raise TokenError("unsupported_grant_type", "only authorization_code")
        code, verifier = form.get("code", ""), form.get("code_verifier", "")
        if not code or not verifier:
            raise TokenError("invalid_request", "code and code_verifier are required")
        try:
            client = self.client(issuer, form.get("client_id", ""))
        except ClientError as exc:
            raise TokenError("invalid_client", "unknown client", 401) from exc
        if client.secret is not None and not hmac.compare_digest(form.get("client_secret", ""), client.secret):
            raise TokenError("invalid_client", "wrong client secret", 401)
        lgcode = code.split(".", 1)[0]
        if not (len(lgcode) == 6 and lgcode.isdigit()):
            raise TokenError("invalid_grant", "unknown code")
        now = self.clock.now()
        with self.db.tenant(lgcode) as conn:
            row, first = store.take_code(conn, lgcode, hashlib.sha256(code.encode()).hexdigest(), now)
        if row is None:
            raise TokenError("invalid_grant", "unknown code")
        if not first:
            raise TokenError("invalid_grant", "the code was already used")
        if _aware(row["expires_at"]) < now:
            raise TokenError("invalid_grant", "the code has expired")
        if row["client_id"] != client.client_id or row["redirect_uri"] != form.get("redirect_uri"):
            raise TokenError("invalid_grant", "client or redirect_uri differ from the authorization request")
        if not hmac.compare_digest(s256(verifier), row["code_challenge"]):
            raise TokenError("invalid_grant", "PKCE verification failed")
        serial = row["serial"]  # the authentication certificate's
        claims = self._claims(lgcode, serial, row["scope"],
                              first_party=client.client_id == PORTAL_CLIENT)
        issued = int(now.timestamp())
        id_token = jose.sign({"iss": issuer, "aud": client.client_id, "iat": issued,
                              "exp": issued + int(TOKEN_TTL.total_seconds()),
                              "auth_time": int(_aware(row["auth_time"]).timestamp()), "nonce": row["nonce"],
                              **claims}, self.key, self.jwk["kid"])
        access = jose.sign({"iss": issuer, "aud": f"{issuer}/oidc/userinfo", "sub": claims["sub"],
                            "client_id": client.client_id, "scope": row["scope"], "iat": issued,
                            "exp": issued + int(TOKEN_TTL.total_seconds()), "x5s": f"{lgcode}:{serial}"},
                           self.key, self.jwk["kid"], typ="at+jwt")
        return {"access_token": access, "token_type": "Bearer", "expires_in": int(TOKEN_TTL.total_seconds()),
                "id_token": id_token, "scope": row["scope"]}

    def _claims(self, lgcode: str, serial: str, scope: str, first_party: bool = False
                ) -> dict[str, Any]:
        found = self.links.linked_resident(serial)
        if found is None or found[1]["revoked_at"] is not None:
            raise TokenError("invalid_grant", "the card is no longer valid")
        link = found[1]
        try:
            record = self.links.resident_record(lgcode, link["juminhyo_code"])
        except NotFound as exc:
            raise TokenError("invalid_grant", "no active resident record") from exc
        facts = self.links.record_facts(lgcode, record)
        sub = pairwise_subject(self._secret_key, lgcode, str(record["id"]))
        scopes = set(scope.split())
        claims: dict[str, Any] = {"sub": sub}
        if first_party:  # this deployment's own portal only: which record (issue 9)
            claims[RESIDENT_CLAIM] = resident_ref(self._secret_key, lgcode, str(record["id"]))
        if "name" in scopes:
            claims["name"] = facts.name
        if "address" in scopes:
            claims["address"] = {"formatted": facts.address, "country": "JP"}
        if "birthdate" in scopes:
            claims["birthdate"] = facts.birth_date
        if "gender" in scopes:
            claims["gender"] = GENDER.get(facts.sex, "other")
        return claims

    def userinfo(self, issuer: str, access_token: str) -> dict[str, Any]:
        try:
            claims = jose.verify(access_token, [self.jwk], typ="at+jwt")
        except jose.JoseError as exc:
            raise TokenError("invalid_token", "bad access token", 401) from exc
        if claims.get("iss") != issuer or claims.get("exp", 0) < self.clock.now().timestamp():
            raise TokenError("invalid_token", "expired or foreign access token", 401)
        lgcode, serial = str(claims.get("x5s", ":")).split(":", 1)
        try:
            return self._claims(lgcode, serial, str(claims.get("scope", "")))
        except TokenError as exc:
            raise TokenError("invalid_token", exc.description, 401) from exc


RESIDENT_CLAIM = "kiban_resident"


def _ref_mac(secret_key: str, body: str) -> str:
    key = hashlib.sha256(b"kiban-portal-resident:" + secret_key.encode()).digest()
    return jose.b64url(hmac.new(key, body.encode(), hashlib.sha256).digest())


def pairwise_subject(secret_key: str, lgcode: str, resident_id: str) -> str:
    """The `sub` this provider gives a resident: stable for the deployment, opaque to clients
    (the portal's procedures recompute it to find the resident a session names)."""
    key = hashlib.sha256(b"kiban-oidc-subject:" + secret_key.encode()).digest()
    return hmac.new(key, f"{lgcode}:{resident_id}".encode(), hashlib.sha256).hexdigest()[:40]


def resident_ref(secret_key: str, lgcode: str, resident_id: str) -> str:
    """The claim by which the provider tells this deployment's own resident portal (and no
    other client) which resident record signed in: `lgcode.resident_id.mac`, MAC'd with the
    platform's secret, so no other provider can name a record (issue 9: the resident's own
    access records)."""
    body = f"{lgcode}.{resident_id}"
    return f"{body}.{_ref_mac(secret_key, body)}"


def open_resident_ref(secret_key: str, ref: object) -> tuple[str, str] | None:
    """(lgcode, resident_id) of a reference this deployment made; None otherwise."""
    if not isinstance(ref, str) or ref.count(".") != 2:
        return None
    lgcode, resident_id, mac = ref.split(".")
    if not hmac.compare_digest(mac, _ref_mac(secret_key, f"{lgcode}.{resident_id}")):
        return None
    return lgcode, resident_id


def _aware(at: datetime) -> datetime:
    """SQLite gives stored times back naive (in UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at
