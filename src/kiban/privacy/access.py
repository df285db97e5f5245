"""Purpose-bound reads for HTTP routes. A route that returns personal data declares it with
a `PersonalRead` dependency: before the read the staff member's purpose is checked (header
`X-Kiban-Purpose`, else the route's default; a purpose outside their roles needs a reason in
`X-Kiban-Access-Reason`, percent-encoded UTF-8, and is flagged); after it, the route records
which residents and fields it returned. tests/privacy/test_access_walk.py walks every route
and fails if one returns personal data without a record."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from fastapi import Depends, Request

from kiban.platform.auth import Permission, Session
from kiban.privacy.model import AccessDecision
from kiban.privacy.service import Privacy
from kiban.web.deps import api_session, services


@dataclass
class PersonalRead:
    privacy: Privacy
    session: Session
    lgcode: str
    decision: AccessDecision
    channel: str
    fields: list[str]

    def record(self, resident_ids: Iterable[str], fields: list[str] | None = None,
               detail: dict[str, Any] | None = None) -> None:
        self.privacy.record(self.session.staff, self.lgcode, self.decision, list(resident_ids),
                            fields or self.fields, self.channel, detail)

    def transaction(self) -> AbstractContextManager[Any]:
        """One unit of work for the read and its record: the registry's reads join it, so
        the record costs no COMMIT of its own (docs/performance.md)."""
        return self.privacy.db.unit_of_work(self.lgcode)

    def record_bulk(self, detail: dict[str, Any], fields: list[str] | None = None) -> None:
        """A bulk read (an extract) of records not named one by one."""
        self.record(["*"], fields, detail)


def personal_read(default_purpose: str, fields: list[str]
                  ) -> Callable[..., PersonalRead]:
    def dependency(request: Request, lgcode: str,
                   session: Session = Depends(api_session)) -> PersonalRead:
        privacy = services(request).privacy
        purpose = request.headers.get("x-kiban-purpose") or default_purpose
        reason = unquote(request.headers.get("x-kiban-access-reason", ""))
        decision = privacy.authorise(session.staff, purpose, reason)
        route = request.scope.get("route")
        path = getattr(route, "path", request.url.path)
        shown = [f for f in fields
                 if f != "my_number" or session.staff.can(Permission.MY_NUMBER_READ)]
        return PersonalRead(privacy, session, lgcode, decision,
                            f"api:{request.method} {path}", shown)

    dependency.personal_read = True  # type: ignore[attr-defined]  # the route walk looks for it
    return dependency


# The items of a resident record a registry read returns (the 個人番号 only to roles that may
# see it: added when the reader can).
PERSON_FIELDS = ["name", "kana", "birth_date", "sex", "address", "relationship",
                 "juminhyo_code", "honseki", "foreign", "my_number"]


def resident_ids(payload: Any) -> list[str]:
    """The residents named anywhere in a payload by `resident_id` or `resident_ids`."""
    found: list[str] = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key == "resident_id" and value:
                found.append(str(value))
            elif key == "resident_ids" and isinstance(value, list):
                found.extend(str(v) for v in value)
            else:
                found.extend(resident_ids(value))
    elif isinstance(payload, list):
        for item in payload:
            found.extend(resident_ids(item))
    return found
