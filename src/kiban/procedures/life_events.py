"""Life events (issue 7 parts 4 and 5): moving (引越しワンストップ) and birth (出生).

Moving, at the departure municipality: the approved online 転出届 is recorded by the registry
(`Registry.move_out`, which produces the 転出証明書情報), and each mover's data is sent to the
destination municipality through the exchange hub: the departure's registry member
(`JP/LG/<from>/jumin`) asks the destination's (`JP/LG/<to>/jumin`) to take the item
`tennyu/moveout-certificate` for the procedure `tokurei-tennyu` under 住基法 第24条の2. The
destination is served in this process (a hub `LocalProvider`) or, for another deployment, at
its registered endpoint (`POST /api/v1/life-events/exchange`, checked against the pinned hub
certificate and answered signed with the peer's key). Either way the destination keeps what it
received under its own code (`life_arrivals`, `life_incoming`) and answers with a booking
reference.

At the destination: the resident books a visit (`life_slots`); the clerk completes the
特例転入 from the data received, entering only the new address (`special_move_in`, recorded by
`Registry.move_in` with the 住民票コード carried over); then every catalog procedure
triggered by `move_in` becomes a task for the household, with its evidence fetched through the
hub by the procedures service. The registry's change feed (JR-0703) is read from a stored
cursor (`process_changes`): a 出生 creates the `birth` tasks (児童手当, 国民健康保険) of the
child's household, and any other 転入 the `move_in` tasks. A task's state (todo / applied /
done) follows the household's applications for the procedure, or what staff set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from kiban.core.checkdigits import is_valid_lgcode
from kiban.core.clock import JST, Clock, today_jst
from kiban.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    KibanError,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from kiban.linkage import model as linkage_model
from kiban.linkage import protocol
from kiban.linkage.client import InProcessClient
from kiban.platform.auth import Permission, Role, StaffMember
from kiban.platform.db import Database
from kiban.platform.settings import Settings
from kiban.platform.tenants import Municipalities
from kiban.procedures import life_events_store as store
from kiban.procedures.service import Procedures, Resident, portal_subject
from kiban.registry.reports import Reports
from kiban.registry.service import Registry

log = logging.getLogger("kiban.life_events")

ITEM = "tennyu/moveout-certificate"
ITEM_DESCRIPTION = "転出証明書情報(特例転入)"
PROCEDURE = "tokurei-tennyu"
LEGAL_BASIS = "住民基本台帳法 第24条の2、同法施行令 第24条"
HEAD = "世帯主"
TASK_STATES = {"todo": ("未着手", "To do"), "applied": ("申請済み", "Applied"), "done": ("完了", "Done")}
ARRIVAL_STATES = {"received": ("受信済み(来庁予約前)", "Received (no visit booked)"),
                  "booked": ("来庁予約済み", "Visit booked"),
                  "completing": ("手続中", "Being completed"),
                  "completed": ("転入済み", "Moved in")}
WHOLE_HOUSEHOLD = {"全員", "all", "ALL", "All", "全部", "世帯全員"}
SPECIAL_WINDOW = timedelta(days=30)
NOTICE_DEADLINE = timedelta(days=14)
PERSON_KEYS = ("family_name", "given_name", "family_kana", "given_kana", "birth_date", "sex",
               "former_surname", "honseki", "hittosha", "foreign")
# Applications of the household in these states mark a task applied; approved marks it done.
APPLIED_STATES = {"submitted", "in_review", "correction_requested"}
FEED_PAGE = 500


def permission_rules(from_lgcode: str, to_lgcode: str = "*") -> list[dict[str, str]]:
    """The permission-table rule a move needs (published by the platform administrator): the
    departure municipality's registry sends the 転出証明書情報 to another's (`*`: any)."""
    return [{"requester": linkage_model.municipality_member(from_lgcode),
             "provider": linkage_model.municipality_member(to_lgcode),
             "item": ITEM, "procedure": PROCEDURE, "legal_basis": LEGAL_BASIS}]


class LifeHub(Protocol):
    """What life events need of the exchange hub's service (its in-process client's needs,
    code issuing, and the local-provider registry read with getattr)."""

    clock: Clock

    def member(self, member_id: str) -> dict[str, Any]: ...
    def enrol(self, member_id: str, lgcode: str, resident_id: str) -> str: ...
    def member_key(self, member_id: str) -> Any: ...
    @property
    def hub_certificate(self) -> str: ...
    def exchange(self, body: bytes, client: str | None, signature: str | None, *,
                 truncated: bool = False) -> Any: ...


def system_actor(lgcode: str) -> StaffMember:
    """Life events reading the registry (households, the change feed): never the 個人番号 in
    what it keeps (it is dropped from the move-out data)."""
    return StaffMember(id="system-life-events", lgcode=lgcode, username="system:life-events",
                       display_name="ライフイベント(システム)", department="procedures",
                       roles=frozenset({Role.REGISTRY_SUPERVISOR}))


def subject_hash(sub: str) -> str:
    return hashlib.sha256(b"kiban-life-events|" + sub.encode()).hexdigest()


def _bad(field: str, ja: str, en: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, ja, en)])


def _date(value: Any, field: str, ja: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _bad(field, f"{ja}は YYYY-MM-DD で入力してください。", f"{field} must be a date (YYYY-MM-DD).") from None


def check_special_window(planned_on: date, moved_on: date, notified_on: date, today: date) -> None:
    """JR-0403: 特例転入 within 30 days of the planned move-out, notified within 14 days of
    moving, and nothing in the future."""
    if moved_on > today or notified_on > today:
        raise RuleViolation("未来の日付は入力できません。", "A date is in the future.", field="occurred_on")
    if notified_on < moved_on:
        raise RuleViolation("届出日が転入日より前です。", "notified_on is before occurred_on.", field="notified_on")
    if moved_on < planned_on - SPECIAL_WINDOW or notified_on - planned_on > SPECIAL_WINDOW:
        raise RuleViolation("転出予定日から30日を過ぎているため特例転入はできません。",
                            "A special move-in must follow within 30 days of the planned move-out date.",
                            field="occurred_on")
    if notified_on - moved_on > NOTICE_DEADLINE:
        raise RuleViolation("転入した日から14日を過ぎているため特例転入はできません。",
                            "A special move-in must be notified within 14 days of moving.", field="notified_on")


@dataclass(frozen=True)
class PeerConfig:
    """This deployment as a destination reached over HTTP by another deployment's hub: the key
    its municipalities' registry members answer with, and the hub certificate it pins."""

    key: ed25519.Ed25519PrivateKey
    hub_certificate: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PeerConfig | None:
        """KIBAN_LIFE_EVENTS_PEER_KEY (PEM file, Ed25519) and KIBAN_LIFE_EVENTS_HUB_CERTIFICATE
        (PEM file): both, or this deployment takes no moves from another's hub."""
        env = os.environ if env is None else env
        key_file = env.get("KIBAN_LIFE_EVENTS_PEER_KEY", "")
        cert_file = env.get("KIBAN_LIFE_EVENTS_HUB_CERTIFICATE", "")
        if not key_file or not cert_file:
            return None
        return cls(protocol.load_key(Path(key_file).read_bytes()), Path(cert_file).read_text())


