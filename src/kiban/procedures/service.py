"""Online procedures (issue 7 parts 1-3, 6): drafts, signed submissions verified against the
card and matched to the resident record, evidence fetched through the exchange hub, the staff
work queue, delivery of certificates, and notifications.

The resident is known by (lgcode, resident_id): the portal session resolves it (see
`resolve_portal_subject`); the signature must then name the same resident through the card's
link (kiban.identity.linking). Nothing the resident entered is lost: every refusal keeps (or
creates) the draft with the form as entered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError

from kiban.core.clock import Clock
from kiban.core.errors import Conflict, FieldError, Forbidden, KibanError, NotFound, ValidationFailed
from kiban.identity import linking, oidc
from kiban.identity.linking import CardLinks
from kiban.identity.model import Purpose
from kiban.linkage.client import InProcessClient
from kiban.platform import ledger
from kiban.platform.auth import Role, StaffMember
from kiban.platform.db import Database, before_commit
from kiban.platform.settings import Settings
from kiban.platform.tenants import Municipalities
from kiban.procedures import store
from kiban.procedures.catalog import Procedure, form_errors, load_catalog
from kiban.procedures.notify import Mailer, state_mail
from kiban.registry.service import Registry

log = logging.getLogger("kiban.procedures")

STATES: dict[str, tuple[str, str]] = {
    "draft": ("下書き", "Draft"),
    "submitted": ("受付済み(審査待ち)", "Submitted (awaiting review)"),
    "in_review": ("審査中", "In review"),
    "correction_requested": ("補正のお願い", "Correction requested"),
    "approved": ("承認", "Approved"),
    "rejected": ("却下", "Rejected"),
}
OPEN_STATES = ("submitted", "in_review")
# Roles that work the queue (each procedure's own checks, e.g. the tax certificate's, still apply).
HANDLER_ROLES = frozenset({Role.COUNTER_CLERK, Role.REGISTRY_SUPERVISOR, Role.TAX_OFFICER,
                           Role.MUNICIPALITY_ADMIN})
MAX_PAYLOAD = 64_000
MAX_SIGNATURE = 32_000
SUBSYSTEM = "tetsuzuki"  # the procedures subsystem's name at the exchange hub


def new_id() -> str:
    return secrets.token_hex(16)


def procedures_member(lgcode: str) -> str:
    return f"JP/LG/{lgcode}/{SUBSYSTEM}"


def canonical_payload(lgcode: str, procedure_id: str, form: dict[str, Any], nonce: str | None = None) -> bytes:
    """The bytes a resident signs: canonical JSON naming the municipality, the procedure and the
    form (and a nonce, so that two deliberate applications with the same form differ)."""
    body = {"lgcode": lgcode, "procedure": procedure_id, "form": form, "nonce": nonce or new_id()}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# The `sub` Kiban's own OpenID provider gives the resident, computed by the provider's code.
portal_subject = oidc.pairwise_subject


@dataclass(frozen=True)
class Resident:
    lgcode: str
    resident_id: str


class HubLike(Protocol):
    """What procedures need of the exchange hub's service (reached through its client)."""

    clock: Clock

    def member(self, member_id: str) -> dict[str, Any]: ...
    def register_member(self, member_id: str, kind: str, name: str, *, certificate: str | None = None,
                        endpoint: str = "", lgcode: str | None = None,
                        items: Mapping[str, str] | None = None) -> dict[str, Any]: ...
    def enrol(self, member_id: str, lgcode: str, resident_id: str) -> str: ...
    def member_key(self, member_id: str) -> Any: ...
    @property
    def hub_certificate(self) -> str: ...
    def exchange(self, body: bytes, client: str | None, signature: str | None, *,
                 truncated: bool = False) -> Any: ...


def system_actor(lgcode: str) -> StaffMember:
    return StaffMember(id="system-procedures", lgcode=lgcode, username="system:procedures",
                       display_name="オンライン申請(システム)", department="procedures",
                       roles=frozenset({Role.COUNTER_CLERK}))


