"""Registry use cases. Each opens one unit of work for its municipality, loads, applies the
model's rules, writes, and records the change event and its ledger entry in the same
transaction: a refused change leaves nothing behind."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Connection

from kiban.core.checkdigits import is_valid_juminhyo_code, is_valid_lgcode, with_check_digit
from kiban.core.clock import Clock, today_jst
from kiban.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from kiban.core.text import fold_kana, fold_kanji, is_kana_reading
from kiban.documents import juminhyo, signing
from kiban.identity import service as identity
from kiban.platform import ledger
from kiban.platform.auth import Permission, StaffMember
from kiban.platform.db import Database, before_commit, switch_tenant
from kiban.platform.tenants import Municipalities
from kiban.registry import store
from kiban.registry.model import (
    CERTIFICATE_FORMS,
    HEAD,
    LATE_NOTICE_KINDS,
    RELATIONSHIPS,
    Address,
    ChangeKind,
    Household,
    Resident,
    Status,
    build_resident,
    change_juminhyo_code,
    check_dates,
    check_special_move_in,
    correct,
    ensure_changeable,
    ensure_one_head,
    household_from_snapshot,
    is_late_notice,
    parse_address,
    remove,
    require,
    resident_from_snapshot,
    snapshot,
    validate_address,
    validate_kisai_items,
    validate_person,
    validate_requester,
    validate_suppression,
)

DATE_FIELDS = ("birth_date", "occurred_on", "notified_on", "planned_on", "expiry", "starts_on",
               "ends_on")


def parse_dates(data: Any, prefix: str = "") -> list[FieldError]:
    """Turns ISO strings into dates in place (the CLI and JSON lines send strings)."""
    errors: list[FieldError] = []
    if isinstance(data, dict):
        for key, value in list(data.items()):
            if key in DATE_FIELDS and isinstance(value, str):
                try:
                    data[key] = date.fromisoformat(value)
                except ValueError:
                    errors.append(FieldError(prefix + key, "日付は YYYY-MM-DD で入力してください。",
                                             f"{key} must be a date (YYYY-MM-DD)."))
            elif isinstance(value, dict | list):
                errors += parse_dates(value, f"{prefix}{key}.")
    elif isinstance(data, list):
        for i, item in enumerate(data):
            errors += parse_dates(item, f"{prefix[:-1]}[{i}].")
    return errors


def _need(data: dict[str, Any], name: str, kind: type, ja: str) -> list[FieldError]:
    if not isinstance(data.get(name), kind):
        return [FieldError(name, f"{ja}を入力してください。", f"{name} is required.")]
    return []


Row = TypeVar("Row", Resident, Household)


def _unchanged_since(row: Resident | Household, after: dict[str, Any]) -> bool:
    """True when the row still reads as the change left it (versions aside: cancelling a
    later change restores content under a new version)."""
    current = snapshot(row)
    current.pop("version")
    return current == {k: v for k, v in after.items() if k != "version"}


def _restore(event: dict[str, Any], kind: str, from_snapshot: Callable[[dict[str, Any]], Row],
             load: Callable[[str], Row | None]) -> list[tuple[Row, Row]]:
    """For cancelling `event`: each row it wrote, back as it was before (or voided if the
    change created it); refused if a later change touched the row since."""
    pairs = []
    for row_id, after in event["after"][kind].items():
        current = load(row_id)
        if current is None or not _unchanged_since(current, after):
            raise Conflict("後続の異動があるため取り消せません。先に後続の異動を取り消してください。",
                           "A later change touched this record; cancel that first.",
                           field="event_id")
        before = event["before"][kind].get(row_id)
        restored = from_snapshot(before) if before else replace(current, status=Status.VOID)
        pairs.append((current, replace(restored, version=current.version + 1)))
    return pairs


def new_id() -> str:
    return uuid.uuid4().hex


def verification_code(secret: str, lgcode: str, serial: str, content_hash: str) -> str:
    """The short code printed on a signed certificate: an HMAC-SHA256, under the platform
    secret, of the municipality, serial and the SHA-256 of the rendered document; 40 bits as
    8 base32 characters, XXXX-XXXX."""
    mac = hmac.new(secret.encode(), f"kiban-verify|{lgcode}|{serial}|{content_hash}".encode(),
                   hashlib.sha256).digest()
    text = base64.b32encode(mac[:5]).decode()
    return f"{text[:4]}-{text[4:]}"


def _key_row(lgcode: str, key: identity.DocumentKey, clock: Clock) -> dict[str, Any]:
    cert = x509.load_pem_x509_certificate(key.certificate_pem)
    return {"lgcode": lgcode, "fingerprint": cert.fingerprint(hashes.SHA256()).hex(),
            "certificate": key.certificate_pem.decode(), "chain": key.chain_pem.decode(),
            "private_key": key.key_pem.decode(), "source": key.source, "created_at": clock.now()}


# Documents other domains issue through the registry's signing and verification (a kind is at
# most 20 characters: the certificates table's column).
OTHER_DOCUMENT_KINDS = frozenset({"tax_taxation", "tax_non_taxation"})

def _verdict(row: dict[str, Any], muni: dict[str, Any] | None,
             signer: x509.Certificate | None) -> dict[str, Any]:
    withdrawn = row["withdrawn_at"] is not None
    return {
        "authentic": True, "reason": "withdrawn" if withdrawn else "ok",
        "lgcode": row["lgcode"], "serial": row["serial"], "kind": row["kind"],
        "municipality": f"{muni['prefecture']}{muni['name']}" if muni else None,
        "issued_at": row["issued_at"].isoformat(),
        "signer": signer.subject.rfc4514_string() if signer is not None else None,
        "withdrawn": withdrawn,
        "withdrawn_at": row["withdrawn_at"].isoformat() if withdrawn else None,
        "withdrawal_reason": row["withdrawal_reason"] if withdrawn else None,
    }


class Registry:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._signing_keys: dict[tuple[str, str], signing.SigningKey] = {}  # (lgcode, fingerprint)

    def today(self) -> date:
        return today_jst(self.clock)

    # --- reads ------------------------------------------------------------------------------

    def view(self, conn: Connection, r: Resident, actor: StaffMember,
             towns: dict[str, str] | None = None,
             households: dict[str, Household] | None = None,
             suppressed: set[str] | None = None) -> dict[str, Any]:
        """A resident as the API and pages show it; the 個人番号 only to roles that may see it;
        `suppressed` true while a 支援措置 suppression is in force (JR-0303). `suppressed`
        (the ids of suppressed residents among those shown) saves a query per resident."""
        hh = (households.get(r.household_id) if households is not None
              else store.get_household(conn, r.lgcode, r.household_id))
        if suppressed is None:
            suppressed = store.suppressed_among(conn, r.lgcode, [r.id], self.today())
        towns = towns if towns is not None else store.town_names(conn, r.lgcode)
        data = snapshot(r)
        if not actor.can(Permission.MY_NUMBER_READ):
            data.pop("my_number", None)
        data["full_name"] = r.full_name
        data["full_kana"] = r.full_kana
        data["age"] = r.age_on(self.today())
        data["address"] = self.address_view(hh.address, towns) if hh else None
        data["late_flags"] = []
        data["suppressed"] = r.id in suppressed
        return data

    def _log(self, conn: Connection, lgcode: str, actor: StaffMember, action: str,
             resident_ids: list[str], subject: str = "") -> None:
        """JR-1005: who read or certified whom, identifiers only; one INSERT in the caller's
        transaction."""
        at = self.clock.now()
        store.log_access(conn, lgcode, [
            {"id": new_id(), "at": at, "staff_id": actor.id, "action": action,
             "resident_id": rid, "subject": subject} for rid in dict.fromkeys(resident_ids)])

    @staticmethod
    def address_view(address: Address, towns: dict[str, str]) -> dict[str, str]:
        town = towns.get(address.town_code, "")
        text = f"{town}{address.banchi}" + (f" {address.katagaki}" if address.katagaki else "")
        return {"town_code": address.town_code, "town": town, "banchi": address.banchi,
                "katagaki": address.katagaki, "text": text}

    def get(self, actor: StaffMember, lgcode: str, resident_id: str) -> dict[str, Any]:
        actor.require(Permission.REGISTRY_READ, lgcode)
        with self.db.tenant(lgcode) as conn:
            r = store.get_resident(conn, lgcode, resident_id)
            if r is None or r.status is Status.VOID:
                raise NotFound("住民が見つかりません。", "Resident not found.")
            self._log(conn, lgcode, actor, "read", [r.id])
            return self.view(conn, r, actor)

    def household(self, actor: StaffMember, lgcode: str, household_id: str) -> dict[str, Any]:
        actor.require(Permission.REGISTRY_READ, lgcode)
        with self.db.tenant(lgcode) as conn:
            hh = store.get_household(conn, lgcode, household_id)
            if hh is None or hh.status is Status.VOID:
                raise NotFound("世帯が見つかりません。", "Household not found.")
            towns = store.town_names(conn, lgcode)
            members = store.members(conn, lgcode, hh.id)
            self._log(conn, lgcode, actor, "read", [m.id for m in members])
            suppressed = store.suppressed_among(conn, lgcode, [m.id for m in members],
                                                self.today())
            return {"id": hh.id, "head_id": hh.head_id, "status": hh.status.value,
                    "address": self.address_view(hh.address, towns),
                    "members": [self.view(conn, m, actor, towns, {hh.id: hh}, suppressed)
                                for m in members]}

    def history(self, actor: StaffMember, lgcode: str, resident_id: str) -> list[dict[str, Any]]:
        """Every change that touched the resident, oldest first (JR-0418)."""
        actor.require(Permission.REGISTRY_READ, lgcode)
        with self.db.tenant(lgcode) as conn:
            if store.get_resident(conn, lgcode, resident_id) is None:
                raise NotFound("住民が見つかりません。", "Resident not found.")
            self._log(conn, lgcode, actor, "read", [resident_id], "history")
            return [self.event_view(e, actor) for e in store.events_for(conn, lgcode, resident_id)]

    @staticmethod
    def event_view(e: dict[str, Any], actor: StaffMember) -> dict[str, Any]:
        def scrub(rows: dict[str, Any]) -> dict[str, Any]:
            if actor.can(Permission.MY_NUMBER_READ):
                return rows
            return {k: ({**v, "my_number": None} if isinstance(v, dict) and "my_number" in v
                        else v) for k, v in rows.items()}

        return {"id": e["id"], "kind": e["kind"], "occurred_on": e["occurred_on"].isoformat(),
                "notified_on": e["notified_on"].isoformat() if e["notified_on"] else None,
                "late_notice": e["late_notice"], "detail": e["detail"],
                "before": scrub(e["before"].get("residents", {})),
                "after": scrub(e["after"].get("residents", {})),
                "recorded_at": e["recorded_at"].isoformat(), "actor": e["actor"],
                "cancels": e["cancels"], "cancelled_by": e["cancelled_by"]}

    def search(self, actor: StaffMember, lgcode: str, *, name: str | None = None,
               birth_date: date | None = None, town_code: str | None = None,
               banchi: str | None = None, juminhyo_code: str | None = None,
               include_removed: bool = False, page: int = 1, per_page: int = 20
               ) -> dict[str, Any]:
        """JR-0201: by name in kanji or kana (normalised, prefix of family or given name),
        date of birth, address, 住民票コード; paginated."""
        actor.require(Permission.REGISTRY_READ, lgcode)
        errors = []
        if page < 1:
            errors.append(FieldError("page", "ページ番号が不正です。", "page must be >= 1."))
        if not 1 <= per_page <= 100:
            errors.append(FieldError("per_page", "件数は1〜100です。", "per_page is 1..100."))
        name = (name or "").strip()
        if not any([name, birth_date, town_code, banchi, juminhyo_code]):
            errors.append(FieldError("name", "検索条件を1つ以上入力してください。",
                                     "Give at least one search condition."))
        require(errors)
        kana_key = fold_kana(name) if name and is_kana_reading(name) else None
        kanji_key = fold_kanji(name) if name and not kana_key else None
        statuses = [Status.ACTIVE.value] + ([Status.REMOVED.value] if include_removed else [])
        with self.db.tenant(lgcode) as conn:
            rows, total = store.search(
                conn, lgcode, kana_key=kana_key, kanji_key=kanji_key, birth_date=birth_date,
                town_code=town_code, banchi=banchi, juminhyo_code=juminhyo_code,
                statuses=statuses, limit=per_page, offset=(page - 1) * per_page)
            towns = store.town_names(conn, lgcode)
            households = store.get_households(conn, lgcode, {r.household_id for r in rows})
            suppressed = store.suppressed_among(conn, lgcode, [r.id for r in rows], self.today())
            return {"total": total, "capped": total >= store.SEARCH_CAP, "page": page,
                    "per_page": per_page,
                    "items": [self.view(conn, r, actor, towns, households, suppressed)
                              for r in rows]}

    # --- writing a change -------------------------------------------------------------------

    def _commit(self, conn: Connection, lgcode: str, actor: StaffMember, kind: ChangeKind,
                occurred_on: date, notified_on: date | None, *,
                created: list[Resident] | None = None,
                updated: list[tuple[Resident, Resident]] | None = None,
                created_hh: list[Household] | None = None,
                updated_hh: list[tuple[Household, Household]] | None = None,
                detail: dict[str, Any] | None = None,
                cancels: str | None = None, drawn: set[str] | None = None,
                code_field: str | None = None, late_reason: Any = None) -> dict[str, Any]:
        """Writes the change. `drawn`: ids of created residents whose 住民票コード was drawn
        here (redrawn if taken); any other code already taken is refused (`code_field`).
        The change event and its ledger entry are written last, just before COMMIT, so the
        municipality's ledger head stays locked for as short a time as possible."""
        created, updated = created or [], updated or []
        created_hh, updated_hh = created_hh or [], updated_hh or []
        late = kind in LATE_NOTICE_KINDS and is_late_notice(occurred_on, notified_on)
        detail = self._late_reason(conn, lgcode, late, late_reason, detail)
        store.insert_households(conn, created_hh)
        created = self._insert_residents(conn, lgcode, created, drawn or set(), code_field)
        for old, new in updated:
            if not store.save_resident(conn, new, old.version):
                raise Conflict("他の処理で更新されました。やり直してください。",
                               "The record changed meanwhile; try again.")
        for old_h, new_h in updated_hh:
            if not store.save_household(conn, new_h, old_h.version):
                raise Conflict("他の処理で更新されました。やり直してください。",
                               "The household changed meanwhile; try again.")
        touched = {h.id for h in created_hh} | {n.id for _, n in updated_hh}
        touched |= {r.household_id for r in created} | {n.household_id for _, n in updated}
        touched |= {o.household_id for o, _ in updated}
        # A household created here has a fresh id: its members are all in this change.
        for new_hh in created_hh:
            ensure_one_head(new_hh, [r for r in created if r.household_id == new_hh.id]
                            + [n for _, n in updated if n.household_id == new_hh.id])
        self._check_households(conn, lgcode, touched - {h.id for h in created_hh})
        event_id = new_id()
        before = {"residents": {o.id: snapshot(o) for o, _ in updated},
                  "households": {o.id: snapshot(o) for o, _ in updated_hh}}
        after = {"residents": {**{r.id: snapshot(r) for r in created},
                               **{n.id: snapshot(n) for _, n in updated}},
                 "households": {**{h.id: snapshot(h) for h in created_hh},
                                **{n.id: snapshot(n) for _, n in updated_hh}}}
        content = {"id": event_id, "kind": kind.value, "occurred_on": occurred_on.isoformat(),
                   "notified_on": notified_on.isoformat() if notified_on else None,
                   "late_notice": late, "detail": detail or {}, "before": before,
                   "after": after, "cancels": cancels}
        at = self.clock.now()
        event = {
            "lgcode": lgcode, "id": event_id, "kind": kind.value, "occurred_on": occurred_on,
            "notified_on": notified_on, "late_notice": late, "detail": detail or {},
            "before": before, "after": after, "actor": actor.id, "recorded_at": at,
            "cancels": cancels, "cancelled_by": None}
        entry = {"event": event_id, "digest": ledger.digest(content)}

        def record(c: Connection) -> None:
            ledger.append(c, lgcode, f"registry.{kind.value}", event_id, entry, actor.id, at,
                          also=lambda seqs: store.event_inserts(
                              c, {**event, "ledger_seq": seqs[0]}, list(after["residents"])))

        before_commit(conn, record)
        return {"event_id": event_id, "kind": kind.value, "late_notice": late,
                "resident_ids": list(after["residents"]),
                "household_ids": list(after["households"]), "detail": detail or {}}

    @staticmethod
    def _late_reason(conn: Connection, lgcode: str, late: bool, reason: Any,
                     detail: dict[str, Any] | None) -> dict[str, Any] | None:
        """JR-0415: a late notice is flagged (the standard). Under the `require_reason` switch,
        which only a recorded deviation sets, it must also say why it is late. The setting is
        read only when the notice is late. A reason given is kept in the event's detail."""
        if reason is not None and not isinstance(reason, str):
            raise ValidationFailed([FieldError("late_reason", "遅延理由が不正です。",
                                               "late_reason must be text.")])
        reason = (reason or "").strip()
        if len(reason) > 500:
            raise ValidationFailed([FieldError("late_reason", "遅延理由が長すぎます(500文字まで)。",
                                               "late_reason is too long (500 characters).")])
        if late and not reason:
            policy = Municipalities.get_in(conn, lgcode)["settings"].get("late_notice_policy",
                                                                         "flag")
            if policy == "require_reason":
                raise ValidationFailed([FieldError(
                    "late_reason",
                    "JR-0415: 届出期間(14日)を経過した届出です。遅延の理由を入力してください。",
                    "JR-0415: this notice is more than 14 days late; give late_reason.")])
        return {**(detail or {}), "late_reason": reason} if reason else detail

    @staticmethod
    def _check_households(conn: Connection, lgcode: str, ids: set[str]) -> None:
        for household_id in ids:
            hh = store.get_household(conn, lgcode, household_id)
            if hh is None:
                continue
            members = store.members(conn, lgcode, household_id)
            if hh.status is Status.ACTIVE:
                ensure_one_head(hh, members)
            elif members:
                raise RuleViolation("消除された世帯に住民がいます。",
                                    "A removed household still has residents.")

    @staticmethod
    def _new_code() -> str:
        """A random 住民票コード (check digit included). Whether it is unused is for the
        insert to tell (`_insert_residents` draws again when it is taken)."""
        return with_check_digit(f"{secrets.randbelow(10**10):010d}", "juminhyo")

    def _insert_residents(self, conn: Connection, lgcode: str, created: list[Resident],
                          drawn: set[str], code_field: str | None) -> list[Resident]:
        """Inserts `created`; returns them as stored (a drawn code that was taken, drawn
        again). A 住民票コード the caller gave that is taken refuses the change."""
        pending = created
        for _ in range(20):
            taken = store.insert_residents(conn, pending)
            if not taken:
                return created
            if any(r.id not in drawn for r in taken):
                raise Conflict("この住民票コードは既に登録されています。",
                               "This 住民票コード is already registered.", field=code_field)
            pending = [replace(r, juminhyo_code=self._new_code()) for r in taken]
            redrawn = {r.id: r for r in pending}
            created = [redrawn.get(r.id, r) for r in created]
        raise RuleViolation("住民票コードを採番できませんでした。", "No free 住民票コード was found.")

    @staticmethod
    def _towns_named(conn: Connection, lgcode: str, address: Any) -> dict[str, str]:
        """The part of the 町字 master an address check needs: the town it names."""
        town = address.get("town_code") if isinstance(address, dict) else None
        return store.town_names_for(conn, lgcode, [town])

    def _load(self, conn: Connection, lgcode: str, resident_id: Any,
              kind: ChangeKind, field: str = "resident_id") -> Resident:
        r = store.get_resident(conn, lgcode, str(resident_id))
        if r is None:
            raise ValidationFailed([FieldError(field, "住民が見つかりません。",
                                               f"{field}: no such resident.")])
        ensure_changeable(r, kind)
        return r

    def _load_household(self, conn: Connection, lgcode: str, household_id: Any,
                        field: str = "household_id") -> Household:
        hh = store.get_household(conn, lgcode, str(household_id))
        if hh is None or hh.status is not Status.ACTIVE:
            raise ValidationFailed([FieldError(field, "世帯が見つかりません。",
                                               f"{field}: no such active household.")])
        return hh

    def _dates(self, data: dict[str, Any], *, notified: bool = True) -> tuple[date, date | None]:
        errors = parse_dates(data)
        errors += _need(data, "occurred_on", date, "異動日")
        if notified:
            errors += _need(data, "notified_on", date, "届出日")
        require(errors)
        occurred_on = data["occurred_on"]
        notified_on = data.get("notified_on") if notified else None
        check_dates(occurred_on, notified_on, self.today())
        return occurred_on, notified_on

    # --- additions --------------------------------------------------------------------------

    def move_in(self, actor: StaffMember, lgcode: str, data: dict[str, Any]) -> dict[str, Any]:
        """転入 from another municipality or from abroad (JR-0401, JR-0402); with
        `authority` set, a 職権記載 (JR-0411)."""
        authority = bool(data.get("authority"))
        actor.require(Permission.REGISTRY_AUTHORITY if authority else Permission.REGISTRY_NOTIFY,
                      lgcode)
        origin = data.get("origin", "domestic")
        if authority:
            kind = ChangeKind.AUTHORITY_ENTRY
        elif origin == "abroad":
            kind = ChangeKind.MOVE_IN_FROM_ABROAD
        elif origin == "domestic":
            kind = ChangeKind.MOVE_IN
        else:
            raise ValidationFailed([FieldError("origin", "転入元は domestic か abroad です。",
                                               "origin must be 'domestic' or 'abroad'.")])
        occurred_on, notified_on = self._dates(data, notified=not authority)
        if authority and not str(data.get("reason") or "").strip():
            raise ValidationFailed([FieldError("reason", "職権記載の理由を入力してください。",
                                               "reason is required for an entry by authority.")])
        members: list[Any] = data.get("members") or []
        errors = parse_dates(members, "members.")
        if not isinstance(members, list) or not members:
            errors.append(FieldError("members", "転入者を1人以上入力してください。",
                                     "members must list at least one person."))
            require(errors)
        today = self.today()
        for i, m in enumerate(members):
            if not isinstance(m, dict):
                errors.append(FieldError(f"members[{i}]", "転入者の項目が不正です。",
                                         "member must be an object."))
                continue
            errors += validate_person(m, today, f"members[{i}].")
            if m.get("relationship") not in RELATIONSHIPS:
                errors.append(FieldError(f"members[{i}].relationship", "続柄を選んでください。",
                                         "relationship is required."))
            code = m.get("juminhyo_code")
            if code and not (isinstance(code, str) and is_valid_juminhyo_code(code)):
                errors.append(FieldError(f"members[{i}].juminhyo_code",
                                         "住民票コードが不正です(検査数字)。",
                                         "juminhyo_code has a wrong check digit."))
        if kind is ChangeKind.MOVE_IN and not str(data.get("previous_address") or "").strip():
            errors.append(FieldError("previous_address", "前住所を入力してください。",
                                     "previous_address is required for a domestic move-in."))
        joining = data.get("household_id")
        with self.db.tenant(lgcode) as conn:
            if not joining:  # report address errors together with the people's
                errors += validate_address(data.get("address"),
                                           self._towns_named(conn, lgcode, data.get("address")))
            require(errors)
            created_hh: list[Household] = []
            updated_hh: list[tuple[Household, Household]] = []
            if joining:
                hh = self._load_household(conn, lgcode, joining)
                if any(m["relationship"] == HEAD for m in members):
                    raise ValidationFailed([FieldError(
                        "members", "既存の世帯に入る場合、世帯主は入力できません。",
                        "A person joining a household cannot be its head.")])
                household_id = hh.id
            else:
                heads = [m for m in members if m["relationship"] == HEAD]
                if len(heads) != 1:
                    raise ValidationFailed([FieldError(
                        "members", "新しい世帯には世帯主が1人必要です。",
                        "A new household needs exactly one head.")])
                household_id = new_id()
            created = []
            drawn: set[str] = set()
            for m in members:
                resident_id = new_id()
                code = m.get("juminhyo_code")
                if not code:  # whether a code is free, given or drawn, the insert tells
                    code = self._new_code()
                    drawn.add(resident_id)
                created.append(build_resident(
                    {**m, "previous_address": m.get("previous_address")
                     or data.get("previous_address", "")},
                    id=resident_id, lgcode=lgcode, juminhyo_code=code,
                    household_id=household_id, relationship=m["relationship"],
                    resident_since=occurred_on, notified_on=notified_on))
            if not joining:
                head = next(r for r in created if r.relationship == HEAD)
                created_hh.append(Household(id=household_id, lgcode=lgcode,
                                            address=parse_address(data["address"]),
                                            head_id=head.id))
            detail = {"origin": origin, "reason": data.get("reason", ""),
                      "from_lgcode": data.get("from_lgcode", "")}
            return self._commit(conn, lgcode, actor, kind, occurred_on, notified_on,
                                created=created, created_hh=created_hh, updated_hh=updated_hh,
                                detail=detail, drawn=drawn, code_field="juminhyo_code",
                                late_reason=data.get("late_reason"))

    def birth(self, actor: StaffMember, lgcode: str, data: dict[str, Any]) -> dict[str, Any]:
        """出生 (JR-0406): the child joins a household; the change date is the birth date."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        errors = parse_dates(data)
        child = data.get("child")
        if not isinstance(child, dict):
            raise ValidationFailed([FieldError("child", "子の項目を入力してください。",
                                               "child is required.")])
        errors += parse_dates(child, "child.")
        errors += validate_person(child, self.today(), "child.")
        errors += _need(data, "notified_on", date, "届出日")
        require(errors)
        born = child["birth_date"]
        notified_on = data["notified_on"]
        check_dates(born, notified_on, self.today())
        relationship = child.get("relationship") or "子"
        if relationship == HEAD:
            raise ValidationFailed([FieldError("child.relationship", "出生児は世帯主になれません。",
                                               "A newborn cannot head a household.")])
        with self.db.tenant(lgcode) as conn:
            hh = self._load_household(conn, lgcode, data.get("household_id"))
            r = build_resident(child, id=new_id(), lgcode=lgcode,
                               juminhyo_code=self._new_code(), household_id=hh.id,
                               relationship=relationship, resident_since=born,
                               notified_on=notified_on)
            return self._commit(conn, lgcode, actor, ChangeKind.BIRTH, born, notified_on,
                                created=[r], drawn={r.id}, late_reason=data.get("late_reason"))

    def special_move_in(self, actor: StaffMember, lgcode: str,
                        data: dict[str, Any]) -> dict[str, Any]:
        """特例転入 (JR-0403): from the move-out data the departure municipality sent ahead;
        the departure's record then takes the earlier of the planned and the move-in date."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        occurred_on, notified_on = self._dates(data)
        assert notified_on is not None
        with self.db.tenant(lgcode) as conn:
            transfer = store.get_transfer(conn, str(data.get("transfer_id")), lgcode)
            if transfer is None or transfer["moved_in_on"] is not None:
                raise ValidationFailed([FieldError(
                    "transfer_id", "転出証明書情報が見つからないか、使用済みです。",
                    "No unused move-out data with this id was sent to this municipality.")])
            check_special_move_in(transfer["planned_on"], occurred_on, notified_on)
            person = dict(transfer["data"])
            parse_dates(person)
            joining = data.get("household_id")
            created_hh = []
            if joining:
                household_id = self._load_household(conn, lgcode, joining).id
                relationship = data.get("relationship")
                if relationship not in RELATIONSHIPS or relationship == HEAD:
                    raise ValidationFailed([FieldError("relationship", "続柄を選んでください。",
                                                       "relationship is required.")])
            else:
                require(validate_address(data.get("address"),
                                         self._towns_named(conn, lgcode, data.get("address"))))
                household_id, relationship = new_id(), HEAD
            r = build_resident(person, id=new_id(), lgcode=lgcode,
                               juminhyo_code=transfer["juminhyo_code"],
                               household_id=household_id, relationship=relationship,
                               resident_since=occurred_on, notified_on=notified_on)
            if not joining:
                created_hh.append(Household(household_id, lgcode,
                                            parse_address(data["address"]), r.id))
            result = self._commit(conn, lgcode, actor, ChangeKind.SPECIAL_MOVE_IN, occurred_on,
                                  notified_on, created=[r], created_hh=created_hh,
                                  detail={"transfer_id": transfer["id"],
                                          "from_lgcode": transfer["lgcode"]})
            self._notify_departure(conn, transfer, occurred_on, lgcode)
            return result

    def _notify_departure(self, conn: Connection, transfer: dict[str, Any], moved_in_on: date,
                          back_to: str) -> None:
        """転入通知: the departure municipality's record takes the earlier date."""
        departure = transfer["lgcode"]
        switch_tenant(conn, departure)
        store.mark_transfer_used(conn, transfer, moved_in_on)
        self._set_departure_date(conn, departure, transfer, min(moved_in_on,
                                                                transfer["planned_on"]))
        ledger.append(conn, departure, "registry.move_in_notice", transfer["id"],
                      {"transfer": transfer["id"], "to": back_to,
                       "moved_in_on": moved_in_on.isoformat()}, "system", self.clock.now())
        switch_tenant(conn, back_to)

    @staticmethod
    def _set_departure_date(conn: Connection, departure: str, transfer: dict[str, Any],
                            removed_on: date) -> None:
        r = store.get_resident(conn, departure, transfer["resident_id"])
        if r is None or r.removed_on == removed_on:
            return
        if not store.save_resident(conn, replace(r, removed_on=removed_on,
                                                 version=r.version + 1), r.version):
            raise Conflict("転出地の記録が更新中です。やり直してください。",
                           "The departure record changed meanwhile; try again.")

    def _undo_transfers(self, conn: Connection, lgcode: str, event: dict[str, Any]) -> None:
        """Cancelling a 転出 withdraws the data sent ahead (refused once it was used);
        cancelling a 特例転入 reopens it and gives the departure back its planned date."""
        detail = event["detail"]
        if event["kind"] == ChangeKind.MOVE_OUT.value:
            for transfer_id in detail.get("transfer_ids", []):
                transfer = store.get_own_transfer(conn, lgcode, transfer_id)
                if transfer is not None and transfer["moved_in_on"] is not None:
                    raise Conflict("転入地で特例転入が済んでいるため取り消せません。",
                                   "The destination has already recorded the move-in.",
                                   field="event_id")
                store.delete_transfer(conn, lgcode, transfer_id)
        elif event["kind"] == ChangeKind.SPECIAL_MOVE_IN.value:
            departure = detail["from_lgcode"]
            switch_tenant(conn, departure)
            transfer = store.get_own_transfer(conn, departure, detail["transfer_id"])
            if transfer is not None:
                store.reopen_transfer(conn, transfer)
                self._set_departure_date(conn, departure, transfer, transfer["planned_on"])
                ledger.append(conn, departure, "registry.move_in_notice_withdrawn",
                              transfer["id"], {"transfer": transfer["id"], "to": lgcode},
                              "system", self.clock.now())
            switch_tenant(conn, lgcode)

    # --- moves and household changes ---------------------------------------------------------

    def relocate(self, actor: StaffMember, lgcode: str, data: dict[str, Any]) -> dict[str, Any]:
        """転居 (JR-0404): a whole household, or some members forming a new household at the
        new address (`new_head_id`; `remaining_head_id` when the head leaves)."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        occurred_on, notified_on = self._dates(data)
        with self.db.tenant(lgcode) as conn:
            require(validate_address(data.get("address"),
                                     self._towns_named(conn, lgcode, data.get("address"))))
            address = parse_address(data["address"])
            hh = self._load_household(conn, lgcode, data.get("household_id"))
            current = store.members(conn, lgcode, hh.id)
            movers = self._movers(current, data.get("member_ids"))
            if address == hh.address:
                raise RuleViolation("新しい住所が現住所と同じです。",
                                    "The new address is the current address.", field="address")
            if len(movers) == len(current):
                new_hh = replace(hh, address=address, version=hh.version + 1)
                updated = [(m, replace(m, address_since=occurred_on, notified_on=notified_on,
                                       version=m.version + 1)) for m in movers]
                return self._commit(conn, lgcode, actor, ChangeKind.RELOCATION, occurred_on,
                                    notified_on, updated=updated, updated_hh=[(hh, new_hh)],
                                    late_reason=data.get("late_reason"))
            return self._split(conn, lgcode, actor, ChangeKind.RELOCATION, hh, current, movers,
                               data, address, occurred_on, notified_on)

    @staticmethod
    def _movers(current: list[Resident], ids: Any) -> list[Resident]:
        if ids is None:
            return current
        by_id = {m.id: m for m in current}
        if not isinstance(ids, list) or not ids or any(i not in by_id for i in ids):
            raise ValidationFailed([FieldError("member_ids", "世帯員の指定が不正です。",
                                               "member_ids must name members of the household.")])
        return [by_id[i] for i in dict.fromkeys(ids)]

    def _split(self, conn: Connection, lgcode: str, actor: StaffMember, kind: ChangeKind,
               hh: Household, current: list[Resident], movers: list[Resident],
               data: dict[str, Any], address: Address, occurred_on: date,
               notified_on: date | None) -> dict[str, Any]:
        mover_ids = {m.id for m in movers}
        new_head_id = data.get("new_head_id")
        if new_head_id not in mover_ids:
            raise ValidationFailed([FieldError("new_head_id", "新しい世帯の世帯主を選んでください。",
                                               "new_head_id must be one of the moving members.")])
        stayers = [m for m in current if m.id not in mover_ids]
        remaining_head: Any = hh.head_id
        if hh.head_id in mover_ids:
            remaining_head = data.get("remaining_head_id")
            if remaining_head not in {m.id for m in stayers}:
                raise ValidationFailed([FieldError(
                    "remaining_head_id", "残る世帯の世帯主を選んでください。",
                    "remaining_head_id must be one of the members who stay.")])
        relationships = data.get("relationships") or {}
        new_hh = Household(new_id(), lgcode, address, str(new_head_id))
        updated = []
        for m in movers:
            rel = HEAD if m.id == new_head_id else relationships.get(m.id, m.relationship)
            if rel not in RELATIONSHIPS or (rel == HEAD and m.id != new_head_id):
                raise ValidationFailed([FieldError(f"relationships.{m.id}", "続柄が不正です。",
                                                   "relationship is not allowed.")])
            moved = address != hh.address
            updated.append((m, replace(
                m, household_id=new_hh.id, relationship=rel, version=m.version + 1,
                address_since=occurred_on if moved else m.address_since,
                notified_on=notified_on if moved else m.notified_on)))
        for m in stayers:
            if m.id == remaining_head and m.relationship != HEAD:
                updated.append((m, replace(m, relationship=HEAD, version=m.version + 1)))
        updated_hh = []
        if remaining_head != hh.head_id:
            updated_hh.append((hh, replace(hh, head_id=str(remaining_head),
                                           version=hh.version + 1)))
        return self._commit(conn, lgcode, actor, kind, occurred_on, notified_on,
                            updated=updated, created_hh=[new_hh], updated_hh=updated_hh,
                            detail={"from_household": hh.id, "to_household": new_hh.id},
                            late_reason=data.get("late_reason"))

    def split_household(self, actor: StaffMember, lgcode: str,
                        data: dict[str, Any]) -> dict[str, Any]:
        """世帯分離 (JR-0408): members form a new household at the same address."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        occurred_on, notified_on = self._dates(data)
        with self.db.tenant(lgcode) as conn:
            hh = self._load_household(conn, lgcode, data.get("household_id"))
            current = store.members(conn, lgcode, hh.id)
            movers = self._movers(current, data.get("member_ids"))
            if len(movers) == len(current):
                raise ValidationFailed([FieldError("member_ids", "全員を分離することはできません。",
                                                   "A split must leave someone behind.")])
            return self._split(conn, lgcode, actor, ChangeKind.HOUSEHOLD_SPLIT, hh, current,
                               movers, data, hh.address, occurred_on, notified_on)

    def merge_households(self, actor: StaffMember, lgcode: str,
                         data: dict[str, Any]) -> dict[str, Any]:
        """世帯合併 (JR-0409): every member of `other_household_id` joins `household_id`;
        `relationships` gives each incoming member's relationship to the remaining head."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        occurred_on, notified_on = self._dates(data)
        relationships = data.get("relationships")
        if not isinstance(relationships, dict):
            raise ValidationFailed([FieldError("relationships", "続柄を入力してください。",
                                               "relationships is required.")])
        with self.db.tenant(lgcode) as conn:
            hh = self._load_household(conn, lgcode, data.get("household_id"))
            other = self._load_household(conn, lgcode, data.get("other_household_id"),
                                         "other_household_id")
            if other.id == hh.id:
                raise ValidationFailed([FieldError("other_household_id", "同じ世帯です。",
                                                   "Cannot merge a household into itself.")])
            incoming = store.members(conn, lgcode, other.id)
            updated = []
            for m in incoming:
                rel = relationships.get(m.id)
                if rel not in RELATIONSHIPS or rel == HEAD:
                    raise ValidationFailed([FieldError(
                        f"relationships.{m.id}", "世帯主との続柄を入力してください。",
                        "Each incoming member needs a relationship to the head.")])
                moved = other.address != hh.address
                updated.append((m, replace(
                    m, household_id=hh.id, relationship=rel, version=m.version + 1,
                    address_since=occurred_on if moved else m.address_since)))
            closed = replace(other, status=Status.REMOVED, version=other.version + 1)
            return self._commit(conn, lgcode, actor, ChangeKind.HOUSEHOLD_MERGE, occurred_on,
                                notified_on, updated=updated, updated_hh=[(other, closed)],
                                detail={"into": hh.id, "closed": other.id})

    def change_head(self, actor: StaffMember, lgcode: str, data: dict[str, Any]) -> dict[str, Any]:
        """世帯主変更 (JR-0410). `relationships` re-states members' relationships to the new
        head; the former head's is required."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        occurred_on, notified_on = self._dates(data)
        relationships = data.get("relationships") or {}
        with self.db.tenant(lgcode) as conn:
            hh = self._load_household(conn, lgcode, data.get("household_id"))
            current = {m.id: m for m in store.members(conn, lgcode, hh.id)}
            new_head = data.get("new_head_id")
            if new_head not in current or new_head == hh.head_id:
                raise ValidationFailed([FieldError("new_head_id", "新しい世帯主を選んでください。",
                                                   "new_head_id must be another member.")])
            if relationships.get(hh.head_id) in (None, HEAD):
                raise ValidationFailed([FieldError(
                    f"relationships.{hh.head_id}", "前世帯主の続柄を入力してください。",
                    "Give the former head's relationship to the new head.")])
            updated = []
            for m in current.values():
                rel = HEAD if m.id == new_head else relationships.get(m.id, m.relationship)
                if rel not in RELATIONSHIPS or (rel == HEAD and m.id != new_head):
                    raise ValidationFailed([FieldError(f"relationships.{m.id}", "続柄が不正です。",
                                                       "relationship is not allowed.")])
                if rel != m.relationship:
                    updated.append((m, replace(m, relationship=rel, version=m.version + 1)))
            new_hh = replace(hh, head_id=str(new_head), version=hh.version + 1)
            return self._commit(conn, lgcode, actor, ChangeKind.HEAD_CHANGE, occurred_on,
                                notified_on, updated=updated, updated_hh=[(hh, new_hh)])

    # --- removals ---------------------------------------------------------------------------

    def _remove(self, conn: Connection, lgcode: str, hh_members: dict[str, list[Resident]],
                leaving: list[Resident], on: date, reason: str,
                remaining_heads: dict[str, Any]) -> tuple[list[tuple[Resident, Resident]],
                                                          list[tuple[Household, Household]]]:
        leaving_ids = {r.id for r in leaving}
        updated = [(r, remove(r, on, reason)) for r in leaving]
        updated_hh = []
        for household_id, current in hh_members.items():
            hh = self._load_household(conn, lgcode, household_id)
            stayers = [m for m in current if m.id not in leaving_ids]
            if not stayers:
                updated_hh.append((hh, replace(hh, status=Status.REMOVED,
                                               version=hh.version + 1)))
            elif hh.head_id in leaving_ids:
                new_head = remaining_heads.get(household_id)
                if new_head not in {m.id for m in stayers}:
                    raise ValidationFailed([FieldError(
                        "remaining_head_id", "残る世帯の新しい世帯主を選んでください。",
                        "The head leaves: name the new head among those who stay.")])
                heir = next(m for m in stayers if m.id == new_head)
                updated.append((heir, replace(heir, relationship=HEAD,
                                              version=heir.version + 1)))
                updated_hh.append((hh, replace(hh, head_id=heir.id, version=hh.version + 1)))
        return updated, updated_hh

    def _leaving(self, conn: Connection, lgcode: str, ids: Any, kind: ChangeKind
                 ) -> tuple[list[Resident], dict[str, list[Resident]]]:
        if not isinstance(ids, list) or not ids:
            raise ValidationFailed([FieldError("resident_ids", "対象の住民を選んでください。",
                                               "resident_ids is required.")])
        leaving = [self._load(conn, lgcode, i, kind, "resident_ids") for i in dict.fromkeys(ids)]
        households = {r.household_id: store.members(conn, lgcode, r.household_id)
                      for r in leaving}
        return leaving, households

    def move_out(self, actor: StaffMember, lgcode: str, data: dict[str, Any]) -> dict[str, Any]:
        """転出 (JR-0405): removes the records as of the planned date and produces the move-out
        certificate data (転出証明書情報); sent ahead when the destination is on Kiban."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        errors = parse_dates(data)
        errors += _need(data, "planned_on", date, "転出予定日")
        errors += _need(data, "notified_on", date, "届出日")
        if not str(data.get("destination") or "").strip():
            errors.append(FieldError("destination", "転出先を入力してください。",
                                     "destination is required."))
        dest = data.get("dest_lgcode")
        if dest and not (isinstance(dest, str) and is_valid_lgcode(dest)):
            errors.append(FieldError("dest_lgcode", "転出先の地方公共団体コードが不正です。",
                                     "dest_lgcode is not a valid 地方公共団体コード."))
        if dest == lgcode:
            errors.append(FieldError("dest_lgcode", "同じ市区町村内の移動は転居です。",
                                     "A move within the municipality is a relocation."))
        require(errors)
        planned, notified = data["planned_on"], data["notified_on"]
        today = self.today()
        if notified > today:
            raise RuleViolation("届出日が未来の日付です。", "The notice date is in the future.",
                                field="notified_on")
        if planned > today + timedelta(days=30):
            raise RuleViolation("転出予定日が先すぎます(30日以内)。",
                                "The planned date must be within 30 days.", field="planned_on")
        abroad = bool(data.get("abroad"))
        with self.db.tenant(lgcode) as conn:
            leaving, households = self._leaving(conn, lgcode, data.get("resident_ids"),
                                                ChangeKind.MOVE_OUT)
            remaining = {r.household_id: data.get("remaining_head_id") for r in leaving}
            updated, updated_hh = self._remove(conn, lgcode, households, leaving, planned,
                                               "国外転出" if abroad else "転出", remaining)
            towns = store.town_names(conn, lgcode)
            certificates = []
            for r in leaving:
                hh = store.get_household(conn, lgcode, r.household_id)
                cert = self._moveout_data(r, hh, towns, data, planned)
                certificates.append(cert)
            transfers = [new_id() for _ in leaving] if dest and not abroad else []
            result = self._commit(conn, lgcode, actor, ChangeKind.MOVE_OUT, planned, notified,
                                  updated=updated, updated_hh=updated_hh,
                                  detail={"destination": data["destination"], "abroad": abroad,
                                          "dest_lgcode": dest or "", "transfer_ids": transfers,
                                          "late": is_late_notice(planned, notified)})
            for transfer_id, r, cert in zip(transfers, leaving, certificates, strict=False):
                store.insert_transfer(conn, {
                    "lgcode": lgcode, "id": transfer_id, "dest_lgcode": dest,
                    "resident_id": r.id, "juminhyo_code": r.juminhyo_code,
                    "data": cert["person"], "planned_on": planned, "moved_in_on": None})
            result["moveout_certificates"] = certificates
            result["transfer_ids"] = transfers
            return result

    @staticmethod
    def _moveout_data(r: Resident, hh: Household | None, towns: dict[str, str],
                      data: dict[str, Any], planned: date) -> dict[str, Any]:
        person = {k: v for k, v in snapshot(r).items() if k in {
            "family_name", "given_name", "family_kana", "given_kana", "birth_date", "sex",
            "my_number", "former_surname", "honseki", "hittosha", "foreign"}}
        address = Registry.address_view(hh.address, towns)["text"] if hh else ""
        person["previous_address"] = address
        return {"juminhyo_code": r.juminhyo_code, "person": person,
                "address": address, "relationship": r.relationship,
                "planned_on": planned.isoformat(), "destination": data["destination"]}

    def death(self, actor: StaffMember, lgcode: str, data: dict[str, Any]) -> dict[str, Any]:
        """死亡 (JR-0407). `remaining_head_id` names the new head when the head dies."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        occurred_on, notified_on = self._dates(data)
        with self.db.tenant(lgcode) as conn:
            leaving, households = self._leaving(conn, lgcode, [data.get("resident_id")],
                                                ChangeKind.DEATH)
            remaining = {leaving[0].household_id: data.get("remaining_head_id")}
            updated, updated_hh = self._remove(conn, lgcode, households, leaving, occurred_on,
                                               "死亡", remaining)
            return self._commit(conn, lgcode, actor, ChangeKind.DEATH, occurred_on, notified_on,
                                updated=updated, updated_hh=updated_hh,
                                late_reason=data.get("late_reason"))

    def authority_removal(self, actor: StaffMember, lgcode: str,
                          data: dict[str, Any]) -> dict[str, Any]:
        """職権消除 (JR-0412), for instance after a residence survey (実態調査)."""
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        occurred_on, _ = self._dates(data, notified=False)
        reason = str(data.get("reason") or "").strip()
        if not reason:
            raise ValidationFailed([FieldError("reason", "職権消除の理由を入力してください。",
                                               "reason is required.")])
        with self.db.tenant(lgcode) as conn:
            leaving, households = self._leaving(conn, lgcode, data.get("resident_ids"),
                                                ChangeKind.AUTHORITY_REMOVAL)
            remaining = {r.household_id: data.get("remaining_head_id") for r in leaving}
            updated, updated_hh = self._remove(conn, lgcode, households, leaving, occurred_on,
                                               "職権消除", remaining)
            return self._commit(conn, lgcode, actor, ChangeKind.AUTHORITY_REMOVAL, occurred_on,
                                None, updated=updated, updated_hh=updated_hh,
                                detail={"reason": reason})

    def correct(self, actor: StaffMember, lgcode: str, data: dict[str, Any]) -> dict[str, Any]:
        """職権修正 (JR-0413): corrects recorded items, of a removed record too."""
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        updates = data.get("updates")
        reason = str(data.get("reason") or "").strip()
        errors = []
        if not isinstance(updates, dict) or not updates:
            errors.append(FieldError("updates", "修正内容を入力してください。",
                                     "updates is required."))
        if not reason:
            errors.append(FieldError("reason", "修正の理由を入力してください。",
                                     "reason is required."))
        require(errors)
        assert isinstance(updates, dict)
        errors = parse_dates(updates, "updates.")
        require(errors)
        with self.db.tenant(lgcode) as conn:
            r = self._load(conn, lgcode, data.get("resident_id"),
                           ChangeKind.AUTHORITY_CORRECTION)
            detail: dict[str, Any] = {"reason": reason, "fields": sorted(updates)}
            if "foreign" in updates:
                updates = dict(updates)
                updates["foreign"], detail["foreign_fields"] = self._foreign_update(
                    r, updates["foreign"])
            merged = {**snapshot(r), **updates}
            parse_dates(merged)
            field_errors = [e for e in validate_person(merged, self.today())
                            if e.field.split(".")[0] in updates]
            for e in field_errors:
                e.field = f"updates.{e.field}"
            require(field_errors)
            if "relationship" in updates and (updates["relationship"] == HEAD) != r.is_head:
                raise RuleViolation("世帯主の変更は世帯主変更で行います。",
                                    "Use a change of head to change who heads the household.",
                                    field="updates.relationship")
            new = correct(r, updates)
            return self._commit(conn, lgcode, actor, ChangeKind.AUTHORITY_CORRECTION,
                                self.today(), None, updated=[(r, new)], detail=detail)

    @staticmethod
    def _foreign_update(r: Resident, update: Any) -> tuple[dict[str, Any], list[str]]:
        """JR-0422: a change of a foreign resident's 在留資格, 在留期間 and its expiry, or 在留カード
        等の番号 (also on notice from the Minister of Justice, 30条の50). The items given are
        merged into the record's; the whole is validated as at entry. Returns the merged
        items and the names of those that change (the event keeps before and after)."""
        if r.foreign is None:
            raise RuleViolation("外国人住民ではないため在留情報は記載できません。",
                                "This resident is not a foreign resident.",
                                field="updates.foreign")
        if not isinstance(update, dict) or not update:
            raise ValidationFailed([FieldError("updates.foreign", "在留情報の変更内容を入力してください。",
                                               "updates.foreign must be an object of items.")])
        current = snapshot(r)["foreign"]
        current["expiry"] = r.foreign.expiry
        merged = {**current, **update}
        changed = sorted(k for k in update if merged.get(k) != current.get(k))
        return merged, changed

    def change_juminhyo_code(self, actor: StaffMember, lgcode: str,
                             data: dict[str, Any]) -> dict[str, Any]:
        """住民票コードの変更請求 (JR-0421, 住基法30条の4): on the resident's request, a new code
        drawn at random; the old one stays in the change history and finds nothing any more."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        errors = parse_dates(data)
        errors += _need(data, "notified_on", date, "請求日")
        reason = data.get("reason") or ""
        if not isinstance(reason, str) or len(reason) > 200:
            errors.append(FieldError("reason", "理由が不正です。", "reason is invalid."))
        require(errors)
        notified_on = data["notified_on"]
        check_dates(self.today(), notified_on, self.today())
        with self.db.tenant(lgcode) as conn:
            r = self._load(conn, lgcode, data.get("resident_id"), ChangeKind.JUMINHYO_CODE_CHANGE)
            if r.status is not Status.ACTIVE:
                raise RuleViolation("消除された住民票のコードは変更できません。",
                                    "A removed record's code cannot be changed.",
                                    field="resident_id")
            for _ in range(20):
                code = self._new_code()
                if code != r.juminhyo_code and not store.juminhyo_code_taken(conn, lgcode, code):
                    break
            else:
                raise RuleViolation("住民票コードを採番できませんでした。", "No free 住民票コード was found.")
            new = change_juminhyo_code(r, code)
            return self._commit(conn, lgcode, actor, ChangeKind.JUMINHYO_CODE_CHANGE,
                                notified_on, notified_on, updated=[(r, new)],
                                detail={"reason": reason.strip()})

    def cancel(self, actor: StaffMember, lgcode: str, data: dict[str, Any]) -> dict[str, Any]:
        """異動の取消 (JR-0414): restores every row the change wrote, if nothing has changed
        them since; the cancelled change stays in the history, marked."""
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        reason = str(data.get("reason") or "").strip()
        if not reason:
            raise ValidationFailed([FieldError("reason", "取消しの理由を入力してください。",
                                               "reason is required.")])
        with self.db.tenant(lgcode) as conn:
            event = store.get_event(conn, lgcode, str(data.get("event_id")))
            if event is None:
                raise ValidationFailed([FieldError("event_id", "異動が見つかりません。",
                                                   "No such change.")])
            if event["cancelled_by"] or event["kind"] == ChangeKind.CANCELLATION.value:
                raise Conflict("この異動は取り消せません(取消済みまたは取消し)。",
                               "This change is already cancelled or is a cancellation.",
                               field="event_id")
            updated = _restore(event, "residents", resident_from_snapshot,
                               lambda rid: store.get_resident(conn, lgcode, rid))
            updated_hh = _restore(event, "households", household_from_snapshot,
                                  lambda hid: store.get_household(conn, lgcode, hid))
            self._undo_transfers(conn, lgcode, event)
            result = self._commit(conn, lgcode, actor, ChangeKind.CANCELLATION, self.today(),
                                  None, updated=updated, updated_hh=updated_hh,
                                  detail={"reason": reason, "cancelled": event["id"]},
                                  cancels=event["id"])
            store.mark_cancelled(conn, lgcode, event["id"], result["event_id"])
            return result

    # --- 特例転入: the destination's view of data sent ahead ------------------------------------

    def incoming_transfers(self, actor: StaffMember, lgcode: str,
                           juminhyo_code: str | None = None) -> list[dict[str, Any]]:
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        with self.db.tenant(lgcode) as conn:
            rows = store.transfers_to(conn, lgcode, juminhyo_code)
        return [{"id": t["id"], "from_lgcode": t["lgcode"], "juminhyo_code": t["juminhyo_code"],
                 "planned_on": t["planned_on"].isoformat(),
                 "name": f"{t['data']['family_name']} {t['data']['given_name']}"} for t in rows]

    # --- dashboard ----------------------------------------------------------------------------

    def dashboard(self, actor: StaffMember, lgcode: str) -> dict[str, Any]:
        """Counts and a population pyramid (5-year bands by sex) drawn from the registry."""
        actor.require(Permission.DASHBOARD, lgcode)
        today = self.today()
        bands: dict[int, list[int]] = {b: [0, 0] for b in range(0, 101, 5)}
        with self.db.tenant(lgcode) as conn:
            for birth, sex, count in store.population(conn, lgcode):
                age = today.year - birth.year - ((today.month, today.day) <
                                                 (birth.month, birth.day))
                band = min(age // 5 * 5, 100)
                bands[band][0 if sex == "1" else 1] += count
            counts = store.counts(conn, lgcode)
        pyramid = [{"band": f"{b}-{b + 4}" if b < 100 else "100+", "male": m, "female": f}
                   for b, (m, f) in sorted(bands.items())]
        return {**counts, "pyramid": pyramid, "as_of": today.isoformat()}

    def taxpayers_on(self, lgcode: str, day: date, first_id: str | None = None,
                     last_id: str | None = None) -> list[tuple[Any, ...]]:
        """The residents on `day` (for the resident tax: 1 January, the 賦課期日, 地方税法
        294条 1項 and 2項: the 住民基本台帳 decides who is a taxpayer), as tuples (id,
        juminhyo_code, my_number, family_name, given_name, birth_date, sex, town_code, banchi,
        katagaki), ids in [first_id, last_id], in id order. A system-to-system read for the
        tax office's batch, so it takes no staff member; inside a unit of work for `lgcode`
        it reads in that transaction."""
        with self.db.tenant(lgcode) as conn:
            return store.residents_on(conn, lgcode, day, first_id, last_id)

    def population_by_town(self, lgcode: str) -> dict[str, Any]:
        """Active residents counted by 町字, 5-year age band (100+ last) and sex, as of today:
        counts only, never a person, for the open dataset 地域・年齢別人口 (which suppresses
        small cells before publishing). A system read for a scheduled job, so no staff member.
        Returns {"as_of", "towns": {code: name}, "counts": [(town_code, band, sex, n)]}."""
        today = self.today()
        cells: dict[tuple[str, int, str], int] = {}
        with self.db.tenant(lgcode) as conn:
            for town, birth, sex, count in store.population_by_town(conn, lgcode):
                age = today.year - birth.year - ((today.month, today.day) <
                                                 (birth.month, birth.day))
                key = (town, min(max(age, 0) // 5 * 5, 100), sex)
                cells[key] = cells.get(key, 0) + count
            names = store.town_names(conn, lgcode)
        return {"as_of": today.isoformat(), "towns": names,
                "counts": [(t, b, s, n) for (t, b, s), n in sorted(cells.items())]}

    # --- certificates (JR-0501..0505) ---------------------------------------------------------

    def issue_certificate(self, actor: StaffMember, lgcode: str,
                          data: dict[str, Any]) -> tuple[str, bytes]:
        """住民票の写し (household-list or individual form; by default the municipality's
        choice, JR-0504), 除票の写し, or 住民票記載事項証明書 of the requested items only
        (JR-0506), as PDF. Each has a serial, and its issue is recorded with a hash of the
        document and who asked (JR-0505: a third party's name and purpose). A resident under a
        支援措置 suppression gets none by this procedure (JR-0302)."""
        actor.require(Permission.CERTIFICATE_ISSUE, lgcode)
        kind = data.get("kind") or "juminhyo"
        form = data.get("form")
        ids: list[str] = [str(i) for i in data.get("resident_ids") or []]
        errors = []
        if kind not in ("juminhyo", "joshu", "kisai_jiko"):
            errors.append(FieldError("kind", "証明書の種類が不正です。", "kind is invalid."))
        if form is not None and form not in CERTIFICATE_FORMS:
            errors.append(FieldError("form", "様式が不正です。", "form is invalid."))
        if not ids:
            errors.append(FieldError("resident_ids", "対象の住民を選んでください。",
                                     "resident_ids is required."))
        items = data.get("items")
        if kind == "kisai_jiko":
            errors += validate_kisai_items(items)
        elif items is not None:
            errors.append(FieldError("items", "証明する事項は記載事項証明書でのみ指定します。",
                                     "items are given only for kind 'kisai_jiko'."))
        requester = data.get("requester")
        errors += validate_requester(requester, bool(data.get("my_number")))
        require(errors)
        options = {k: bool(data.get(k, k == "head_and_relationship")) for k in
                   ("head_and_relationship", "honseki", "juminhyo_code", "my_number")}
        if kind == "kisai_jiko":  # only the items asked for; never the 個人番号
            options = {k: False for k in options}
        if options["my_number"] and not actor.can(Permission.MY_NUMBER_READ):
            raise Forbidden("個人番号入りの写しを交付する権限がありません。",
                            "Your roles do not allow certificates with the 個人番号.")
        if requester is not None:
            requester = {"kind": requester["kind"],
                         "name": str(requester.get("name") or "").strip(),
                         "purpose": str(requester.get("purpose") or "").strip()}
        want = Status.REMOVED if kind == "joshu" else Status.ACTIVE
        signer = self.document_signer(lgcode)
        with self.db.tenant(lgcode) as conn:
            muni = Municipalities.get_in(conn, lgcode)
            if form is None:
                form = muni["settings"].get("certificate_default_form", "household")
            rows = store.get_residents(conn, lgcode, dict.fromkeys(ids))
            if len(rows) != len(set(ids)) or any(r.status is not want for r in rows):
                raise ValidationFailed([FieldError(
                    "resident_ids",
                    "対象の住民が見つかりません(除票は除票の写しで交付します)。",
                    "No such residents in this state (removed records need kind 'joshu').")])
            if form == "household" and len({r.household_id for r in rows}) != 1:
                raise ValidationFailed([FieldError(
                    "resident_ids", "世帯連記式は同じ世帯の住民だけを記載します。",
                    "The household form lists members of one household only.")])
            # The household shares the address (and its head's name prints on every copy):
            # a suppression on any member of the household keeps every copy from the normal
            # procedure, not only the suppressed person's own.
            household_ids = {r.id for h in {r.household_id for r in rows}
                             for r in store.members(conn, lgcode, h)}
            if store.suppressed_among(conn, lgcode, set(ids) | household_ids, self.today()):
                raise Forbidden(
                    "支援措置による抑止中の住民が含まれるため、通常の手順では交付できません(JR-0302)。",
                    "A resident under a support-measure suppression is included: no certificate "
                    "by the normal procedure (JR-0302).")
            hh = store.get_household(conn, lgcode, rows[0].household_id)
            towns = store.town_names(conn, lgcode)
            head = store.get_resident(conn, lgcode, hh.head_id) if hh else None
            issued = self.clock.now()
            year = today_jst(self.clock)
            serial = f"{year.year}-{store.next_counter(conn, lgcode, f'cert-{year.year}'):06d}"
            cert = {
                "kind": kind, "form": form, "serial": serial, "issued_on": year,
                "municipality": {"name": muni["name"], "prefecture": muni["prefecture"],
                                 "lgcode": lgcode,
                                 "issuer_title": muni["settings"]["certificate_issuer_title"],
                                 "issuer_name": muni["settings"]["certificate_issuer_name"]},
                "address": self.address_view(hh.address, towns)["text"] if hh else "",
                "head_name": head.full_name if head else "",
                "options": options,
                "items": list(dict.fromkeys(items)) if kind == "kisai_jiko" and items else [],
                "residents": [{**snapshot(r), **{k: getattr(r, k) for k in (
                    "birth_date", "resident_since", "address_since", "notified_on",
                    "removed_on")}, "foreign": r.foreign and {
                        **snapshot(r)["foreign"], "expiry": r.foreign.expiry},
                    "full_name": r.full_name, "full_kana": r.full_kana} for r in rows],
            }
            try:
                pdf = juminhyo.render(cert)
            except ValueError as exc:  # e.g. a character the embedded font lacks
                raise RuleViolation("証明書を印字できない内容があります(外字など)。窓口で個別に対応してください。",
                                    f"The certificate cannot be printed: {exc}",
                                    field="resident_ids") from exc
            recorded_options: dict[str, Any] = {**options, "form": form,
                                                "fee": muni["settings"]["certificate_fee"]}
            if kind == "kisai_jiko":
                recorded_options["items"] = cert["items"]
            pdf = self._seal(conn, actor, muni, signer, pdf, {
                "serial": serial, "kind": kind, "resident_ids": list(ids),
                "options": recorded_options, "issued_at": issued, "requester": requester},
                "registry.certificate_issued", {
                    "kind": kind, "residents": list(ids), "options": options, "form": form,
                    "fee": muni["settings"]["certificate_fee"],
                    "requester": requester["kind"] if requester else None})
            self._log(conn, lgcode, actor, "certificate", ids, serial)
            return serial, pdf

    # --- signed documents and their verification (issue 5 part 6) ----------------------------

    def _seal(self, conn: Connection, actor: StaffMember, muni: dict[str, Any],
              signer: signing.SigningKey, pdf: bytes, row: dict[str, Any], event: str,
              payload: dict[str, Any]) -> bytes:
        """Sign a rendered document (its verification code covers the unsigned PDF), record
        it so /verify can vouch for it, and append the issue to the ledger."""
        lgcode, serial = muni["lgcode"], row["serial"]
        sha = hashlib.sha256(pdf).hexdigest()
        code = verification_code(self.db.settings.secret_key, lgcode, serial, sha)
        signed = signing.sign(pdf, signer, lgcode, serial, code,
                              f"{muni['prefecture']}{muni['name']}")
        signed_sha = hashlib.sha256(signed).hexdigest()
        store.insert_certificate(conn, {"requester": None, **row, "lgcode": lgcode,
                                        "content_hash": sha, "issued_by": actor.id,
                                        "signed_hash": signed_sha})
        ledger.append(conn, lgcode, event, serial,
                      {**payload, "sha256": sha, "signed_sha256": signed_sha}, actor.id,
                      row["issued_at"])
        return signed

    def issue_document(self, actor: StaffMember, lgcode: str, kind: str, resident_ids: list[str],
                       render: Callable[[str, date], bytes], options: dict[str, Any]
                       ) -> tuple[str, bytes]:
        """Another domain's certificate (the 課税証明書, say) issued like a registry one: a
        serial from the same sequence, PAdES-signed with the municipality's document key,
        recorded so that /verify vouches for it and a supervisor can withdraw it. `render`
        gets the serial and issue date and returns the unsigned PDF; the caller has checked the
        actor's role for the document, the registry checks only the municipality."""
        if actor.lgcode != lgcode or kind not in OTHER_DOCUMENT_KINDS:
            raise Forbidden("この地方公共団体の証明書は交付できません。",
                            "You cannot issue this municipality's documents.")
        signer = self.document_signer(lgcode)
        with self.db.tenant(lgcode) as conn:
            muni = Municipalities.get_in(conn, lgcode)
            issued = self.clock.now()
            year = today_jst(self.clock)
            serial = f"{year.year}-{store.next_counter(conn, lgcode, f'cert-{year.year}'):06d}"
            try:
                pdf = render(serial, year)
            except ValueError as exc:
                raise RuleViolation("証明書を印字できない内容があります(外字など)。",
                                    f"The document cannot be printed: {exc}") from exc
            signed = self._seal(conn, actor, muni, signer, pdf, {
                "serial": serial, "kind": kind, "resident_ids": list(resident_ids),
                "options": options, "issued_at": issued},
                "registry.document_issued", {"kind": kind, "residents": list(resident_ids),
                                             "options": options})
            return serial, signed


    def document_signer(self, lgcode: str) -> signing.SigningKey:
        """The municipality's document-signing key: the configured one (production needs it),
        else, in test and demo mode, the newest stored one, issued by the test CA on first use.
        Every certificate used is recorded, so documents signed before a key change verify."""
        mode = self.db.settings.mode
        configured = None
        try:
            configured = identity.configured_document_key(lgcode)
            if configured is None and mode == "production":
                identity.document_key(lgcode, "", mode)  # raises: never a default key
        except identity.IdentityError as exc:
            raise RuleViolation("文書署名鍵が設定されていないため、証明書を交付できません。",
                                f"Certificates cannot be issued: {exc}") from exc
        with self.db.tenant(lgcode) as conn:
            if configured is not None:
                row = _key_row(lgcode, configured, self.clock)
                if not any(k["fingerprint"] == row["fingerprint"] for k in store.document_keys(conn, lgcode)):
                    store.add_document_key(conn, {**row, "private_key": None})
                return self._signing_key(lgcode, row["fingerprint"], configured.key_pem,
                                         configured.certificate_pem, configured.chain_pem)
            keys = [k for k in store.document_keys(conn, lgcode) if k["private_key"]]
            if keys:
                k = keys[0]
                return self._signing_key(lgcode, k["fingerprint"], k["private_key"].encode(),
                                         k["certificate"].encode(), k["chain"].encode())
            muni = Municipalities.get_in(conn, lgcode)
        try:
            made = identity.document_key(lgcode, f"{muni['prefecture']}{muni['name']}", mode, clock=self.clock)
        except identity.IdentityError as exc:
            raise RuleViolation("文書署名鍵を用意できません。", f"No document-signing key: {exc}") from exc
        with self.db.tenant(lgcode) as conn:
            store.add_document_key(conn, _key_row(lgcode, made, self.clock))
            k = next(k for k in store.document_keys(conn, lgcode) if k["private_key"])
        return self._signing_key(lgcode, k["fingerprint"], k["private_key"].encode(), k["certificate"].encode(),
                                 k["chain"].encode())

    def _signing_key(self, lgcode: str, fingerprint: str, key_pem: bytes, cert_pem: bytes,
                     chain_pem: bytes) -> signing.SigningKey:
        cached = self._signing_keys.get((lgcode, fingerprint))
        if cached is None:
            key = serialization.load_pem_private_key(key_pem, None)
            assert isinstance(key, rsa.RSAPrivateKey)
            chain = tuple(x509.load_pem_x509_certificates(chain_pem)) if chain_pem.strip() else ()
            cached = signing.SigningKey(key, x509.load_pem_x509_certificate(cert_pem), chain)
            self._signing_keys[(lgcode, fingerprint)] = cached
        return cached

    def withdraw_certificate(self, actor: StaffMember, lgcode: str, serial: str,
                             reason: str) -> dict[str, Any]:
        """Withdraw an issued certificate (a supervisor's act): /verify then reports it withdrawn."""
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        reason = (reason or "").strip()
        if not reason or len(reason) > 200:
            raise ValidationFailed([FieldError("reason", "取消しの理由を200字以内で入力してください。",
                                               "A reason of at most 200 characters is required.")])
        with self.db.tenant(lgcode) as conn:
            row = store.get_certificate(conn, lgcode, serial)
            if row is None:
                raise NotFound("その証明書はありません。", "No such certificate.")
            if row["withdrawn_at"] is not None:
                raise Conflict("この証明書はすでに取り消されています。", "The certificate is already withdrawn.")
            now = self.clock.now()
            store.withdraw_certificate(conn, lgcode, serial, {
                "withdrawn_at": now, "withdrawn_by": actor.id, "withdrawal_reason": reason})
            ledger.append(conn, lgcode, "registry.certificate_withdrawn", serial, {"reason": reason},
                          actor.id, now)
            return {"serial": serial, "withdrawn_at": now.isoformat(), "withdrawn_by": actor.id,
                    "withdrawal_reason": reason}

    def verify_code(self, lgcode: str, serial: str, code: str) -> dict[str, Any]:
        """Public: is `code` the verification code of certificate `serial`? A wrong code and an
        unknown serial get the same answer, so the answer does not tell whether a serial exists."""
        row = None
        if is_valid_lgcode(lgcode) and 0 < len(serial) <= 20:
            with self.db.tenant(lgcode) as conn:
                row = store.get_certificate(conn, lgcode, serial)
                muni = Municipalities.get_in(conn, lgcode) if row else None
        expected = verification_code(self.db.settings.secret_key, lgcode, serial,
                                     row["content_hash"] if row else "0" * 64)
        given = "".join(ch for ch in code.upper() if ch.isalnum())
        matches = hmac.compare_digest(expected.replace("-", "").encode(), given.encode()[:64])
        if row is None or not matches or not row.get("signed_hash"):
            return {"authentic": False, "reason": "no_match"}
        return _verdict(row, muni, None)

    def verify_pdf(self, pdf: bytes) -> dict[str, Any]:
        """Public: is this PDF a certificate this platform issued, unaltered, and still in force?"""
        def pinned(lgcode: str) -> list[x509.Certificate]:
            if not is_valid_lgcode(lgcode):
                return []
            with self.db.tenant(lgcode) as conn:
                return [x509.load_pem_x509_certificate(k["certificate"].encode())
                        for k in store.document_keys(conn, lgcode)]

        result = signing.inspect(pdf, pinned)
        if not result.ok or result.lgcode is None or result.serial is None:
            return {"authentic": False, "reason": result.reason}
        with self.db.tenant(result.lgcode) as conn:
            row = store.get_certificate(conn, result.lgcode, result.serial)
            muni = Municipalities.get_in(conn, result.lgcode) if row else None
        if row is None or row.get("signed_hash") != hashlib.sha256(pdf).hexdigest():
            return {"authentic": False, "reason": "not_issued"}
        signer = x509.load_der_x509_certificate(result.certificate_der or b"")
        return _verdict(row, muni, signer)

    def certificates(self, actor: StaffMember, lgcode: str) -> list[dict[str, Any]]:
        actor.require(Permission.CERTIFICATE_ISSUE, lgcode)
        with self.db.tenant(lgcode) as conn:
            return [{**c, "issued_at": c["issued_at"].isoformat(),
                     "form": (c["options"] or {}).get("form")}
                    for c in store.list_certificates(conn, lgcode)]

    # --- 支援措置による抑止 (JR-0301..0303) --------------------------------------------------------

    @staticmethod
    def suppression_view(row: dict[str, Any], today: date) -> dict[str, Any]:
        active = (row["ended_on"] is None and row["starts_on"] <= today
                  and (row["ends_on"] is None or today <= row["ends_on"]))
        return {"id": row["id"], "resident_id": row["resident_id"], "reason": row["reason"],
                "starts_on": row["starts_on"].isoformat(),
                "ends_on": row["ends_on"].isoformat() if row["ends_on"] else None,
                "ended_on": row["ended_on"].isoformat() if row["ended_on"] else None,
                "end_reason": row["end_reason"], "active": active,
                "created_by": row["created_by"], "created_at": row["created_at"].isoformat(),
                "ended_by": row["ended_by"]}

    def set_suppression(self, actor: StaffMember, lgcode: str,
                        data: dict[str, Any]) -> dict[str, Any]:
        """Sets a suppression (JR-0301): the registry's supervisor, with a reason and a period.
        One suppression in force (or to come) per resident at a time."""
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        data = dict(data)
        errors = parse_dates(data)
        require(errors)
        require(validate_suppression(data))
        today = self.today()
        with self.db.tenant(lgcode) as conn:
            store.lock_resident(conn, lgcode, str(data["resident_id"]))
            r = store.get_resident(conn, lgcode, data["resident_id"])
            if r is None or r.status is Status.VOID:
                raise ValidationFailed([FieldError("resident_id", "住民が見つかりません。",
                                                   "resident_id: no such resident.")])
            if any(s.ended_on is None and (s.ends_on is None or s.ends_on >= today)
                   for s in store.suppressions_of(conn, lgcode, r.id)):
                raise Conflict("この住民には既に抑止が設定されています。",
                               "This resident already has a suppression in force.",
                               field="resident_id")
            at = self.clock.now()
            row = {"lgcode": lgcode, "id": new_id(), "resident_id": r.id,
                   "reason": data["reason"].strip(), "starts_on": data["starts_on"],
                   "ends_on": data.get("ends_on"), "ended_on": None, "end_reason": "",
                   "created_by": actor.id, "created_at": at, "ended_by": None, "ended_at": None}
            store.insert_suppression(conn, row)
            ledger.append(conn, lgcode, "registry.suppression_set", row["id"],
                          {"resident": r.id, "starts_on": row["starts_on"].isoformat(),
                           "ends_on": row["ends_on"].isoformat() if row["ends_on"] else None,
                           "reason_sha256": ledger.digest(row["reason"])}, actor.id, at)
            return self.suppression_view(row, today)

    def suppressions(self, actor: StaffMember, lgcode: str, *, active: bool | None = None,
                     resident_id: str | None = None) -> list[dict[str, Any]]:
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        today = self.today()
        with self.db.tenant(lgcode) as conn:
            rows = store.list_suppressions(conn, lgcode, resident_id=resident_id,
                                           active_on=today if active else None)
        views = [self.suppression_view(r, today) for r in rows]
        return [v for v in views if active is None or v["active"] is active]

    def end_suppression(self, actor: StaffMember, lgcode: str, suppression_id: str,
                        data: dict[str, Any]) -> dict[str, Any]:
        """Ends a suppression today (JR-0301); it stays on record."""
        actor.require(Permission.REGISTRY_AUTHORITY, lgcode)
        reason = data.get("reason") or ""
        if not isinstance(reason, str) or len(reason.strip()) > 200:
            raise ValidationFailed([FieldError("reason", "終了の理由が不正です。",
                                               "reason is invalid.")])
        today, at = self.today(), self.clock.now()
        with self.db.tenant(lgcode) as conn:
            row = store.get_suppression(conn, lgcode, suppression_id)
            if row is None:
                raise NotFound("抑止が見つかりません。", "Suppression not found.")
            if not store.end_suppression(conn, lgcode, suppression_id, today, reason.strip(),
                                         actor.id, at):
                raise Conflict("この抑止は既に終了しています。", "This suppression has already ended.")
            ledger.append(conn, lgcode, "registry.suppression_ended", suppression_id,
                          {"resident": row["resident_id"], "ended_on": today.isoformat()},
                          actor.id, at)
            row = store.get_suppression(conn, lgcode, suppression_id)
            assert row is not None
            return self.suppression_view(row, today)

    # --- access log (JR-1005) --------------------------------------------------------------------

    def access_log(self, actor: StaffMember, lgcode: str, *, resident_id: str | None = None,
                   staff_id: str | None = None, page: int = 1, per_page: int = 100
                   ) -> dict[str, Any]:
        """Who read a resident's record (the record, its history, its household) and who
        issued certificates naming them, newest first: for the municipality's administrator
        and its privacy officer (the roles that audit), never for counter staff."""
        actor.require(Permission.LEDGER_AUDIT, lgcode)
        errors = []
        if page < 1:
            errors.append(FieldError("page", "ページ番号が不正です。", "page must be >= 1."))
        if not 1 <= per_page <= 500:
            errors.append(FieldError("per_page", "件数は1〜500です。", "per_page is 1..500."))
        require(errors)
        with self.db.tenant(lgcode) as conn:
            rows = store.access_entries(conn, lgcode, resident_id=resident_id,
                                        staff_id=staff_id, limit=per_page,
                                        offset=(page - 1) * per_page)
        return {"page": page, "per_page": per_page, "items": [
            {"id": r["id"], "at": r["at"].isoformat(), "action": r["action"],
             "resident_id": r["resident_id"], "subject": r["subject"],
             "staff": {"id": r["staff_id"], "username": r["username"],
                       "display_name": r["display_name"]}} for r in rows]}

    # --- verification ---------------------------------------------------------------------------

    def verify_ledger(self, lgcode: str,
                      expected_head: tuple[int, str] | None = None) -> dict[str, Any]:
        """The chain (altered, removed, inserted, reordered entries) and the events it holds;
        with a published head, also that the chain still contains it."""
        with self.db.tenant(lgcode) as conn:
            chain = ledger.verify(conn, lgcode, expected_head)
            head_seq, head_hash = ledger.head(conn, lgcode)
        events = self.verify_events(lgcode)
        return {"lgcode": lgcode, "ok": not chain and not events, "head_seq": head_seq,
                "head_hash": head_hash,
                "problems": [{"seq": p.seq, "what": p.what, "detail": p.detail} for p in chain]
                + [{"seq": None, "what": "event", "detail": d} for d in events]}

    def verify_events(self, lgcode: str) -> list[str]:
        """Each change event must match the digest its ledger entry holds."""
        problems = []
        with self.db.tenant(lgcode) as conn:
            recorded = {e["subject"]: e["payload"]["digest"]
                        for e in ledger.entries(conn, lgcode, limit=10**9)
                        if e["kind"].startswith("registry.") and "digest" in e["payload"]}
            seen: set[str] = set()
            for e in store.all_events(conn, lgcode):
                seen.add(e["id"])
                content = {"id": e["id"], "kind": e["kind"],
                           "occurred_on": e["occurred_on"].isoformat(),
                           "notified_on": e["notified_on"].isoformat()
                           if e["notified_on"] else None,
                           "late_notice": e["late_notice"], "detail": e["detail"],
                           "before": e["before"], "after": e["after"], "cancels": e["cancels"]}
                if recorded.get(e["id"]) != ledger.digest(content):
                    problems.append(f"change event {e['id']} does not match its ledger entry")
            for missing in sorted(set(recorded) - seen):
                problems.append(f"change event {missing} is in the ledger but not in the registry")
        return problems


