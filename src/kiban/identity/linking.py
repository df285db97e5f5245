"""Linking a My Number card to the resident record, and revoking it when the record changes
(issue 5 part 4).

Linking: the resident signs their authentication certificate with the signing key (both on the
one card, so the signature proves they belong together). The signing certificate's 基本4情報
are matched against the registry (through the registry's service, as every other domain);
exactly one record agreeing on all four items is linked, by 住民票コード, with both serials.
Anything else is reported (`no_match`, `ambiguous`), never guessed.

Revocation: the registry's 本人確認情報 change feed (JR-0701) is read from a stored cursor.
A change of any of the 基本4情報, a move out or a death revokes the signing certificate; a
death or 職権消除 (loss of residence) the authentication certificate too. The revocation is
recorded here and, for a card of the test CA, made at the test CA (so its CRL and OCSP answer
say so); a real card is revoked by J-LIS on the municipality's notice.
Processing is idempotent: a change already seen changes nothing, and the cursor moves in the
same transaction as the revocations it made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from kiban.core.clock import Clock
from kiban.core.errors import FieldError, NotFound, ValidationFailed
from kiban.identity import service, store
from kiban.identity.model import Purpose, RecordFacts, mismatched_items, revokes
from kiban.identity.service import IdentityService
from kiban.platform.auth import Role, StaffMember
from kiban.platform.db import Database, before_commit
from kiban.platform.tenants import Municipalities
from kiban.registry.reports import Reports
from kiban.registry.service import Registry

FEED_PAGE = 500


def system_actor(lgcode: str) -> StaffMember:
    """The identity service acting on the registry (reading records, the change feed)."""
    return StaffMember(id="system-identity", lgcode=lgcode, username="system:identity",
                       display_name="本人確認(システム)", department="identity",
                       roles=frozenset({Role.REGISTRY_SUPERVISOR}))


@dataclass(frozen=True)
class LinkResult:
    linked: bool
    reason: str  # ok | the verification reason | no_match | ambiguous
    resident_id: str | None = None
    signing_serial: str | None = None
    authentication_serial: str | None = None
    mismatched: tuple[str, ...] = ()  # of the closest record (same birth date), when no match

    def as_json(self) -> dict[str, Any]:
        return {"linked": self.linked, "reason": self.reason, "resident_id": self.resident_id,
                "signing_serial": self.signing_serial,
                "authentication_serial": self.authentication_serial,
                "mismatched": list(self.mismatched)}


class CardLinks:
    def __init__(self, db: Database, clock: Clock, registry: Registry, municipalities: Municipalities,
                 identity: Callable[[], IdentityService],
                 revoke_at_ca: Callable[[str], bool] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        self.reports = Reports(db, clock)
        self.municipalities = municipalities
        self._identity = identity
        self.revoke_at_ca = revoke_at_ca

    def identity(self) -> IdentityService:
        return self._identity()

    # --- linking ---------------------------------------------------------------------------

    def record_facts(self, lgcode: str, item: dict[str, Any]) -> RecordFacts:
        muni = self.municipalities.get(lgcode)
        address = item.get("address") or {}
        return RecordFacts(name=item["full_name"], birth_date=str(item["birth_date"]), sex=item["sex"],
                           address=f"{muni['prefecture']}{muni['name']}{address.get('text', '')}")

    def link_card(self, lgcode: str, authentication_certificate: bytes, signature: bytes) -> LinkResult:
        """`signature`: a detached CMS signature, made with the card's signing key, over the
        card's authentication certificate (DER)."""
        identity = self.identity()
        signed = identity.verify_signature(authentication_certificate, signature, Purpose.SIGNING)
        if not signed.valid or signed.signer is None:
            return LinkResult(False, signed.reason.value)
        auth = identity.validate_certificate(authentication_certificate, Purpose.AUTHENTICATION)
        if not auth.valid or auth.signer is None:
            return LinkResult(False, auth.reason.value)
        signer = signed.signer
        try:
            born = date.fromisoformat(signer.birth_date or "")
        except ValueError:
            return LinkResult(False, "no_match", mismatched=("birth_date",))
        actor = system_actor(lgcode)
        found = self.registry.search(actor, lgcode, birth_date=born, per_page=100)["items"]
        matches, closest = [], None
        for item in found:
            wrong = mismatched_items(signer, self.record_facts(lgcode, item))
            if not wrong:
                matches.append(item)
            elif closest is None or len(wrong) < len(closest):
                closest = wrong
        if len(matches) != 1:
            return LinkResult(False, "ambiguous" if matches else "no_match",
                              mismatched=tuple(closest or ("name", "birth_date", "sex", "address")))
        record = matches[0]
        at = self.clock.now()
        rows = [{"lgcode": lgcode, "serial": serial, "kind": kind.value, "resident_id": record["id"],
                 "juminhyo_code": record["juminhyo_code"], "card_id": signer.serial, "linked_at": at,
                 "revoked_at": None, "revocation_reason": None, "revoked_by_event": None}
                for serial, kind in ((signer.serial, Purpose.SIGNING),
                                     (auth.signer.serial, Purpose.AUTHENTICATION))]
        with self.db.tenant(lgcode) as conn:
            store.link(conn, rows)
        with self.db.platform() as conn:
            store.index_serials(conn, lgcode, [signer.serial, auth.signer.serial])
        return LinkResult(True, "ok", record["id"], signer.serial, auth.signer.serial)

    def linked_resident(self, serial: str) -> tuple[str, dict[str, Any]] | None:
        """(lgcode, link row) for a linked certificate serial (any state), None when unknown."""
        serial = serial.upper()
        with self.db.platform() as conn:
            lgcode = store.lgcode_of(conn, serial)
        if lgcode is None:
            return None
        with self.db.tenant(lgcode) as conn:
            row = store.get_link(conn, lgcode, serial)
        return (lgcode, row) if row else None

    def resident_record(self, lgcode: str, juminhyo_code: str) -> dict[str, Any]:
        """The current (active) record a link names; NotFound when it is no longer active."""
        items = self.registry.search(system_actor(lgcode), lgcode, juminhyo_code=juminhyo_code)["items"]
        if not items:
            raise NotFound("住民記録が見つかりません。", "No active resident record.")
        return dict(items[0])

    def links(self, lgcode: str, resident_id: str) -> list[dict[str, Any]]:
        with self.db.tenant(lgcode) as conn:
            return store.links_of(conn, lgcode, [resident_id])

    # --- revocation from the change feed ---------------------------------------------------

    def process_changes(self, lgcode: str, limit: int = FEED_PAGE) -> dict[str, Any]:
        """Read the change feed from the stored cursor to its end; revoke what the changes
        invalidate. Returns counts (identifiers only, for logs)."""
        if not 1 <= limit <= 5000:
            raise ValidationFailed([FieldError("limit", "limit は1〜5000です。", "limit must be 1..5000.")])
        actor = system_actor(lgcode)
        events = revoked = 0
        while True:
            with self.db.tenant(lgcode) as conn:
                after = store.cursor(conn, lgcode)
            page = self.reports.juki_net_notifications(actor, lgcode, "1970-01-01", after, limit)
            if page["next_after_seq"] is None:
                break
            with self.db.tenant(lgcode) as conn:
                if store.cursor(conn, lgcode) != after:
                    continue  # another worker took this page meanwhile
                revoked += self._apply(conn, lgcode, page["items"])
                store.set_cursor(conn, lgcode, int(page["next_after_seq"]), self.clock.now())
            events += len({item["event_id"] for item in page["items"]})
            if not page["has_more"]:
                break
        return {"lgcode": lgcode, "notices": events, "revoked": revoked}

    def _apply(self, conn: Any, lgcode: str, items: list[dict[str, Any]]) -> int:
        at = self.clock.now()
        count = 0
        for item in items:
            purposes = revokes(item["kind"], item["notice"], item.get("changed") or [], item["status"])
            if not purposes:
                continue
            for link in store.links_of(conn, lgcode, [item["resident_id"]]):
                if link["revoked_at"] is not None or Purpose(link["kind"]) not in purposes:
                    continue
                if store.mark_revoked(conn, lgcode, link["serial"], at, item["kind"], item["event_id"]):
                    count += 1
                    if self.revoke_at_ca is not None:
                        # At the end of the transaction: the CA's record is made only when the
                        # revocation is (a failure rolls it back, and the next run retries).
                        serial = link["serial"]
                        before_commit(conn, functools.partial(self._revoke_at_ca, serial))
        return count

    def _revoke_at_ca(self, serial: str, _conn: Any) -> None:
        assert self.revoke_at_ca is not None
        self.revoke_at_ca(serial)


def for_platform(db: Database, clock: Clock, registry: Registry, municipalities: Municipalities,
                 mode: str) -> CardLinks:
    """CardLinks with the platform's verifier (built on first use) and, outside production,
    revocation at the test CA."""
    built: list[IdentityService] = []

    def identity() -> IdentityService:
        if not built:
            built.append(service.platform_identity(mode, clock))
        return built[0]

    return CardLinks(db, clock, registry, municipalities, identity,
                     lambda serial: service.revoke_at_test_ca(mode, serial, clock))