class SubmissionStopped(KibanError):
    """The application stopped (signature, signer): the draft is kept, with this reason."""

    def __init__(self, ja: str, en: str, code: str, draft_id: str, status: int = 422) -> None:
        super().__init__(ja=ja, en=en, status=status, code=code, field="signature")
        self.draft_id = draft_id


class Procedures:
    def __init__(self, settings: Settings, db: Database, clock: Clock, registry: Registry,
                 municipalities: Municipalities, hub: HubLike | None, assessments: Any = None,
                 links: CardLinks | None = None, mailer: Mailer | bool | None = True,
                 portal_url: str = "/portal/procedures") -> None:
        self.settings, self.db, self.clock = settings, db, clock
        self.registry, self.municipalities, self.hub = registry, municipalities, hub
        self.assessments = assessments
        self.links = links or linking.for_platform(db, clock, registry, municipalities, settings.mode)
        self.mailer: Mailer | None = Mailer.from_env() if mailer is True else (mailer or None)
        self.portal_url = portal_url
        self.catalog = load_catalog()
        self._codes: dict[tuple[str, str], str] = {}
        self._clients: dict[str, InProcessClient] = {}
        self._members: set[str] = set()
        self._lock = threading.Lock()
        self._subjects: dict[str, Resident] = {}

    # --- the catalog ----------------------------------------------------------------------

    def procedure(self, procedure_id: str) -> Procedure:
        found = self.catalog.get(procedure_id)
        if found is None:
            raise NotFound("その手続はありません。", "No such procedure.")
        return found

    # --- the resident ---------------------------------------------------------------------

    def resolve_portal_subject(self, claims: dict[str, Any]) -> Resident | None:
        """The resident a portal session names: the `sub` of Kiban's provider is an HMAC of
        (lgcode, resident id); candidates are found by the shared birth date within the
        municipality the address names, and the one whose subject matches is the resident."""
        sub = str(claims.get("sub") or "")
        if not sub:
            return None
        cached = self._subjects.get(sub)
        if cached is not None:
            return cached
        address = claims.get("address") or {}
        formatted = str(address.get("formatted", "") if isinstance(address, dict) else address)
        born = str(claims.get("birthdate") or "")
        try:
            birth = date.fromisoformat(born)
        except ValueError:
            return None
        for muni in self.municipalities.list():
            if not formatted.startswith(f"{muni['prefecture']}{muni['name']}"):
                continue
            lgcode = muni["lgcode"]
            found = self.registry.search(system_actor(lgcode), lgcode, birth_date=birth, per_page=100)["items"]
            for item in found:
                if hmac.compare_digest(portal_subject(self.settings.secret_key, lgcode, item["id"]), sub):
                    resident = Resident(lgcode, item["id"])
                    if len(self._subjects) > 100_000:
                        self._subjects.clear()
                    self._subjects[sub] = resident
                    return resident
        return None

    # --- drafts ---------------------------------------------------------------------------

    def save_draft(self, who: Resident, procedure_id: str, form: Any, draft_id: str | None = None,
                   email: str | None = None) -> dict[str, Any]:
        """Keeps what the resident entered as it is (valid or not)."""
        self.procedure(procedure_id)
        if not isinstance(form, dict):
            form = {}
        form = _bounded_form(form)
        now = self.clock.now()
        with self.db.tenant(who.lgcode) as conn:
            if draft_id:
                row = store.get_application(conn, who.lgcode, draft_id, lock=True)
                if row is not None and row["resident_id"] == who.resident_id and \
                        row["state"] in ("draft", "correction_requested") and row["procedure_id"] == procedure_id:
                    store.update_application(conn, who.lgcode, draft_id, None,
                                             {"form": form, "updated_at": now,
                                              **({"notify_email": email} if email else {})})
                    return self._resident_view(conn, who, draft_id)
            app_id = new_id()
            store.add_application(conn, {
                "lgcode": who.lgcode, "id": app_id, "procedure_id": procedure_id,
                "resident_id": who.resident_id, "state": "draft", "form": form, "created_at": now,
                "updated_at": now, "revision": 1, "notify_email": email or None})
            return self._resident_view(conn, who, app_id)

    # --- submission -----------------------------------------------------------------------

    def submit(self, who: Resident, payload: bytes, signature_b64: str, *, idempotency_key: str | None = None,
               draft_id: str | None = None, email: str | None = None, verify: bool = True,
               fetch_evidence: bool = True) -> tuple[int, dict[str, Any]]:
        """A signed application. (201, application) when queued; (200, the existing
        application) for a repeat (same content or Idempotency-Key); a refusal raises, keeping
        the form in a draft. `verify`/`fetch_evidence` False: the benchmark's baseline only."""
        lgcode = who.lgcode
        if len(payload) > MAX_PAYLOAD or len(signature_b64) > MAX_SIGNATURE:
            raise ValidationFailed([FieldError("payload", "申請データが大きすぎます。",
                                               "The application is too large.")])
        try:
            body = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationFailed([FieldError("payload", "申請データが読めません。",
                                               "The signed payload is not JSON.")]) from exc
        if not isinstance(body, dict) or not isinstance(body.get("form"), dict):
            raise ValidationFailed([FieldError("payload", "申請データの形式が不正です。",
                                               "The payload must be {lgcode, procedure, form, nonce}.")])
        proc = self.procedure(str(body.get("procedure", "")))
        form = body["form"]
        if body.get("lgcode") != lgcode:
            raise ValidationFailed([FieldError("payload", "申請先の団体が違います。",
                                               "The payload names another municipality.")])
        content_hash = hashlib.sha256(payload).hexdigest()
        key_hash = hashlib.sha256(f"{who.resident_id}\n{idempotency_key}".encode()).hexdigest() \
            if idempotency_key else None
        with self.db.tenant(lgcode) as conn:
            existing = store.by_hash_or_key(conn, lgcode, content_hash, key_hash)
        if existing is not None:
            return self._repeat(who, existing, content_hash)
        errors = form_errors(proc, form)
        if errors:
            draft = self.save_draft(who, proc.id, form, draft_id, email)
            raise _FormRefused([FieldError(f, ja, en) for f, ja, en in errors], draft["id"])
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        signer: dict[str, Any] = {}
        if verify:
            signer = self._verified_signer(who, proc, form, payload, signature, draft_id, email)
        evidence = self.fetch_evidence(lgcode, who.resident_id, proc) if fetch_evidence else []
        now = self.clock.now()
        app_id = draft_id or new_id()
        values = {"procedure_id": proc.id, "state": "submitted", "form": form, "payload": payload,
                  "signature": signature, "content_hash": content_hash, "idempotency_key": key_hash,
                  "signer": signer, "evidence": evidence, "submitted_at": now, "updated_at": now,
                  "last_error": None, "reason": None, "claimed_by": None,
                  **({"notify_email": email} if email else {})}
        try:
            with self.db.tenant(lgcode) as conn:
                row = store.get_application(conn, lgcode, app_id, lock=True) if draft_id else None
                if row is not None and (row["resident_id"] != who.resident_id
                                        or row["state"] not in ("draft", "correction_requested")):
                    row, app_id = None, new_id()
                if row is None:
                    store.add_application(conn, {"lgcode": lgcode, "id": app_id, "resident_id": who.resident_id,
                                                 "created_at": now, "revision": 1, **values})
                else:
                    store.update_application(conn, lgcode, app_id, None, values)
                self._step(conn, lgcode, app_id, "resident", "submit", "submitted", None,
                           {"procedure": proc.id, "content_hash": content_hash,
                            "evidence": [{"item": e["item"], "status": e["status"]} for e in evidence]})
                self._notify(conn, lgcode, who.resident_id, app_id, "submitted", proc)
                view = self._view(conn, {"lgcode": lgcode, "id": app_id, "resident_id": who.resident_id,
                                         "created_at": row["created_at"] if row else now,
                                         "revision": row["revision"] + 1 if row else 1,
                                         "notify_email": email or (row or {}).get("notify_email"),
                                         "document_serial": None, "document": None, **values},
                                  staff=False, steps=not draft_id)
        except IntegrityError:
            # The same content (or key) committed meanwhile by a concurrent request.
            with self.db.tenant(lgcode) as conn:
                existing = store.by_hash_or_key(conn, lgcode, content_hash, key_hash)
            if existing is None:
                raise
            return self._repeat(who, existing, content_hash)
        self._mail(view.get("notify_email"), app_id, "submitted")
        return 201, view

    def _repeat(self, who: Resident, existing: dict[str, Any], content_hash: str) -> tuple[int, dict[str, Any]]:
        if existing["resident_id"] != who.resident_id:
            raise Conflict("この申請は受け付けられません。", "This application cannot be accepted.")
        if existing["content_hash"] != content_hash:
            raise Conflict("同じ Idempotency-Key で別の内容が送られました。",
                           "This Idempotency-Key was used with a different application.",
                           field="Idempotency-Key")
        with self.db.tenant(who.lgcode) as conn:
            return 200, {**self._resident_view(conn, who, existing["id"]), "replayed": True}

    def _verified_signer(self, who: Resident, proc: Procedure, form: dict[str, Any], payload: bytes,
                         signature: bytes, draft_id: str | None, email: str | None) -> dict[str, Any]:
        def stop(ja: str, en: str, code: str, status: int = 422) -> SubmissionStopped:
            draft = self.save_draft(who, proc.id, form, draft_id, email)
            with self.db.tenant(who.lgcode) as conn:
                store.update_application(conn, who.lgcode, draft["id"], None,
                                         {"last_error": {"code": code, "ja": ja, "en": en}})
            return SubmissionStopped(ja, en, code, draft["id"], status)

        if not signature:
            raise stop("電子署名がありません。マイナンバーカードで署名してください。",
                       "The application is not signed: sign it with the My Number card.", "unsigned")
        result = self.links.identity().verify_signature(payload, signature, Purpose.SIGNING)
        if not result.valid or result.signer is None:
            raise stop(f"電子署名を検証できませんでした({result.reason.value})。申請は受け付けていません。",
                       f"The signature does not verify ({result.reason.value}); the application was not accepted.",
                       f"signature-{result.reason.value}")
        found = self.links.linked_resident(result.signer.serial)
        if found is None or found[1]["kind"] != Purpose.SIGNING.value or found[1]["revoked_at"] is not None:
            raise stop("署名したカードが住民記録と結び付いていません。窓口でカードの登録をしてください。",
                       "The signing card is not linked to a resident record.", "signer-not-linked", 403)
        link_lgcode, link = found
        if link_lgcode != who.lgcode or link["resident_id"] != who.resident_id:
            raise stop("署名者がログイン中の住民と一致しません。申請は受け付けていません。",
                       "The signer does not match the signed-in resident; the application was not accepted.",
                       "signer-mismatch", 403)
        try:
            self.links.resident_record(who.lgcode, link["juminhyo_code"])
        except NotFound:
            raise stop("署名者の住民記録が有効ではありません。", "The signer has no active resident record.",
                       "signer-no-record", 403) from None
        return {"serial": result.signer.serial, "reason": result.reason.value,
                "name": result.signer.name, "birth_date": result.signer.birth_date,
                "sex": result.signer.sex, "address": result.signer.address,
                "resident_id": link["resident_id"], "verified_at": self.clock.now().isoformat()}

    # --- evidence through the hub ---------------------------------------------------------

    def _client(self, lgcode: str, resident_id: str) -> tuple[InProcessClient, str]:
        assert self.hub is not None
        member = procedures_member(lgcode)
        if member not in self._members:
            with self._lock:
                try:
                    self.hub.member(member)
                except NotFound:
                    muni = self.municipalities.get(lgcode)
                    self.hub.register_member(member, "municipality", f"{muni['name']} オンライン申請",
                                             lgcode=lgcode)
                self._members.add(member)
        code = self._codes.get((lgcode, resident_id))
        if code is None:
            try:
                code = self.hub.enrol(member, lgcode, resident_id)
            except IntegrityError:  # enrolled meanwhile by a concurrent request: now it is there
                code = self.hub.enrol(member, lgcode, resident_id)
            if len(self._codes) > 100_000:
                self._codes.clear()
            self._codes[(lgcode, resident_id)] = code
        client = self._clients.get(member)
        if client is None:  # kept: it caches the providers' certificates
            client = self._clients[member] = InProcessClient(self.hub, member, self.clock)  # type: ignore[arg-type]
        return client, code

    def fetch_evidence(self, lgcode: str, resident_id: str, proc: Procedure) -> list[dict[str, Any]]:
        """Each evidence item through the hub, with the legal basis recorded; a refusal is kept
        with its reason (for staff), never hidden."""
        out: list[dict[str, Any]] = []
        for ev in proc.evidence:
            entry: dict[str, Any] = {"item": ev.item, "provider": ev.provider_for(lgcode),
                                     "legal_basis": ev.legal_basis, "fetched_at": self.clock.now().isoformat()}
            if self.hub is None:
                out.append({**entry, "status": "refused", "reason": "no-hub",
                            "reason_ja": "情報連携基盤が利用できません。", "reason_en": "No exchange hub."})
                continue
            try:
                client, code = self._client(lgcode, resident_id)
                result = client.exchange(entry["provider"], ev.item, proc.id, code)
            except KibanError as exc:
                out.append({**entry, "status": "refused", "reason": exc.code, "reason_ja": exc.ja,
                            "reason_en": exc.en})
                continue
            except Exception as exc:  # a broken answer: recorded, the application goes on
                log.warning("evidence fetch failed: %s", type(exc).__name__)
                out.append({**entry, "status": "refused", "reason": "provider-failed",
                            "reason_ja": "情報の取得に失敗しました。", "reason_en": type(exc).__name__})
                continue
            answer = result.response or {}
            if result.ok:
                out.append({**entry, "status": "ok", "data": result.data, "request_id": result.request_id,
                            "hub_legal_basis": answer.get("legal_basis"),
                            "table_version": answer.get("table_version"), "leaf_index": result.leaf_index})
            else:
                error = answer.get("error") or {}
                out.append({**entry, "status": "refused", "reason": result.error,
                            "reason_ja": error.get("title_ja", ""), "reason_en": error.get("title_en", ""),
                            "request_id": result.request_id, "leaf_index": result.leaf_index})
        return out

    # --- the resident's views ---------------------------------------------------------------

    def _resident_view(self, conn: Any, who: Resident, app_id: str) -> dict[str, Any]:
        row = store.get_application(conn, who.lgcode, app_id)
        if row is None or row["resident_id"] != who.resident_id:
            raise NotFound("申請が見つかりません。", "Application not found.")
        return self._view(conn, row, staff=False)

    def _view(self, conn: Any, row: dict[str, Any], staff: bool, steps: bool = True) -> dict[str, Any]:
        proc = self.catalog.get(row["procedure_id"])
        ja, en = STATES.get(row["state"], (row["state"], row["state"]))
        out: dict[str, Any] = {
            "id": row["id"], "lgcode": row["lgcode"], "procedure_id": row["procedure_id"],
            "procedure_name_ja": proc.name_ja if proc else row["procedure_id"],
            "procedure_name_en": proc.name_en if proc else row["procedure_id"],
            "resident_id": row["resident_id"], "state": row["state"], "state_ja": ja, "state_en": en,
            "form": row["form"], "content_hash": row["content_hash"], "reason": row["reason"],
            "last_error": row["last_error"], "notify_email": row["notify_email"],
            "document_serial": row["document_serial"], "has_document": row["document"] is not None,
            "created_at": _iso(row["created_at"]), "submitted_at": _iso(row["submitted_at"]),
            "updated_at": _iso(row["updated_at"]), "revision": row["revision"],
            "steps": [{**s, "at": _iso(s["at"]), "actor": s["actor"] if staff or s["actor"] == "resident" else "staff"}
                      for s in store.steps(conn, row["lgcode"], row["id"])] if steps else
                     [{"at": _iso(row["submitted_at"]), "actor": "resident", "action": "submit",
                       "state": row["state"], "message": None}],
        }
        if staff:
            out.update({"signer": row["signer"], "evidence": row["evidence"] or [],
                        "claimed_by": row["claimed_by"],
                        "signed_payload": base64.b64encode(row["payload"]).decode() if row["payload"] else None,
                        "signature": base64.b64encode(row["signature"]).decode() if row["signature"] else None})
        return out

    def my_applications(self, who: Resident) -> list[dict[str, Any]]:
        with self.db.tenant(who.lgcode) as conn:
            rows = store.of_resident(conn, who.lgcode, who.resident_id)
        return [{**r, "state_ja": STATES[r["state"]][0], "state_en": STATES[r["state"]][1],
                 "procedure_name_ja": self.catalog[r["procedure_id"]].name_ja if r["procedure_id"] in self.catalog
                 else r["procedure_id"],
                 "procedure_name_en": self.catalog[r["procedure_id"]].name_en if r["procedure_id"] in self.catalog
                 else r["procedure_id"],
                 "submitted_at": _iso(r["submitted_at"]), "updated_at": _iso(r["updated_at"]),
                 "created_at": _iso(r["created_at"])} for r in rows]

    def my_application(self, who: Resident, app_id: str) -> dict[str, Any]:
        with self.db.tenant(who.lgcode) as conn:
            return self._resident_view(conn, who, app_id)

    def my_document(self, who: Resident, app_id: str) -> tuple[str, bytes]:
        with self.db.tenant(who.lgcode) as conn:
            row = store.get_application(conn, who.lgcode, app_id)
        if row is None or row["resident_id"] != who.resident_id or row["document"] is None:
            raise NotFound("交付された書類がありません。", "No document was delivered.")
        return str(row["document_serial"]), bytes(row["document"])

    def notifications(self, who: Resident) -> list[dict[str, Any]]:
        with self.db.tenant(who.lgcode) as conn:
            return [{**n, "at": _iso(n["at"]), "read_at": _iso(n["read_at"])}
                    for n in store.notifications(conn, who.lgcode, who.resident_id)]

    def mark_notifications_read(self, who: Resident) -> int:
        with self.db.tenant(who.lgcode) as conn:
            return store.mark_read(conn, who.lgcode, who.resident_id, self.clock.now())

    # --- the work queue -------------------------------------------------------------------

    @staticmethod
    def require_handler(actor: StaffMember, lgcode: str) -> None:
        if not actor.roles & HANDLER_ROLES:
            raise Forbidden("申請を処理する権限がありません。", "Your roles do not allow handling applications.")
        if actor.lgcode != lgcode:
            raise Forbidden("この地方公共団体のデータは扱えません。", "You cannot act for this municipality.")

    def queue(self, actor: StaffMember, lgcode: str, procedure_id: str | None = None, state: str | None = None,
              page: int = 1, per_page: int = 50) -> dict[str, Any]:
        self.require_handler(actor, lgcode)
        errors = []
        if procedure_id and procedure_id not in self.catalog:
            errors.append(FieldError("procedure", "その手続はありません。", "Unknown procedure."))
        if state and state not in STATES:
            errors.append(FieldError("state", "状態が不正です。", "Unknown state."))
        if page < 1 or not 1 <= per_page <= 200:
            errors.append(FieldError("page", "ページ指定が不正です。", "page >= 1, per_page 1..200."))
        if errors:
            raise ValidationFailed(errors)
        with self.db.tenant(lgcode) as conn:
            rows, total = store.queue(conn, lgcode, procedure_id, state, per_page, (page - 1) * per_page)
        items = [{**r, "state_ja": STATES[r["state"]][0], "submitted_at": _iso(r["submitted_at"]),
                  "updated_at": _iso(r["updated_at"]), "created_at": _iso(r["created_at"]),
                  "procedure_name_ja": self.catalog[r["procedure_id"]].name_ja
                  if r["procedure_id"] in self.catalog else r["procedure_id"]} for r in rows]
        return {"items": items, "total": total, "page": page, "per_page": per_page}

    def get(self, actor: StaffMember, lgcode: str, app_id: str) -> dict[str, Any]:
        self.require_handler(actor, lgcode)
        with self.db.tenant(lgcode) as conn:
            row = store.get_application(conn, lgcode, app_id)
            if row is None or row["state"] == "draft":
                raise NotFound("申請が見つかりません。", "Application not found.")
            return self._view(conn, row, staff=True)

    def claim(self, actor: StaffMember, lgcode: str, app_id: str) -> dict[str, Any]:
        return self._transition(actor, lgcode, app_id, "claim", ("submitted", "in_review"), "in_review")

    def approve(self, actor: StaffMember, lgcode: str, app_id: str, data: dict[str, Any] | None = None
                ) -> dict[str, Any]:
        return self._transition(actor, lgcode, app_id, "approve", ("in_review",), "approved", data=data or {})

    def reject(self, actor: StaffMember, lgcode: str, app_id: str, reason: str) -> dict[str, Any]:
        return self._transition(actor, lgcode, app_id, "reject", ("submitted", "in_review"), "rejected",
                                message=_reason(reason))

    def request_correction(self, actor: StaffMember, lgcode: str, app_id: str, message: str) -> dict[str, Any]:
        return self._transition(actor, lgcode, app_id, "request_correction", ("submitted", "in_review"),
                                "correction_requested", message=_reason(message))

    def _transition(self, actor: StaffMember, lgcode: str, app_id: str, action: str, allowed: tuple[str, ...],
                    to: str, message: str | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
        self.require_handler(actor, lgcode)
        # One unit of work: the certificate the registry issues joins this transaction.
        with self.db.unit_of_work(lgcode) as conn:
            row = store.get_application(conn, lgcode, app_id, lock=True)
            if row is None or row["state"] == "draft":
                raise NotFound("申請が見つかりません。", "Application not found.")
            if row["state"] not in allowed:
                raise Conflict(f"この申請は「{STATES[row['state']][0]}」のため、この操作はできません。",
                               f"The application is {row['state']}: {action} is not possible.", field="state")
            if action == "claim" and row["claimed_by"] and row["claimed_by"] != actor.id:
                raise Conflict("この申請は他の職員が担当しています。", "Another staff member has claimed it.",
                               field="claimed_by")
            if action == "approve" and row["claimed_by"] != actor.id:
                raise Conflict("担当している申請だけを承認できます。", "Claim the application before approving it.",
                               field="claimed_by")
            proc = self.procedure(row["procedure_id"])
            values: dict[str, Any] = {"state": to, "updated_at": self.clock.now()}
            if action == "claim":
                values["claimed_by"] = actor.id
            if message is not None:
                values["reason"] = message
            if action == "approve":
                values.update(self._deliver(actor, lgcode, row, proc, data or {}))
            store.update_application(conn, lgcode, app_id, None, values)
            self._step(conn, lgcode, app_id, actor.id, action, to, message,
                       {"procedure": proc.id, "document_serial": values.get("document_serial")})
            self._notify(conn, lgcode, row["resident_id"], app_id, to, proc, message)
            view = self._view(conn, store.get_application(conn, lgcode, app_id) or row, staff=True)
        self._mail(row["notify_email"], app_id, to)
        return view

    def _deliver(self, actor: StaffMember, lgcode: str, row: dict[str, Any], proc: Procedure,
                 data: dict[str, Any]) -> dict[str, Any]:
        """The signed PDF a certificate request delivers (issued in the approval's transaction)."""
        form = row["form"]
        if proc.delivers == "juminhyo":
            ids = [row["resident_id"]]
            if form.get("scope") == "household":
                person = self.registry.get(actor, lgcode, row["resident_id"])
                members = self.registry.household(actor, lgcode, person["household_id"])["members"]
                ids = [m["id"] for m in members if m.get("status") == "active"]
            serial, pdf = self.registry.issue_certificate(actor, lgcode, {
                "kind": "juminhyo", "resident_ids": ids, "honseki": bool(form.get("include_honseki")),
                "requester": {"kind": "self"}})
            return {"document_serial": serial, "document": pdf}
        if proc.delivers == "tax-certificate":
            if self.assessments is None:
                raise Conflict("税務の機能が利用できません。", "The tax service is not available.")
            assessment_id = data.get("assessment_id")
            if not assessment_id:
                from kiban.tax.assessment import assessment_id as make_id
                assessment_id = make_id(lgcode, int(form["fiscal_year"]), row["resident_id"])
            serial, pdf = self.assessments.issue_certificate_pdf(actor, lgcode, str(assessment_id),
                                                                 str(data.get("kind") or "taxation"))
            return {"document_serial": serial, "document": pdf}
        return {}

    # --- recording ------------------------------------------------------------------------

    def _step(self, conn: Any, lgcode: str, app_id: str, actor: str, action: str, state: str,
              message: str | None, ledger_payload: dict[str, Any]) -> None:
        now = self.clock.now()
        # Ids in time order (steps recorded at one clock reading still sort as taken).
        step_id = f"{time.time_ns():019d}{secrets.token_hex(6)}"
        store.add_step(conn, {"lgcode": lgcode, "id": step_id, "application_id": app_id, "at": now,
                              "actor": actor, "action": action, "state": state, "message": message})
        entry = {**ledger_payload, "state": state}
        # Last in the transaction: the ledger head's lock is held only for the COMMIT.
        def append(c: Any) -> None:
            ledger.append(c, lgcode, f"procedure.{action}", app_id, entry, actor, now)

        before_commit(conn, append)

    def _notify(self, conn: Any, lgcode: str, resident_id: str, app_id: str, state: str, proc: Procedure,
                message: str | None = None) -> None:
        ja, en = STATES[state]
        text_ja = f"「{proc.name_ja}」の申請は「{ja}」になりました。" + (f" {message}" if message else "")
        text_en = f"Your application \"{proc.name_en}\" is now: {en}." + (f" {message}" if message else "")
        store.add_notification(conn, {"lgcode": lgcode, "id": new_id(), "resident_id": resident_id,
                                      "application_id": app_id, "at": self.clock.now(), "kind": state,
                                      "message_ja": text_ja, "message_en": text_en, "read_at": None})

    def _mail(self, to: str | None, app_id: str, state: str) -> None:
        if not to or self.mailer is None:
            return
        subject, body = state_mail(app_id, *STATES[state], self.portal_url)
        self.mailer.send(to, subject, body)


class _FormRefused(ValidationFailed):
    def __init__(self, errors: list[FieldError], draft_id: str) -> None:
        super().__init__(errors)
        self.draft_id = draft_id


def _reason(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationFailed([FieldError("reason", "理由を入力してください。", "A reason is required.")])
    if len(text) > 2000:
        raise ValidationFailed([FieldError("reason", "理由は2000文字以内です。", "At most 2000 characters.")])
    return text


def _bounded_form(form: dict[str, Any]) -> dict[str, Any]:
    """A draft keeps what was entered, within limits (50 fields of 4,000 characters)."""
    out: dict[str, Any] = {}
    for key, value in list(form.items())[:50]:
        if isinstance(value, str):
            value = value[:4000]
        elif not isinstance(value, (int, float, bool)) and value is not None:
            value = str(value)[:4000]
        out[str(key)[:64]] = value
    return out


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