class NotReceived(KibanError):
    def __init__(self) -> None:
        super().__init__(ja="この転出の転出証明書情報を受信していません(特例転入はできません)。",
                         en="No move-out data was received for this move: a special move-in is not possible.",
                         status=404, code="not-received", field="move_id")


class LifeEvents:
    def __init__(self, settings: Settings, db: Database, clock: Clock, registry: Registry,
                 municipalities: Municipalities, hub: LifeHub | None, procedures: Procedures,
                 peer: PeerConfig | None = None) -> None:
        self.settings, self.db, self.clock = settings, db, clock
        self.registry, self.municipalities, self.hub = registry, municipalities, hub
        self.procedures = procedures
        self.reports = Reports(db, clock)
        self.peer = peer if peer is not None else PeerConfig.from_env()
        if hub is not None:
            # The destination side, served in this process (declared by register_municipality).
            providers = getattr(hub, "local_providers", None)
            descriptions = getattr(hub, "local_descriptions", None)
            if providers is not None and descriptions is not None:
                providers[ITEM] = self._provide
                descriptions[ITEM] = ITEM_DESCRIPTION

    def today(self) -> date:
        return today_jst(self.clock)

    # --- departure: the approved online 転出届 -------------------------------------------

    def move_out_approved(self, actor: StaffMember, lgcode: str, application: dict[str, Any]) -> dict[str, Any]:
        """Called by the procedures service when staff approve a `tenshutsu` application: the
        registry records the 転出 and the data goes to the destination through the hub. Once
        per application (a second call answers with the first move)."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        app_id = str(application.get("id") or "")
        form = application.get("form") or {}
        with self.db.tenant(lgcode) as conn:
            existing = store.move_of_application(conn, lgcode, app_id) if app_id else None
        if existing is not None:
            return self.resend(actor, lgcode, existing["id"]) if existing["status"] != "sent" \
                else self._move_view(existing)
        dest = str(form.get("new_lgcode") or "")
        errors = []
        if not is_valid_lgcode(dest):
            errors.append(FieldError("new_lgcode", "転出先の地方公共団体コードが不正です。",
                                     "new_lgcode is not a valid 地方公共団体コード."))
        elif dest == lgcode:
            errors.append(FieldError("new_lgcode", "同じ市区町村内の移動は転居です。",
                                     "A move within the municipality is a relocation."))
        if not str(form.get("new_address") or "").strip():
            errors.append(FieldError("new_address", "転出先の住所を入力してください。", "new_address is required."))
        if errors:
            raise ValidationFailed(errors)
        planned = _date(form.get("move_date"), "move_date", "転出予定日")
        applicant = str(application.get("resident_id") or "")
        person = self.registry.get(system_actor(lgcode), lgcode, applicant)
        household = self.registry.household(system_actor(lgcode), lgcode, person["household_id"])
        active = [m for m in household["members"] if m["status"] == "active"]
        movers = self._movers(active, applicant, str(form.get("members") or ""))
        leaving = {m["id"] for m in movers}
        stayers = sorted((m for m in active if m["id"] not in leaving), key=lambda m: m["birth_date"])
        data: dict[str, Any] = {"resident_ids": [m["id"] for m in movers], "planned_on": planned.isoformat(),
                                "notified_on": self._notified_on(application).isoformat(),
                                "destination": str(form["new_address"]).strip()}
        if household["head_id"] in leaving and stayers:
            # The head leaves, others stay: the eldest who stays heads the household (世帯主変更
            # may follow at the counter).
            data["remaining_head_id"] = stayers[0]["id"]
        result = self.registry.move_out(actor, lgcode, data)
        certificates = []
        for resident_id, cert in zip(data["resident_ids"], result["moveout_certificates"], strict=True):
            kept = {k: v for k, v in cert["person"].items() if k in (*PERSON_KEYS, "previous_address")}
            certificates.append({"resident_id": resident_id, "juminhyo_code": cert["juminhyo_code"],
                                 "relationship": cert["relationship"], "person": kept})
        now = self.clock.now()
        move_id = secrets.token_hex(16)
        row = {"lgcode": lgcode, "id": move_id, "application_id": app_id or None, "dest_lgcode": dest,
               "resident_ids": data["resident_ids"], "planned_on": planned,
               "registry_event_id": result["event_id"], "status": "send_failed", "reason": "not-sent",
               "reference": None, "certificates": certificates, "created_at": now, "updated_at": now}
        with self.db.tenant(lgcode) as conn:
            conn.execute(store.life_moves.insert().values(**row))
        with self.db.platform() as conn:
            store.index_subjects(conn, [{
                "subject_hash": subject_hash(portal_subject(self.settings.secret_key, lgcode, rid)),
                "move_id": move_id, "lgcode": lgcode, "dest_lgcode": dest, "created_at": now}
                for rid in data["resident_ids"]])
        return self._send(lgcode, row)

    @staticmethod
    def _movers(active: list[dict[str, Any]], applicant: str, members: str) -> list[dict[str, Any]]:
        if members.strip() in WHOLE_HOUSEHOLD:
            return active
        names = {n.strip().replace(" ", "").replace("\u3000", "")
                 for n in members.replace("、", ",").split(",") if n.strip()}
        chosen = [m for m in active if m["id"] == applicant
                  or m["full_name"].replace(" ", "") in names or m.get("given_name") in names]
        if not any(m["id"] == applicant for m in chosen):
            raise _bad("members", "申請者が世帯にいません。", "The applicant is not in the household.")
        return chosen

    def _notified_on(self, application: dict[str, Any]) -> date:
        submitted = str(application.get("submitted_at") or "")
        try:
            at = _aware(datetime.fromisoformat(submitted))
            return min(at.astimezone(JST).date(), self.today())
        except ValueError:
            return self.today()

    def resend(self, actor: StaffMember, lgcode: str, move_id: str) -> dict[str, Any]:
        """Sends again what could not be sent (the destination was not reachable, say)."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        with self.db.tenant(lgcode) as conn:
            row = store.get_move(conn, lgcode, move_id)
        if row is None:
            raise NotFound("転出が見つかりません。", "Move not found.")
        if row["status"] == "sent":
            return self._move_view(row)
        return self._send(lgcode, row)

    def _send(self, lgcode: str, row: dict[str, Any]) -> dict[str, Any]:
        """Each mover's 転出証明書情報 to the destination, through the hub; the first failure
        stops and is recorded (the receiver keeps what it got: sending again is safe)."""
        member = linkage_model.municipality_member(lgcode)
        dest_member = linkage_model.municipality_member(row["dest_lgcode"])
        certificates = row["certificates"]
        status, reason, reference = "sent", "", row["reference"]
        if self.hub is None:
            status, reason = "send_failed", "no-hub"
        else:
            client = InProcessClient(self.hub, member, self.clock)  # type: ignore[arg-type]
            for seq, cert in enumerate(certificates):
                params = {"move_id": row["id"], "seq": seq, "total": len(certificates),
                          "from_lgcode": lgcode, "planned_on": str(row["planned_on"]),
                          "juminhyo_code": cert["juminhyo_code"], "relationship": cert["relationship"],
                          "person": cert["person"]}
                try:
                    code = self.hub.enrol(member, lgcode, cert["resident_id"])
                    result = client.exchange(dest_member, ITEM, PROCEDURE, code, params)
                except (KibanError, protocol.ResponseError, ValueError) as exc:
                    status, reason = "send_failed", getattr(exc, "code", type(exc).__name__)
                    break
                if not result.ok:
                    status, reason = "send_failed", str(result.error)
                    break
                reference = str(result.data.get("reference") or reference or "") or None
        values = {"status": status, "reason": reason[:200], "reference": reference, "updated_at": self.clock.now()}
        if status == "sent":
            values["certificates"] = []  # sent: the departure keeps the registry's record only
        with self.db.tenant(lgcode) as conn:
            store.update_move(conn, lgcode, row["id"], **values)
        log.info("life event move %s to %s: %s %s", row["id"], row["dest_lgcode"], status, reason)
        return self._move_view({**row, **values})

    @staticmethod
    def _move_view(row: dict[str, Any]) -> dict[str, Any]:
        return {"move_id": row["id"], "application_id": row["application_id"], "dest_lgcode": row["dest_lgcode"],
                "resident_ids": list(row["resident_ids"]), "planned_on": str(row["planned_on"]),
                "registry_event_id": row["registry_event_id"], "status": row["status"], "reason": row["reason"],
                "reference": row["reference"]}

    def moves(self, actor: StaffMember, lgcode: str) -> list[dict[str, Any]]:
        actor.require(Permission.REGISTRY_READ, lgcode)
        with self.db.tenant(lgcode) as conn:
            return [self._move_view(r) for r in store.moves(conn, lgcode)]

    # --- destination: receiving -----------------------------------------------------------

    def _provide(self, lgcode: str, resident_id: str | None, item: str,
                 params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The hub's local provider for `tennyu/moveout-certificate` at the destination."""
        del resident_id
        if item != ITEM:
            return "not-found", {}
        try:
            return "ok", self.receive(lgcode, params)
        except KibanError as exc:
            log.info("life event data refused for %s: %s", lgcode, exc.code)
            return "not-found", {}

    def receive(self, lgcode: str, params: dict[str, Any], peer_code: str | None = None) -> dict[str, Any]:
        """Keeps one mover's 転出証明書情報; idempotent per (move, seq). Answers with the move's
        booking reference."""
        try:
            move_id = str(params["move_id"])
            seq, total = int(params["seq"]), int(params["total"])
            from_lgcode = str(params["from_lgcode"])
            planned = date.fromisoformat(str(params["planned_on"]))
            person = dict(params["person"])
            code = str(params["juminhyo_code"])
            relationship = str(params["relationship"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad("params", "転出証明書情報の形式が不正です。", "Malformed move-out data.") from exc
        if not (len(move_id) == 32 and 0 <= seq < total <= 20 and is_valid_lgcode(from_lgcode)
                and from_lgcode != lgcode and len(code) == 11):
            raise _bad("params", "転出証明書情報の形式が不正です。", "Malformed move-out data.")
        self.municipalities.get(lgcode)  # NotFound: not a municipality of this deployment
        now = self.clock.now()
        person = {k: v for k, v in person.items() if k in (*PERSON_KEYS, "previous_address")}
        with self.db.tenant(lgcode) as conn:
            store.insert_ignore(conn, store.life_arrivals, [{
                "lgcode": lgcode, "move_id": move_id, "from_lgcode": from_lgcode, "total": total,
                "reference": secrets.token_urlsafe(24), "planned_on": planned, "status": "received",
                "slot_id": None, "booked_at": None, "household_id": None, "registry_event_id": None,
                "received_at": now, "completed_at": None}])
            arrival = store.get_arrival(conn, lgcode, move_id)
            assert arrival is not None
            if arrival["from_lgcode"] != from_lgcode:
                raise _bad("params", "転出元が一致しません。", "The departure municipality does not match.")
            store.insert_ignore(conn, store.life_incoming, [{
                "lgcode": lgcode, "move_id": move_id, "seq": seq, "person": person, "juminhyo_code": code,
                "relationship": relationship, "previous_address": str(person.get("previous_address", ""))[:300],
                "peer_code": peer_code, "resident_id": None, "received_at": now}])
        return {"reference": arrival["reference"], "received": seq}

    def peer_exchange(self, body: bytes, client: str | None, signature: str | None) -> tuple[int, bytes, str]:
        """A forwarded exchange from another deployment's hub (this deployment as the
        destination): the hub's signature checked against the pinned certificate, answered
        signed with the peer key. Returns (status, body, signature)."""
        if self.peer is None:
            raise NotFound("この環境は他の基盤からの転入情報を受け付けていません。",
                           "This deployment takes no moves from another hub.")
        hub_key = protocol.certificate_key(self.peer.hub_certificate)
        if client != protocol.HUB_MEMBER or len(body) > protocol.MAX_MESSAGE_BYTES \
                or not protocol.verify(hub_key, body, signature or ""):
            raise Forbidden("情報連携基盤の署名を確認できません。", "Not signed by the pinned hub.")
        try:
            message = json.loads(body)
            provider = str(message["provider"])
            lgcode = provider.split("/")[2]
            ok_shape = (message.get("protocol") == linkage_model.PROTOCOL_VERSION
                        and provider == linkage_model.municipality_member(lgcode) and message["item"] == ITEM)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _bad("body", "メッセージの形式が不正です。", "Malformed message.") from exc
        if not ok_shape:
            raise _bad("body", "この環境の提供する情報ではありません。", "Not an item this deployment serves.")
        try:
            status, data = "ok", self.receive(lgcode, dict(message.get("params") or {}),
                                              peer_code=str(message.get("subject") or "")[:24] or None)
        except KibanError as exc:
            log.info("life event data refused for %s: %s", lgcode, exc.code)
            status, data = "not-found", {}
        reply = protocol.provider_body(body, status, data)
        return 200, reply, protocol.sign(self.peer.key, reply)

    def arrivals(self, actor: StaffMember, lgcode: str) -> list[dict[str, Any]]:
        """What the counter sees: each move whose data was received, with the people in it."""
        actor.require(Permission.REGISTRY_READ, lgcode)
        with self.db.tenant(lgcode) as conn:
            return [self._arrival_view(conn, a, people=True) for a in store.arrivals(conn, lgcode)]

    def arrival(self, actor: StaffMember, lgcode: str, move_id: str) -> dict[str, Any]:
        actor.require(Permission.REGISTRY_READ, lgcode)
        with self.db.tenant(lgcode) as conn:
            found = store.get_arrival(conn, lgcode, move_id)
            if found is None:
                raise NotReceived()
            return self._arrival_view(conn, found, people=True)

    def _arrival_view(self, conn: Any, a: dict[str, Any], people: bool) -> dict[str, Any]:
        status = a["status"] if a["status"] != "received" or not a["slot_id"] else "booked"
        ja, en = ARRIVAL_STATES.get(status, (status, status))
        view: dict[str, Any] = {
            "move_id": a["move_id"], "lgcode": a["lgcode"], "from_lgcode": a["from_lgcode"], "total": a["total"],
            "planned_on": str(a["planned_on"]), "status": status, "status_ja": ja, "status_en": en,
            "slot_id": a["slot_id"], "household_id": a["household_id"],
            "registry_event_id": a["registry_event_id"]}
        rows = store.incoming(conn, a["lgcode"], a["move_id"])
        view["received"] = len(rows)
        if a["slot_id"]:
            slot = store.get_slot(conn, a["lgcode"], a["slot_id"])
            view["visit_at"] = _iso(slot["starts_at"]) if slot else None
        if people:
            view["people"] = [{
                "seq": r["seq"], "name": _joined(r["person"], "family_name", "given_name"),
                "kana": _joined(r["person"], "family_kana", "given_kana"),
                "birth_date": r["person"].get("birth_date"), "sex": r["person"].get("sex"),
                "relationship": r["relationship"], "previous_address": r["previous_address"],
                "resident_id": r["resident_id"]} for r in rows]
        return view

    # --- the visit ------------------------------------------------------------------------

    def create_slots(self, actor: StaffMember, lgcode: str, slots: Any) -> list[dict[str, Any]]:
        """Counter time slots residents may book (each with a number of seats)."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        if not isinstance(slots, list) or not slots or len(slots) > 200:
            raise _bad("slots", "予約枠を1〜200件入力してください。", "Give 1 to 200 slots.")
        rows, errors = [], []
        now = self.clock.now()
        for i, s in enumerate(slots):
            try:
                starts = datetime.fromisoformat(str(s["starts_at"]))
                capacity = int(s.get("capacity", 1))
            except (KeyError, TypeError, ValueError, AttributeError):
                errors.append(FieldError(f"slots[{i}].starts_at", "日時は ISO 8601 で入力してください。",
                                         "starts_at must be an ISO date-time."))
                continue
            if starts.tzinfo is None:
                errors.append(FieldError(f"slots[{i}].starts_at", "日時にタイムゾーンを付けてください。",
                                         "starts_at needs an offset (e.g. +09:00)."))
            elif starts <= now:
                errors.append(FieldError(f"slots[{i}].starts_at", "過去の日時です。", "starts_at is in the past."))
            if not 1 <= capacity <= 50:
                errors.append(FieldError(f"slots[{i}].capacity", "定員は1〜50です。", "capacity must be 1..50."))
            rows.append({"lgcode": lgcode, "id": secrets.token_hex(16), "starts_at": starts, "capacity": capacity,
                         "booked": 0, "created_by": actor.id, "created_at": now})
        if errors:
            raise ValidationFailed(errors)
        with self.db.tenant(lgcode) as conn:
            conn.execute(store.life_slots.insert(), rows)
        return [self._slot_view(r) for r in rows]

    @staticmethod
    def _slot_view(r: dict[str, Any]) -> dict[str, Any]:
        return {"id": r["id"], "starts_at": _iso(r["starts_at"]), "capacity": r["capacity"],
                "free": max(r["capacity"] - r["booked"], 0)}

    def slots(self, lgcode: str) -> list[dict[str, Any]]:
        """The future slots and their free seats (no personal data)."""
        self.municipalities.get(lgcode)
        with self.db.tenant(lgcode) as conn:
            return [self._slot_view(r) for r in store.slots(conn, lgcode, self.clock.now())]

    def book(self, lgcode: str, move_id: str, slot_id: str) -> dict[str, Any]:
        """Books the visit of a move whose data was received. A move books once (a second
        booking is refused: cancel first); a full or past slot is refused."""
        with self.db.tenant(lgcode) as conn:
            arrival = store.get_arrival(conn, lgcode, move_id)
            if arrival is None:
                raise NotReceived()
            if arrival["status"] != "received":
                raise Conflict("この転入は既に手続が済んでいます。", "This move-in is already completed.",
                               field="move_id")
            if arrival["slot_id"]:
                raise Conflict("来庁予約は既にあります。", "A visit is already booked for this move.",
                               field="slot_id")
            slot = store.get_slot(conn, lgcode, slot_id)
            if slot is None:
                raise _bad("slot_id", "予約枠が見つかりません。", "No such slot.")
            if _aware(slot["starts_at"]) <= self.clock.now():
                raise Conflict("過去の予約枠です。", "This slot is in the past.", field="slot_id")
            if not store.take_seat(conn, lgcode, slot_id):
                raise Conflict("この予約枠は満員です。", "This slot is full.", field="slot_id")
            if not store.set_arrival_status(conn, lgcode, move_id, ("received",), slot_id=slot_id,
                                            booked_at=self.clock.now()) or \
                    (store.get_arrival(conn, lgcode, move_id) or {}).get("slot_id") != slot_id:
                raise Conflict("来庁予約は既にあります。", "A visit is already booked for this move.",
                               field="slot_id")
            return {"move_id": move_id, "slot_id": slot_id, "visit_at": _iso(slot["starts_at"])}

    def book_by_reference(self, lgcode: str, reference: str, birth_date: str, slot_id: str) -> dict[str, Any]:
        """The resident's booking with the reference the destination gave (shown to them by
        the departure municipality) and the birth date of one of the movers."""
        with self.db.tenant(lgcode) as conn:
            arrival = store.arrival_by_reference(conn, lgcode, reference) if reference else None
            people = store.incoming(conn, lgcode, arrival["move_id"]) if arrival else []
        if arrival is None or not any(hmac.compare_digest(str(p["person"].get("birth_date", "")), birth_date)
                                      for p in people):
            raise NotFound("予約番号または生年月日が一致しません。", "The reference or birth date does not match.")
        return self.book(lgcode, arrival["move_id"], slot_id)

    def staff_book(self, actor: StaffMember, lgcode: str, move_id: str, slot_id: str) -> dict[str, Any]:
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        return self.book(lgcode, move_id, slot_id)

    # --- the counter: 特例転入 -------------------------------------------------------------

    def special_move_in(self, actor: StaffMember, lgcode: str, move_id: str, data: dict[str, Any],
                        *, tasks: bool = True) -> dict[str, Any]:
        """特例転入 from the data received: the clerk enters the dates and the new address (or
        the household joined); everything else comes from the 転出証明書情報. `tasks`: create
        the household's move-in tasks now (their evidence is fetched through the hub, so a
        caller inside a transaction of its own passes False and calls `process_changes` after
        its COMMIT: the registry's change feed creates the same tasks)."""
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        occurred = _date(data.get("occurred_on"), "occurred_on", "転入日")
        notified = _date(data.get("notified_on") or self.today().isoformat(), "notified_on", "届出日")
        with self.db.tenant(lgcode) as conn:
            arrival = store.get_arrival(conn, lgcode, move_id)
            people = store.incoming(conn, lgcode, move_id) if arrival else []
        if arrival is None:
            raise NotReceived()
        if arrival["status"] != "received":
            raise Conflict("この転入は既に手続が済んでいるか、手続中です。",
                           "This move-in is already completed or being completed.", field="move_id")
        if len(people) < arrival["total"]:
            raise Conflict("転出証明書情報の一部をまだ受信していません。",
                           "Not all of the move-out data has arrived yet.", field="move_id")
        check_special_window(store.as_date(arrival["planned_on"]), occurred, notified, self.today())
        joining = data.get("household_id")
        heads = [p for p in people if p["relationship"] == HEAD]
        if not joining and len(heads) != 1:
            raise _bad("household_id", "世帯主が転入しないため、入る世帯を指定してください。",
                       "The head does not move: give the household_id to join.")
        members = []
        for p in people:
            person = {k: v for k, v in p["person"].items() if k in PERSON_KEYS and v not in (None, "")}
            relationship = p["relationship"]
            if joining:
                relationship = str((data.get("relationships") or {}).get(str(p["seq"]), "")) or (
                    relationship if relationship != HEAD else "")
            members.append({**person, "relationship": relationship, "juminhyo_code": p["juminhyo_code"],
                            "previous_address": p["previous_address"]})
        request: dict[str, Any] = {"origin": "domestic", "occurred_on": occurred.isoformat(),
                                   "notified_on": notified.isoformat(), "members": members,
                                   "previous_address": people[0]["previous_address"],
                                   "from_lgcode": arrival["from_lgcode"], "late_reason": data.get("late_reason")}
        if joining:
            request["household_id"] = joining
        else:
            request["address"] = data.get("address")
        with self.db.tenant(lgcode) as conn:
            if not store.set_arrival_status(conn, lgcode, move_id, ("received",), status="completing"):
                raise Conflict("この転入は既に手続中です。", "This move-in is being completed.", field="move_id")
        try:
            result = self.registry.move_in(actor, lgcode, request)
        except Exception:
            with self.db.tenant(lgcode) as conn:
                store.set_arrival_status(conn, lgcode, move_id, ("completing",), status="received")
            raise
        household_id = str(joining or result["household_ids"][0])
        with self.db.tenant(lgcode) as conn:
            store.set_arrival_status(conn, lgcode, move_id, ("completing",), status="completed",
                                     household_id=household_id, registry_event_id=result["event_id"],
                                     completed_at=self.clock.now())
            for p, rid in zip(people, result["resident_ids"], strict=True):
                store.set_incoming_resident(conn, lgcode, move_id, p["seq"], rid)
        subject = next((rid for p, rid in zip(people, result["resident_ids"], strict=True)
                        if p["relationship"] == HEAD), result["resident_ids"][0])
        created = self._create_tasks(lgcode, "move_in", result["event_id"], household_id, subject) if tasks else 0
        return {"move_id": move_id, "household_id": household_id, "resident_ids": result["resident_ids"],
                "event_id": result["event_id"], "late_notice": result["late_notice"], "tasks": created}

    # --- tasks ------------------------------------------------------------------------------

    def _create_tasks(self, lgcode: str, trigger: str, event_id: str, household_id: str,
                      subject: str) -> int:
        """One task per catalog procedure triggered by `trigger`, for the household, with its
        evidence fetched through the hub now (a refusal is kept with its reason)."""
        procs = [p for p in self.procedures.catalog.values() if trigger in p.triggered_by]
        with self.db.tenant(lgcode) as conn:
            have = store.has_tasks(conn, lgcode, event_id, household_id)
        applicant = self._applicant(lgcode, household_id) or subject
        now = self.clock.now()
        rows = []
        for proc in sorted(procs, key=lambda p: p.id):
            if proc.id in have:
                continue
            evidence = self.procedures.fetch_evidence(lgcode, applicant, proc) if proc.evidence else []
            rows.append({"lgcode": lgcode, "id": secrets.token_hex(16), "household_id": household_id,
                         "resident_id": subject, "procedure_id": proc.id, "trigger": trigger,
                         "source_event": event_id, "state": "todo", "evidence": evidence,
                         "created_at": now, "updated_at": now})
        with self.db.tenant(lgcode) as conn:
            return store.insert_ignore(conn, store.life_tasks, rows)

    def _applicant(self, lgcode: str, household_id: str) -> str | None:
        try:
            hh = self.registry.household(system_actor(lgcode), lgcode, household_id)
        except KibanError:
            return None
        return str(hh["head_id"])

    def process_changes(self, lgcode: str) -> dict[str, Any]:
        """Reads the registry's change feed (JR-0703) from the stored cursor to its end: a
        出生 creates the household's `birth` tasks, a 転入 its `move_in` tasks. Idempotent (a
        task exists once per change, household and procedure)."""
        actor = system_actor(lgcode)
        events = created = 0
        while True:
            with self.db.tenant(lgcode) as conn:
                after = store.cursor(conn, lgcode)
            page = self.reports.change_feed(actor, lgcode, "1970-01-01", after, FEED_PAGE)
            if page["next_after_seq"] is None:
                break
            for item in page["items"]:
                if item["cancelled_by"]:
                    continue
                trigger = {"birth": "birth", "move_in": "move_in", "special_move_in": "move_in",
                           "move_in_from_abroad": "move_in"}.get(item["kind"])
                if trigger is None or not item["residents"]:
                    continue
                events += 1
                subject = item["residents"][0]
                household_id = str(subject["household_id"])
                created += self._create_tasks(lgcode, trigger, item["event_id"], household_id,
                                              str(subject["resident_id"]))
            with self.db.tenant(lgcode) as conn:
                if not store.set_cursor(conn, lgcode, after, int(page["next_after_seq"]), self.clock.now()):
                    continue  # another worker moved on meanwhile: read from where it is
            if not page["has_more"]:
                break
        return {"lgcode": lgcode, "events": events, "tasks": created}

    def checklist(self, lgcode: str, household_id: str) -> dict[str, Any]:
        """The household's life-event tasks as one checklist, each with its state: `done` when
        an application of the household for the procedure was approved, `applied` while one is
        pending, otherwise what staff set (`todo` at first)."""
        self.process_changes(lgcode)
        actor = system_actor(lgcode)
        try:
            hh = self.registry.household(actor, lgcode, household_id)
        except KibanError:
            hh = {"members": []}
        member_ids = [m["id"] for m in hh["members"]]
        with self.db.tenant(lgcode) as conn:
            tasks = store.tasks_of(conn, lgcode, [household_id])
        applications: dict[str, str] = {}
        for rid in member_ids:
            for app in self.procedures.my_applications(Resident(lgcode, rid)):
                state = "done" if app["state"] == "approved" else "applied" if app["state"] in APPLIED_STATES else ""
                if state and applications.get(app["procedure_id"]) != "done":
                    applications[app["procedure_id"]] = state
        items = []
        for t in tasks:
            proc = self.procedures.catalog.get(t["procedure_id"])
            state = _later(t["state"], applications.get(t["procedure_id"], "todo"))
            ja, en = TASK_STATES[state]
            items.append({
                "task_id": t["id"], "procedure_id": t["procedure_id"],
                "name_ja": proc.name_ja if proc else t["procedure_id"],
                "name_en": proc.name_en if proc else t["procedure_id"], "trigger": t["trigger"],
                "state": state, "state_ja": ja, "state_en": en, "resident_id": t["resident_id"],
                "created_at": _iso(t["created_at"]),
                "evidence": [{"item": e.get("item"), "status": e.get("status"), "reason": e.get("reason"),
                              "reason_ja": e.get("reason_ja"), "legal_basis": e.get("legal_basis")}
                             for e in t["evidence"]]})
        return {"lgcode": lgcode, "household_id": household_id, "member_ids": member_ids, "items": items}

    def household_checklist(self, actor: StaffMember, lgcode: str, household_id: str) -> dict[str, Any]:
        actor.require(Permission.REGISTRY_READ, lgcode)
        return self.checklist(lgcode, household_id)

    def set_task_state(self, actor: StaffMember, lgcode: str, task_id: str, state: str) -> dict[str, Any]:
        actor.require(Permission.REGISTRY_NOTIFY, lgcode)
        if state not in TASK_STATES:
            raise _bad("state", "状態は todo / applied / done です。", "state must be todo, applied or done.")
        with self.db.tenant(lgcode) as conn:
            task = store.get_task(conn, lgcode, task_id)
            if task is None:
                raise NotFound("タスクが見つかりません。", "Task not found.")
            store.set_task_state(conn, lgcode, task_id, state, self.clock.now())
        return {"task_id": task_id, "state": state}

    # --- the resident's view --------------------------------------------------------------

    def resident_view(self, sub: str, who: Resident | None) -> dict[str, Any]:
        """What the portal shows the signed-in resident: their moves (as the departure
        recorded them, with the destination's state when it is in this deployment, and the
        free slots while no visit is booked) and their household's checklist."""
        journeys = []
        with self.db.platform() as conn:
            index = store.moves_of_subject(conn, subject_hash(sub)) if sub else []
        for entry in index:
            with self.db.tenant(entry["lgcode"]) as conn:
                move = store.get_move(conn, entry["lgcode"], entry["move_id"])
            if move is None:
                continue
            view = self._move_view(move)
            view["from_lgcode"] = entry["lgcode"]
            arrival = self._local_arrival(entry["dest_lgcode"], entry["move_id"])
            view["arrival"] = arrival
            view["slots"] = self.slots(entry["dest_lgcode"]) if arrival and arrival["status"] == "received" else []
            if arrival and arrival.get("household_id"):
                view["checklist"] = self.checklist(entry["dest_lgcode"], arrival["household_id"])
            journeys.append(view)
        household = None
        if who is not None:
            try:
                person = self.registry.get(system_actor(who.lgcode), who.lgcode, who.resident_id)
                if person["status"] == "active":
                    household = self.checklist(who.lgcode, person["household_id"])
            except KibanError:
                household = None
        return {"journeys": journeys, "household": household}

    def _local_arrival(self, lgcode: str, move_id: str) -> dict[str, Any] | None:
        try:
            self.municipalities.get(lgcode)
        except NotFound:
            return None  # another deployment's municipality
        with self.db.tenant(lgcode) as conn:
            found = store.get_arrival(conn, lgcode, move_id)
            return self._arrival_view(conn, found, people=False) if found else None

    def resident_book(self, sub: str, move_id: str, slot_id: str) -> dict[str, Any]:
        """The signed-in resident books the visit of one of their own moves."""
        with self.db.platform() as conn:
            entry = next((e for e in store.moves_of_subject(conn, subject_hash(sub)) if e["move_id"] == move_id), None)
        if entry is None:
            raise NotFound("転出が見つかりません。", "Move not found.")
        try:
            self.municipalities.get(entry["dest_lgcode"])
        except NotFound:
            raise Conflict("転入先は別の基盤です。転入先の予約ページで予約してください。",
                           "The destination is on another deployment: book there with your reference.",
                           field="move_id") from None
        return self.book(entry["dest_lgcode"], move_id, slot_id)


def _joined(person: dict[str, Any], first: str, second: str) -> str:
    return f"{person.get(first, '')} {person.get(second, '')}".strip()


def _later(a: str, b: str) -> str:
    order = ["todo", "applied", "done"]
    return a if order.index(a) >= order.index(b) else b


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return _aware(value).isoformat()
    return str(value) if value is not None else None
