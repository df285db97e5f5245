"""An OpenID Connect relying party (the resident portal's login): discovery, the authorization
request with PKCE S256 and nonce, the code exchange, and ID token validation (signature by the
provider's JWKS, issuer, audience, expiry, nonce). It speaks only the protocol, over HTTP, so
it works with Kiban's provider or any other of the same protocol (the Digital Agency's
authentication app among them)."""

from __future__ import annotations

import hashlib
import json
import secrets
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiban.core.clock import Clock
from kiban.identity import jose

MAX_RESPONSE = 1_000_000
CLOCK_SKEW = 60  # seconds


class RelyingPartyError(Exception):
    """The provider's answer cannot be used (network, protocol, or a token that does not verify)."""


def _get(url: str) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise RelyingPartyError("provider URLs must be http(s)")
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - scheme checked above
        data: dict[str, Any] = json.loads(response.read(MAX_RESPONSE))
        return data


def _post(url: str, form: dict[str, str]) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise RelyingPartyError("provider URLs must be http(s)")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=urllib.parse.urlencode(form).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            data: dict[str, Any] = json.loads(response.read(MAX_RESPONSE))
            return data
    except urllib.error.HTTPError as exc:  # the token endpoint's error JSON
        try:
            body = json.loads(exc.read(MAX_RESPONSE))
        except ValueError:
            body = {}
        raise RelyingPartyError(str(body.get("error", f"HTTP {exc.code}"))) from exc


@dataclass
class Flow:
    """What the RP keeps between sending the person away and their return (in a cookie)."""

    state: str
    nonce: str
    verifier: str

    @classmethod
    def new(cls) -> Flow:
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48))


@dataclass
class RelyingParty:
    issuer: str
    client_id: str
    redirect_uri: str
    clock: Clock
    client_secret: str | None = None
    scope: str = "openid name address birthdate gender"
    get: Callable[[str], dict[str, Any]] = _get
    post: Callable[[str, dict[str, str]], dict[str, Any]] = _post
    _metadata: dict[str, Any] | None = field(default=None, repr=False)
    _keys: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            try:
                found = self.get(f"{self.issuer}/.well-known/openid-configuration")
            except RelyingPartyError:
                raise
            except Exception as exc:
                raise RelyingPartyError("cannot read the provider's discovery document") from exc
            if found.get("issuer") != self.issuer:  # OIDC Discovery §4.3
                raise RelyingPartyError("the discovery document names another issuer")
            self._metadata = found
        return self._metadata

    def authorization_url(self, flow: Flow) -> str:
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                 "scope": self.scope, "state": flow.state, "nonce": flow.nonce,
                 "code_challenge": jose.b64url(hashlib.sha256(flow.verifier.encode()).digest()),
                 "code_challenge_method": "S256"}
        return f"{self.metadata()['authorization_endpoint']}?{urllib.parse.urlencode(query)}"

    def _jwks(self, refresh: bool = False) -> list[dict[str, Any]]:
        if refresh or not self._keys:
            try:
                self._keys = list(self.get(self.metadata()["jwks_uri"]).get("keys", []))
            except RelyingPartyError:
                raise
            except Exception as exc:
                raise RelyingPartyError("cannot read the provider's keys") from exc
        return self._keys

    def finish(self, flow: Flow, code: str) -> dict[str, Any]:
        """Exchange the code and return the validated ID token's claims."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "client_id": self.client_id, "code_verifier": flow.verifier}
        if self.client_secret:
            form["client_secret"] = self.client_secret
        try:
            tokens = self.post(self.metadata()["token_endpoint"], form)
        except RelyingPartyError:
            raise
        except Exception as exc:
            raise RelyingPartyError("the token endpoint cannot be reached") from exc
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise RelyingPartyError("no ID token")
        return self.validate_id_token(id_token, flow.nonce)

    def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            claims = jose.verify(id_token, self._jwks())
        except jose.JoseError:
            try:  # the provider may have rotated its key
                claims = jose.verify(id_token, self._jwks(refresh=True))
            except jose.JoseError as exc:
                raise RelyingPartyError("the ID token's signature does not verify") from exc
        now = self.clock.now().timestamp()
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if claims.get("iss") != self.issuer:
            raise RelyingPartyError("ID token from another issuer")
        if self.client_id not in audiences:
            raise RelyingPartyError("ID token for another client")
        if not isinstance(claims.get("exp"), int) or claims["exp"] + CLOCK_SKEW < now:
            raise RelyingPartyError("ID token expired")
        if claims.get("nonce") != nonce:
            raise RelyingPartyError("ID token nonce differs")
        if not claims.get("sub"):
            raise RelyingPartyError("ID token without subject")
        return claims
