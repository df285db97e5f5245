"""How other domains (and outside agencies written in Python) ask the hub for data.

`InProcessClient` talks to the `Hub` of this process; `HttpClient` to a hub over HTTP
(`kiban linkage serve`). Both build the same signed message and check the same signed
answer: the hub's signature, the echoed request hash, and the provider's own signature over
the data it sent. Code that takes a `LinkageClient` works with either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519

from kiban.core.clock import Clock, SystemClock
from kiban.linkage import model, protocol

if TYPE_CHECKING:
    from kiban.linkage.service import Hub


@dataclass(frozen=True)
class ExchangeResult:
    status: int
    ok: bool
    data: dict[str, Any]  # the provider's data ({} when refused)
    error: str | None  # the refusal code (model.Refusal), None when ok
    request_id: str
    leaf_index: int | None
    response: dict[str, Any] = field(default_factory=dict)


class LinkageClient(Protocol):
    member: str

    def exchange(self, provider: str, item: str, procedure: str, subject: str,
                 params: dict[str, Any] | None = None) -> ExchangeResult: ...


class _Client:
    def __init__(self, member: str, key: ed25519.Ed25519PrivateKey, clock: Clock | None) -> None:
        self.member = member
        self.key = key
        self.clock = clock or SystemClock()

    def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        raise NotImplementedError

    def _hub_key(self) -> ed25519.Ed25519PublicKey:
        raise NotImplementedError

    def _provider_key(self, provider: str) -> ed25519.Ed25519PublicKey:
        raise NotImplementedError

    def exchange(self, provider: str, item: str, procedure: str, subject: str,
                 params: dict[str, Any] | None = None, *, now: datetime | None = None,
                 request_id: str | None = None) -> ExchangeResult:
        out = protocol.build_request(self.member, self.key, provider, item, procedure, subject,
                                     now or self.clock.now(), params, request_id)
        status, body, headers = self._send(out.body, out.headers)
        answer = protocol.open_response(body, headers, self._hub_key(), out.body)
        leaf = (answer.get("log") or {}).get("leaf_index")
        request = json.loads(out.body)["request_id"]
        if answer.get("status") != "ok":
            return ExchangeResult(status, False, {}, str((answer.get("error") or {}).get("code")), request,
                                  leaf, answer)
        reply = str(answer["provider_response"]).encode()
        if not protocol.verify(self._provider_key(provider), reply, str(answer["provider_signature"])):
            raise protocol.ResponseError("the provider's signature on the data does not verify")
        data = json.loads(reply)
        return ExchangeResult(status, True, dict(data.get("data") or {}), None, request, leaf, answer)


class InProcessClient(_Client):
    def __init__(self, hub: Hub, member: str, clock: Clock | None = None) -> None:
        super().__init__(member, hub.member_key(member), clock or hub.clock)
        self.hub = hub
        self._providers: dict[str, ed25519.Ed25519PublicKey] = {}

    def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        answer = self.hub.exchange(body, headers.get(protocol.CLIENT_HEADER),
                                   headers.get(protocol.SIGNATURE_HEADER))
        return answer.status, answer.body, answer.headers

    def _hub_key(self) -> ed25519.Ed25519PublicKey:
        return protocol.certificate_key(self.hub.hub_certificate)

    def _provider_key(self, provider: str) -> ed25519.Ed25519PublicKey:
        if provider not in self._providers:
            self._providers[provider] = protocol.certificate_key(self.hub.member(provider)["certificate"])
        return self._providers[provider]


class HttpClient(_Client):
    """`hub_certificate`: the hub's certificate as pinned by the member (PEM); when omitted it
    is fetched from the hub once (trust on first use, for tests and demos)."""

    def __init__(self, base_url: str, member: str, key: ed25519.Ed25519PrivateKey,
                 hub_certificate: str | None = None, clock: Clock | None = None,
                 http: httpx.Client | None = None) -> None:
        super().__init__(member, key, clock)
        self.base_url = base_url.rstrip("/")
        self.http = http or httpx.Client(timeout=15.0)
        self._hub_cert = hub_certificate
        self._providers: dict[str, ed25519.Ed25519PublicKey] = {}

    def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        response = self.http.post(f"{self.base_url}/api/v1/linkage/exchange", content=body, headers=headers)
        return response.status_code, response.content, dict(response.headers)

    def _hub_key(self) -> ed25519.Ed25519PublicKey:
        if self._hub_cert is None:
            self._hub_cert = str(self.http.get(f"{self.base_url}/api/v1/linkage/hub").json()["certificate"])
        return protocol.certificate_key(self._hub_cert)

    def _provider_key(self, provider: str) -> ed25519.Ed25519PublicKey:
        if provider not in self._providers:
            found = self.http.get(f"{self.base_url}/api/v1/linkage/members/{provider}").json()
            self._providers[provider] = protocol.certificate_key(found["certificate"])
        return self._providers[provider]


__all__ = ["ExchangeResult", "HttpClient", "InProcessClient", "LinkageClient", "model"]
