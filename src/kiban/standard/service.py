"""Use cases of the standard: which options and switches a municipality may set, the public
deviation register, change proposals and the standard's versions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from kiban.core.clock import Clock, today_jst
from kiban.core.errors import Conflict, FieldError, Forbidden, NotFound, RuleViolation, ValidationFailed
from kiban.platform.auth import Permission, StaffMember
from kiban.platform.db import Database
from kiban.platform.tenants import Municipalities
from kiban.standard import spec as spec_module
from kiban.standard import store
from kiban.standard.spec import Spec

MAX_REVIEW = timedelta(days=3 * 366)  # a deviation is reviewed within three years


def settings_errors(values: dict[str, Any], by_deviation: bool,
                    spec: Spec | None = None) -> list[FieldError]:
    """Municipality settings the standard governs: an option takes only a choice the spec
    offers; a behaviour switch changes only through a recorded deviation. Each refusal names
    the requirement."""
    spec = spec or spec_module.current()
    options, switches = spec.options(), spec.switches()
    errors = []
    for key, value in values.items():
        where = f"settings.{key}"
        if key in options:
            r = options[key]
            assert r.option is not None
            if value in r.option.not_allowed:
                errors.append(FieldError(where, f"{r.id}: 「{value}」は実装不可とされた選択肢です。",
                                         f"{r.id}: '{value}' is a choice the standard does not allow."))
            elif value not in r.option.choices:
                errors.append(FieldError(
                    where, f"{r.id}: 選べるのは {' / '.join(r.option.choices)} です。",
                    f"{r.id}: the standard offers {', '.join(r.option.choices)}."))
        elif key in switches:
            r = switches[key]
            assert r.switch is not None
            if not by_deviation:
                errors.append(FieldError(
                    where, f"{key} は {r.id} の挙動スイッチです。逸脱として記録する場合にだけ変更できます。",
                    f"{key} is the behaviour switch of {r.id}: it changes only through a "
                    "recorded deviation."))
            elif value not in (r.switch.standard, *r.switch.deviations):
                errors.append(FieldError(where, f"{r.id}: {key} の値が不正です。",
                                         f"{r.id}: {key} takes {r.switch.standard} or "
                                         f"{', '.join(r.switch.deviations)}."))
        else:
            errors.append(FieldError(where, "設定できない項目です。",
                                     f"{key} is not a municipality setting."))
    return errors


def _new_id() -> str:
    return uuid.uuid4().hex


def _date(value: object, field_name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed([FieldError(field_name, "日付は YYYY-MM-DD で入力してください。",
                                           f"{field_name} must be YYYY-MM-DD.")]) from None


def _text(data: Mapping[str, object], name: str, ja: str, minimum: int = 1,
          maximum: int = 4000) -> str:
    value = str(data.get(name, "") or "").strip()
    if not minimum <= len(value) <= maximum:
        raise ValidationFailed([FieldError(name, f"{ja}を{minimum}〜{maximum}文字で入力してください。",
                                           f"{name} must be {minimum} to {maximum} characters.")])
    return value


class Standard:
    def __init__(self, db: Database, clock: Clock, municipalities: Municipalities) -> None:
        self.db = db
        self.clock = clock
        self.municipalities = municipalities

    @property
    def spec(self) -> Spec:
        return spec_module.current()

    # -- the settings a municipality runs with --------------------------------------

    def effective_settings(self, lgcode: str) -> dict[str, Any]:
        """Every option and switch with the value in force: the municipality's, or the
        standard's default."""
        stored = self.municipalities.get(lgcode)["settings"]
        found: dict[str, Any] = {}
        for key, r in self.spec.options().items():
            assert r.option is not None
            found[key] = {"requirement": r.id, "title": r.title, "kind": "option",
                          "value": stored.get(key, r.option.default),
                          "choices": list(r.option.choices), "default": r.option.default}
        for key, r in self.spec.switches().items():
            assert r.switch is not None
            found[key] = {"requirement": r.id, "title": r.title, "kind": "switch",
                          "value": stored.get(key, r.switch.standard),
                          "standard": r.switch.standard, "deviations": list(r.switch.deviations)}
        return found

    # -- deviations ------------------------------------------------------------------

    def deviations(self, lgcode: str | None = None,
                   include_withdrawn: bool = False) -> list[dict[str, Any]]:
        """Public: anyone may read every municipality's deviations."""
        names = {m["lgcode"]: m["name"] for m in self.municipalities.list(include_retired=True)}
        with self.db.platform() as conn:
            found = store.deviations(conn, lgcode, include_withdrawn)
        spec = self.spec
        return [{**self._deviation_view(d),
                 "municipality": names.get(d["lgcode"], d["lgcode"]),
                 "requirement_title": spec.requirements[d["requirement"]].title
                 if d["requirement"] in spec.requirements else ""} for d in found]

    @staticmethod
    def _deviation_view(d: dict[str, Any]) -> dict[str, Any]:
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in d.items()
                if k != "recorded_by"}

    def record_deviation(self, actor: StaffMember, lgcode: str, data: Mapping[str, object]
                         ) -> dict[str, Any]:
        """A departure from a mandatory requirement, with what, why, who decided, when, and when
        it will be reviewed. A requirement with a behaviour switch is switched here, and only
        here."""
        actor.require(Permission.MUNICIPALITY_MANAGE, lgcode)
        rid = str(data.get("requirement", ""))
        requirement = self.spec.requirements.get(rid)
        if requirement is None:
            raise ValidationFailed([FieldError("requirement", f"標準仕様にない要件です: {rid}",
                                               f"{rid} is not a requirement of the standard.")])
        if requirement.kind != "mandatory":
            raise RuleViolation(f"{rid} は実装必須の要件ではありません(逸脱の記録は実装必須の要件が対象です)。",
                                f"{rid} is not mandatory: deviations are from mandatory "
                                "requirements.", field="requirement")
        what = _text(data, "what", "相違点")
        reason = _text(data, "reason", "理由", minimum=10)
        decided_by = _text(data, "decided_by", "決定者", maximum=100)
        decided_on = _date(data.get("decided_on"), "decided_on")
        review_on = _date(data.get("review_on"), "review_on")
        today = today_jst(self.clock)
        if decided_on > today:
            raise ValidationFailed([FieldError("decided_on", "決定日が未来です。",
                                               "decided_on is in the future.")])
        if not decided_on < review_on <= decided_on + MAX_REVIEW:
            raise ValidationFailed([FieldError("review_on", "見直し日は決定日の後、3年以内です。",
                                               "review_on must fall after decided_on, within "
                                               "three years.")])
        value = str(data.get("value", "") or "")
        setting = ""
        if requirement.switch is not None:
            if value not in requirement.switch.deviations:
                raise ValidationFailed([FieldError(
                    "value", f"{rid} の逸脱で選べる値は {' / '.join(requirement.switch.deviations)} です。",
                    f"{rid}'s switch takes {', '.join(requirement.switch.deviations)}.")])
            setting = requirement.switch.setting
        elif value:
            raise ValidationFailed([FieldError("value", f"{rid} には挙動スイッチがありません。",
                                               f"{rid} has no behaviour switch.")])
        row = {"id": _new_id(), "lgcode": lgcode, "requirement": rid, "what": what,
               "reason": reason, "decided_by": decided_by, "decided_on": decided_on,
               "review_on": review_on, "setting": setting, "value": value, "status": "active",
               "recorded_by": actor.id, "recorded_at": self.clock.now(), "withdrawn_at": None}
        duplicate = Conflict(f"{rid} の逸脱は記録済みです。先に取り下げてください。",
                             f"A deviation from {rid} is recorded already.", field="requirement")
        with self.db.unit_of_work(lgcode):
            with self.db.platform() as conn:
                if any(d["requirement"] == rid for d in store.deviations(conn, lgcode)):
                    raise duplicate
                try:
                    with conn.begin_nested():  # a concurrent recording meets the unique index
                        store.insert_deviation(conn, row)
                except IntegrityError:
                    raise duplicate from None
            if setting:
                self.municipalities.update_settings(lgcode, {setting: value}, self.clock.now(),
                                                    actor.id, by_deviation=True)
        return self._deviation_view(row)

    def withdraw_deviation(self, actor: StaffMember, deviation_id: str) -> dict[str, Any]:
        """The municipality conforms again; a switch returns to the standard's value."""
        with self.db.platform() as conn:
            found = store.deviation(conn, deviation_id)
        if found is None or found["status"] != "active":
            raise NotFound("逸脱の記録が見つかりません。", "No such active deviation.")
        actor.require(Permission.MUNICIPALITY_MANAGE, found["lgcode"])
        requirement = self.spec.requirements.get(found["requirement"])
        with self.db.unit_of_work(found["lgcode"]):
            with self.db.platform() as conn:
                store.withdraw_deviation(conn, deviation_id, self.clock.now())
            if found["setting"] and requirement is not None and requirement.switch is not None:
                self.municipalities.update_settings(
                    found["lgcode"], {found["setting"]: requirement.switch.standard},
                    self.clock.now(), actor.id, by_deviation=True)
        return {**self._deviation_view(found), "status": "withdrawn"}

    # -- change proposals ------------------------------------------------------------

    def propose(self, actor: StaffMember, data: Mapping[str, object]) -> dict[str, Any]:
        """Staff of any municipality propose a change to a requirement, or a new one."""
        if actor.lgcode is None:
            raise Forbidden("変更提案は地方公共団体の職員が行います。",
                            "Change proposals come from municipalities' staff.")
        rid = data.get("requirement")
        if rid is not None and str(rid) not in self.spec.requirements:
            raise ValidationFailed([FieldError("requirement", f"標準仕様にない要件です: {rid}",
                                               f"{rid} is not a requirement of the standard.")])
        row = {"id": _new_id(), "requirement": str(rid) if rid else None,
               "title": _text(data, "title", "件名", maximum=200),
               "proposed_text": _text(data, "proposed_text", "提案する要件の文"),
               "rationale": _text(data, "rationale", "理由", minimum=10),
               "lgcode": actor.lgcode, "proposed_by": actor.id, "status": "open",
               "decision_reason": "", "decided_by": None, "decided_at": None,
               "target_version": "", "created_at": self.clock.now()}
        with self.db.platform() as conn:
            store.insert_proposal(conn, row)
            return self._proposal_view(conn, row)

    def _proposal_view(self, conn: Any, row: dict[str, Any], detail: bool = True
                       ) -> dict[str, Any]:
        view = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()
                if k not in ("proposed_by", "decided_by")}
        current = self.spec.requirements.get(row["requirement"] or "")
        view["current_text"] = current.text if current else None
        if detail:
            view["endorsements"] = [{"lgcode": e["lgcode"], "at": e["at"].isoformat()}
                                    for e in store.endorsements(conn, row["id"])]
            view["comments"] = [{"lgcode": c["lgcode"], "text": c["text"],
                                 "at": c["at"].isoformat()} for c in store.comments(conn, row["id"])]
        return view

    @staticmethod
    def _reader(actor: StaffMember) -> None:
        """Proposals are the municipalities' and the maintainers' working papers."""
        if not (actor.can(Permission.DASHBOARD) or actor.can(Permission.STANDARD_MAINTAIN)):
            raise Forbidden("変更提案は地方公共団体の職員と標準仕様の管理者が見られます。",
                            "Proposals are for municipalities' staff and the maintainers.")

    def proposals(self, actor: StaffMember | None, status: str | None = None
                  ) -> list[dict[str, Any]]:
        """`actor` None: the platform itself (the public changelog, the console notice)."""
        if actor is not None:
            self._reader(actor)
        with self.db.platform() as conn:
            counts = store.endorsement_counts(conn)
            return [{**self._proposal_view(conn, p, detail=False),
                     "endorsement_count": counts.get(p["id"], 0)}
                    for p in store.proposals(conn, status)]

    def proposal(self, actor: StaffMember, proposal_id: str) -> dict[str, Any]:
        self._reader(actor)
        with self.db.platform() as conn:
            found = store.proposal(conn, proposal_id)
            if found is None:
                raise NotFound("変更提案が見つかりません。", "No such proposal.")
            return self._proposal_view(conn, found)

    def endorse(self, actor: StaffMember, proposal_id: str) -> dict[str, Any]:
        """Another municipality supports the proposal (once each; not the proposer's own)."""
        # An endorsement speaks for the whole municipality: its administrators give it.
        actor.require(Permission.MUNICIPALITY_MANAGE)
        twice = Conflict("この団体は賛同済みです。", "Your municipality has endorsed it already.")
        with self.db.platform() as conn:
            found = self._open(conn, proposal_id)
            if found["lgcode"] == actor.lgcode:
                raise RuleViolation("提案した団体は賛同できません。",
                                    "The proposing municipality cannot endorse its own proposal.")
            if any(e["lgcode"] == actor.lgcode for e in store.endorsements(conn, proposal_id)):
                raise twice
            try:
                with conn.begin_nested():
                    store.insert_endorsement(conn, {"proposal_id": proposal_id,
                                                    "lgcode": actor.lgcode, "staff_id": actor.id,
                                                    "at": self.clock.now()})
            except IntegrityError:
                raise twice from None
            return self._proposal_view(conn, found)

    def comment(self, actor: StaffMember, proposal_id: str, text: object) -> dict[str, Any]:
        if actor.lgcode is None and not actor.can(Permission.STANDARD_MAINTAIN):
            raise Forbidden("意見は地方公共団体の職員と標準仕様の管理者が述べます。",
                            "Comments come from municipalities and the maintainers.")
        body = _text({"text": text}, "text", "意見", maximum=2000)
        with self.db.platform() as conn:
            found = self._open(conn, proposal_id)
            store.insert_comment(conn, {"id": _new_id(), "proposal_id": proposal_id,
                                        "lgcode": actor.lgcode, "staff_id": actor.id,
                                        "text": body, "at": self.clock.now()})
            return self._proposal_view(conn, found)

    @staticmethod
    def _open(conn: Any, proposal_id: str) -> dict[str, Any]:
        found = store.proposal(conn, proposal_id)
        if found is None:
            raise NotFound("変更提案が見つかりません。", "No such proposal.")
        if found["status"] != "open":
            raise Conflict("この変更提案は結論が出ています。", "The proposal has been decided.")
        return found

    def decide(self, actor: StaffMember, proposal_id: str, accept: bool,
               reason: object) -> dict[str, Any]:
        """The standard's maintainers accept (for the next version) or reject, with reasons."""
        actor.require(Permission.STANDARD_MAINTAIN)
        why = _text({"reason": reason}, "reason", "判断の理由", minimum=5)
        with self.db.platform() as conn:
            found = self._open(conn, proposal_id)
            values = {"status": "accepted" if accept else "rejected", "decision_reason": why,
                      "decided_by": actor.id, "decided_at": self.clock.now(),
                      "target_version": self.next_version() if accept else ""}
            if not store.decide(conn, proposal_id, values):
                raise Conflict("この変更提案は結論が出ています。", "The proposal has been decided.")
            return self._proposal_view(conn, {**found, **values})

    # -- versions ----------------------------------------------------------------------

    def next_version(self) -> str:
        major, minor, _ = (int(p) for p in self.spec.version.split("."))
        return f"{major}.{minor + 1}.0"

    def changelog(self) -> dict[str, Any]:
        """The released versions (from the spec) and the next one: the accepted proposals."""
        accepted = self.proposals(None, "accepted")
        return {"current": self.spec.version,
                "released": list(reversed(self.spec.changelog)),
                "next": {"version": self.next_version(),
                         "changes": [{"proposal": p["id"], "requirement": p["requirement"],
                                      "title": p["title"], "lgcode": p["lgcode"]}
                                     for p in accepted]}}

    def notice(self, lgcode: str | None) -> dict[str, Any]:
        """What the staff console shows: the version in force and what awaits."""
        with self.db.platform() as conn:
            open_count = len(store.proposals(conn, "open"))
            accepted = len(store.proposals(conn, "accepted"))
            mine = len(store.deviations(conn, lgcode)) if lgcode else 0
        return {"version": self.spec.version, "open_proposals": open_count,
                "accepted_for_next": accepted, "next_version": self.next_version(),
                "deviations": mine}
