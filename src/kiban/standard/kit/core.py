"""What a conformance check is and what it is given.

A check is a function registered with `@check(test_id, requirement_ids...)`. It talks to the
target through `Context` and ends in one of three ways: it returns (pass), raises `Failed`
(the target answers, wrongly), or raises `NotImplementedHere` (the target has no such
operation: 404, 405 or 501 where the standard API has one).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx

JST = timezone(timedelta(hours=9))


class Failed(AssertionError):
    """The target answered, and the answer breaks the requirement."""


class NotImplementedHere(Exception):
    """The target does not offer the operation at all."""


@dataclass(frozen=True)
class Check:
    id: str
    domain: str
    title: str
    requirements: tuple[str, ...]
    run: Callable[[Context], None]


CHECKS: dict[str, Check] = {}


def check(test_id: str, *requirements: str, title: str) -> Callable[[Callable[[Context], None]],
                                                                     Callable[[Context], None]]:
    """Registers a check: its ID (CT-REG-001), the requirements it cites, a title."""
    domain = {"REG": "registry", "TAX": "tax"}[test_id.split("-")[1]]

    def register(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        if test_id in CHECKS:
            raise ValueError(f"{test_id} is registered twice")
        CHECKS[test_id] = Check(test_id, domain, title, tuple(requirements), fn)
        return fn
    return register


def implemented() -> dict[str, tuple[str, ...]]:
    """Every registered check and the requirements it cites (for `kiban standard lint`)."""
    from kiban.standard.kit import registry_checks, tax_checks  # noqa: F401 - they register

    return {c.id: c.requirements for c in CHECKS.values()}


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


@dataclass
class Tenant:
    """A throwaway municipality the kit created, with a token per role."""

    lgcode: str
    name: str
    towns: list[dict[str, str]]
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@dataclass
class Context:
    client: httpx.Client
    home: Tenant  # where the checks act
    other: Tenant  # a second municipality, for isolation checks
    today: date = field(default_factory=lambda: datetime.now(JST).date())

    def base(self, tenant: Tenant | None = None) -> str:
        return f"/api/v1/municipalities/{(tenant or self.home).lgcode}"

    def call(self, method: str, path: str, role: str = "clerk", *, json: Any = None,
             params: dict[str, Any] | None = None, tenant: Tenant | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        """A request to `path` (relative to the tenant's base unless it starts with /api)."""
        tenant = tenant or self.home
        url = path if path.startswith("/api/") else self.base(tenant) + path
        return self.client.request(method, url, json=json, params=params,
                                   headers={**tenant.auth(role), **(headers or {})})

    def ok(self, response: httpx.Response, status: int | Iterable[int] = (200, 201)
           ) -> dict[str, Any]:
        """The JSON body of a successful answer; a missing operation is NotImplementedHere,
        any other unexpected status Failed."""
        wanted = {status} if isinstance(status, int) else set(status)
        if response.status_code in wanted:
            kind = response.headers.get("content-type", "").split(";")[0].strip()
            json_body = kind == "application/json" or kind.endswith("+json")
            body: dict[str, Any] = response.json() if response.content and json_body else {}
            return body
        if response.status_code in (404, 405, 501) and _route_missing(response):
            raise NotImplementedHere(f"{response.request.method} {response.request.url.path}: "
                                     f"{response.status_code}")
        raise Failed(f"{response.request.method} {response.request.url.path}: expected "
                     f"{sorted(wanted)}, got {response.status_code} {response.text[:300]}")

    def refused(self, response: httpx.Response, status: int | Iterable[int] = (400, 409, 422),
                field_name: str | None = None) -> dict[str, Any]:
        """A refusal as the standard API gives it: problem+json with Japanese and English."""
        wanted = {status} if isinstance(status, int) else set(status)
        if response.status_code in (404, 405, 501) and _route_missing(response):
            raise NotImplementedHere(f"{response.request.url.path}: {response.status_code}")
        expect(response.status_code in wanted,
               f"{response.request.method} {response.request.url.path}: expected a refusal "
               f"{sorted(wanted)}, got {response.status_code} {response.text[:300]}")
        expect(response.headers.get("content-type", "").startswith("application/problem+json"),
               "a refusal must be application/problem+json")
        body: dict[str, Any] = response.json()
        expect(bool(body.get("title_ja")) and bool(body.get("title_en")),
               "a refusal carries a Japanese and an English message")
        if field_name is not None:
            fields = {body.get("field")} | {e.get("field") for e in body.get("errors", [])}
            expect(field_name in fields, f"the refusal should name {field_name}, named {fields}")
        return body

    def unique(self, prefix: str = "") -> str:
        return prefix + secrets.token_hex(4)


def _route_missing(response: httpx.Response) -> bool:
    """A 404 for the route itself (no such operation), not for a missing resource: the
    standard API answers missing resources with problem code `not-found`."""
    if response.status_code in (405, 501):
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    return not (isinstance(body, dict) and body.get("type", "").endswith("/not-found"))
