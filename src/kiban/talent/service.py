"""Use cases of the specialist pool, with who may see and do what.

- A specialist (role `specialist`, no municipality) keeps a profile, sees open needs ranked
  for them, accepts or declines offers, reports each month's activity.
- Municipality staff with `talent.manage` post needs (alone or jointly with other
  municipalities, each confirming its own share), see ranked candidates, offer engagements,
  end them and evaluate the specialist.
- An engagement, its reports and evaluations are seen only by its specialist and its
  municipalities; another municipality is told it does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from kiban.core.clock import Clock, today_jst
from kiban.core.errors import Conflict, FieldError, Forbidden, NotFound, RuleViolation, ValidationFailed
from kiban.core.prefectures import PREFECTURES, prefecture_of
from kiban.platform.auth import Permission, StaffMember
from kiban.platform.db import Database
from kiban.platform.tenants import Municipalities
from kiban.talent import model, store
from kiban.talent.model import Engagement, EngagementStatus, Need, NeedStatus, Profile

LIST_LIMIT = 200  # open needs listed or ranked at once, soonest first


def _new_id() -> str:
    return uuid.uuid4().hex


def _no_such(what: str = "engagement") -> NotFound:
    labels = {"engagement": "契約", "need": "募集", "specialist": "専門人材"}
    return NotFound(f"{labels[what]}が見つかりません。", f"No such {what}.")


class Talent:
    def __init__(self, db: Database, clock: Clock, municipalities: Municipalities) -> None:
        self.db = db
        self.clock = clock
        self.municipalities = municipalities

    def this_month(self) -> str:
        return today_jst(self.clock).isoformat()[:7]

    # -- who may do what -------------------------------------------------------------

    @staticmethod
    def _user(actor: StaffMember) -> None:
        if not (actor.can(Permission.TALENT_MANAGE) or actor.can(Permission.TALENT_PROFILE)
                or actor.can(Permission.PLATFORM_MANAGE)):
            raise Forbidden("この操作の権限がありません。", "Your roles do not allow this action.")

    @staticmethod
    def _manager(actor: StaffMember) -> str:
        actor.require(Permission.TALENT_MANAGE)
        assert actor.lgcode is not None
        return actor.lgcode

    def _specialist(self, conn: Connection, actor: StaffMember) -> Profile:
        actor.require(Permission.TALENT_PROFILE)
        found = store.profile_by_staff(conn, actor.id)
        if found is None:
            raise RuleViolation("先にプロフィールを登録してください。",
                                "Register your profile first.", field="profile")
        return found

    @staticmethod
    def _sees_need(actor: StaffMember, need: Need) -> bool:
        return need.status != NeedStatus.AWAITING or actor.lgcode in need.participants

    def _engagement_for(self, conn: Connection, actor: StaffMember, engagement_id: str
                        ) -> tuple[Engagement, Need, dict[str, Any]]:
        found = store.engagement(conn, engagement_id)
        if found is None:
            raise _no_such()
        e, meta = found
        need_found = store.need(conn, e.need_id)
        assert need_found is not None
        need = need_found[0]
        own = store.profile_by_staff(conn, actor.id) if actor.can(Permission.TALENT_PROFILE) \
            else None
        party = (own is not None and own.id == e.specialist_id) or (
            actor.can(Permission.TALENT_MANAGE) and actor.lgcode in e.days)
        if not party:
            raise _no_such()  # the same answer as for an id that does not exist
        return e, need, meta

    # -- skills ----------------------------------------------------------------------

    def skills(self) -> list[dict[str, Any]]:
        with self.db.platform() as conn:
            return store.skill_rows(conn)

    def add_skill(self, actor: StaffMember | None, code: str, name_ja: str, name_en: str) -> None:
        """The skill list is maintained for everyone by the platform's administrators."""
        if actor is not None:
            actor.require(Permission.PLATFORM_MANAGE)
        errors = []
        if not code or len(code) > 40 or not code.replace("_", "").replace("-", "").isalnum() \
                or not code.isascii():
            errors.append(FieldError("code", "コードは英数字です。", "code must be ASCII letters."))
        if not name_ja.strip() or not name_en.strip():
            errors.append(FieldError("name_ja", "名称を入力してください。", "names are required."))
        if errors:
            raise ValidationFailed(errors)
        try:
            with self.db.platform() as conn:
                store.add_skill(conn, code, name_ja.strip(), name_en.strip())
        except IntegrityError:
            raise Conflict("このスキルは登録済みです。", "The skill exists.", field="code") from None

    # -- profiles --------------------------------------------------------------------

    def save_profile(self, actor: StaffMember, data: Mapping[str, object]) -> dict[str, Any]:
        actor.require(Permission.TALENT_PROFILE)
        with self.db.platform() as conn:
            fields = model.validate_profile(data, store.skill_names(conn), PREFECTURES)
            existing = store.profile_by_staff(conn, actor.id)
            specialist_id = existing.id if existing else _new_id()
            if existing is not None:
                store.lock_specialist(conn, existing.id)
                model.check_availability_change(
                    store.engagements(conn, specialist_id=existing.id),
                    int(str(fields["days_per_month"])), self.this_month())
            store.save_profile(conn, specialist_id, actor.id, fields, self.clock.now(),
                               exists=existing is not None)
            saved = store.profile(conn, specialist_id)
            assert saved is not None
            return self._profile_view(conn, saved, full=True)

    def my_profile(self, actor: StaffMember) -> dict[str, Any] | None:
        actor.require(Permission.TALENT_PROFILE)
        with self.db.platform() as conn:
            found = store.profile_by_staff(conn, actor.id)
            return self._profile_view(conn, found, full=True) if found else None

    def profile(self, actor: StaffMember, specialist_id: str) -> dict[str, Any]:
        self._user(actor)
        with self.db.platform() as conn:
            found = store.profile(conn, specialist_id)
            if found is None:
                raise _no_such("specialist")
            return self._profile_view(conn, found, full=self._sees_private(conn, actor, found))

    @staticmethod
    def _sees_private(conn: Connection, actor: StaffMember, p: Profile) -> bool:
        """The specialist, and municipalities that have engaged them (an offer alone does not
        unmask: a municipality could offer and withdraw to read what is hidden)."""
        own = store.profile_by_staff(conn, actor.id)
        if own is not None and own.id == p.id:
            return True
        return actor.lgcode is not None and any(
            actor.lgcode in e.days for e in store.engagements(conn, specialist_id=p.id)
            if e.status in (EngagementStatus.ACCEPTED, EngagementStatus.ENDED))

    def _profile_view(self, conn: Connection, p: Profile, full: bool) -> dict[str, Any]:
        names = store.skill_names(conn, active_only=False)
        mine = store.engagements(conn, specialist_id=p.id)
        month = self.this_month()
        view: dict[str, Any] = {
            "id": p.id, "display_name": p.display_name, "experience": p.experience,
            "rate_per_day": p.rate_per_day, "skills": sorted(p.skills),
            "skill_names": [names.get(s, s) for s in sorted(p.skills)],
            "regions": sorted(p.regions, key=PREFECTURES.index), "onsite": p.onsite,
            "remote": p.remote, "days_per_month": p.days_per_month,
            "days_free_this_month": p.days_per_month - model.committed(mine, month),
            "listed": p.listed, "hidden": sorted(p.hidden),
            "completed_engagements": sum(1 for e in mine if e.status == EngagementStatus.ENDED),
        }
        if not full:
            for name in p.hidden:
                view[name] = None
            if "display_name" in p.hidden:
                view["display_name"] = f"専門人材 {p.id[:6]}"
            view.pop("hidden")
        return view

    # -- needs -----------------------------------------------------------------------

    def _known_municipalities(self) -> dict[str, str]:
        return {m["lgcode"]: m["name"] for m in self.municipalities.list()}

    def post_need(self, actor: StaffMember, data: Mapping[str, object]) -> dict[str, Any]:
        """A need, alone or jointly: the other municipalities each confirm their own share
        before it opens, so no one is committed by another's decision."""
        lead = self._manager(actor)
        munis = self._known_municipalities()
        with self.db.platform() as conn:
            fields = model.validate_need(data, lead, store.skill_names(conn), munis,
                                         self.this_month())
            shares: list[model.Share] = fields.pop("shares")  # type: ignore[assignment]
            joint = any(not s.confirmed for s in shares)
            need = Need(id=_new_id(), lead_lgcode=lead, shares=tuple(shares),
                        status=NeedStatus.AWAITING if joint else NeedStatus.OPEN,
                        title=str(fields["title"]), tasks=str(fields["tasks"]),
                        required_skills=tuple(fields["required_skills"]),  # type: ignore[arg-type]
                        preferred_skills=tuple(fields["preferred_skills"]),  # type: ignore[arg-type]
                        days_per_month=int(str(fields["days_per_month"])),
                        start=str(fields["start"]), end=str(fields["end"]),
                        onsite_percent=int(str(fields["onsite_percent"])),
                        budget_per_month=int(str(fields["budget_per_month"])))
            store.insert_need(conn, need, actor.id, self.clock.now())
            return self._need_view(conn, need, munis)

    def confirm_share(self, actor: StaffMember, need_id: str) -> dict[str, Any]:
        lgcode = self._manager(actor)
        with self.db.platform() as conn:
            store.lock_need(conn, need_id)  # two confirmations at once must see each other
            need = self._need(conn, actor, need_id)
            if lgcode not in need.participants:
                raise Forbidden("この募集の参加団体ではありません。",
                                "Your municipality is not part of this need.")
            if need.status != NeedStatus.AWAITING:
                raise Conflict("この募集は参加確認の段階ではありません。",
                               "This need is not awaiting confirmation.")
            store.confirm_share(conn, need_id, lgcode)
            need = self._need(conn, actor, need_id)
            if all(s.confirmed for s in need.shares):
                store.set_need_status(conn, need_id, NeedStatus.OPEN)
                need = replace(need, status=NeedStatus.OPEN)
            return self._need_view(conn, need, self._known_municipalities())

    def close_need(self, actor: StaffMember, need_id: str) -> dict[str, Any]:
        lgcode = self._manager(actor)
        with self.db.platform() as conn:
            need = self._need(conn, actor, need_id)
            if need.lead_lgcode != lgcode:
                raise Forbidden("募集を締め切れるのは募集した団体です。",
                                "Only the posting municipality can close the need.")
            store.set_need_status(conn, need_id, NeedStatus.CLOSED)
            return self._need_view(conn, replace(need, status=NeedStatus.CLOSED),
                                   self._known_municipalities())

    def _need(self, conn: Connection, actor: StaffMember, need_id: str) -> Need:
        found = store.need(conn, need_id)
        if found is None or not self._sees_need(actor, found[0]):
            raise _no_such("need")
        return found[0]

    def _need_view(self, conn: Connection, need: Need, munis: Mapping[str, str]
                   ) -> dict[str, Any]:
        return self._need_views(conn, [need], munis)[need.id]

    def _need_views(self, conn: Connection, needs: list[Need], munis: Mapping[str, str]
                    ) -> dict[str, dict[str, Any]]:
        """Views of several needs with two queries in all (skill names, engagements), not
        two per need."""
        names = store.skill_names(conn, active_only=False)
        engaged: dict[str, int] = {}
        for e in store.engagements(conn, need_ids=[n.id for n in needs]) if needs else []:
            if e.status == EngagementStatus.ACCEPTED:
                engaged[e.need_id] = engaged.get(e.need_id, 0) + e.days_per_month
        return {need.id: self._view_of(need, munis, names, engaged.get(need.id, 0))
                for need in needs}

    @staticmethod
    def _view_of(need: Need, munis: Mapping[str, str], names: Mapping[str, str],
                 engaged: int) -> dict[str, Any]:
        return {
            "id": need.id, "lead_lgcode": need.lead_lgcode, "title": need.title,
            "tasks": need.tasks, "required_skills": list(need.required_skills),
            "required_skill_names": [names.get(s, s) for s in need.required_skills],
            "preferred_skills": list(need.preferred_skills),
            "preferred_skill_names": [names.get(s, s) for s in need.preferred_skills],
            "days_per_month": need.days_per_month, "start": need.start, "end": need.end,
            "onsite_percent": need.onsite_percent, "budget_per_month": need.budget_per_month,
            "budget_per_day": need.budget_per_day, "status": need.status.value,
            "status_label": model.STATUS_LABELS[need.status.value],
            "prefectures": sorted({prefecture_of(c) for c in need.participants},
                                  key=PREFECTURES.index),
            "shares": [{"lgcode": s.lgcode, "name": munis.get(s.lgcode, s.lgcode),
                        "days": s.days, "confirmed": s.confirmed} for s in need.shares],
            "days_engaged": engaged,
        }

    def need(self, actor: StaffMember, need_id: str) -> dict[str, Any]:
        self._user(actor)
        with self.db.platform() as conn:
            return self._need_view(conn, self._need(conn, actor, need_id),
                                   self._known_municipalities())

    def needs(self, actor: StaffMember, scope: str = "open") -> list[dict[str, Any]]:
        """`open`: every open need; `mine`: those of the actor's municipality, any status."""
        self._user(actor)
        munis = self._known_municipalities()
        with self.db.platform() as conn:
            if scope == "mine":
                if actor.lgcode is None:
                    return []
                found = store.needs(conn, lgcode=actor.lgcode)
            else:
                found = store.needs(conn, statuses=[NeedStatus.OPEN.value], limit=LIST_LIMIT)
            views = self._need_views(conn, found, munis)
            return [views[n.id] for n in found]

    # -- matching --------------------------------------------------------------------

    def candidates(self, actor: StaffMember, need_id: str, limit: int = 50
                   ) -> list[dict[str, Any]]:
        """Specialists for a need, best first, each with the reasons for its rank."""
        self._manager(actor)
        with self.db.platform() as conn:
            need = self._need(conn, actor, need_id)
            if actor.lgcode not in need.participants:
                raise Forbidden("候補者を見られるのは募集の参加団体です。",
                                "Only the need's municipalities see its candidates.")
            everyone = store.profiles(conn)
            by_specialist: dict[str, list[Engagement]] = {}
            for e in store.engagements(conn):
                by_specialist.setdefault(e.specialist_id, []).append(e)
            prefs = frozenset(prefecture_of(c) for c in need.participants)
            ranked = model.rank_specialists(need, prefs, everyone, by_specialist,
                                            store.skill_names(conn, active_only=False))
            people = {p.id: p for p in everyone}
            return [{"rank": i + 1, "score": m.score, "eligible": m.eligible,
                     "days_free": m.days_free, "reasons": list(m.reasons),
                     "specialist": self._profile_view(
                         conn, people[m.specialist_id],
                         full=self._sees_private(conn, actor, people[m.specialist_id]))}
                    for i, m in enumerate(ranked[:limit])]

    def matching_needs(self, actor: StaffMember) -> list[dict[str, Any]]:
        """Open needs for the signed-in specialist, best first, with reasons."""
        with self.db.platform() as conn:
            me = self._specialist(conn, actor)
            open_needs = store.needs(conn, statuses=[NeedStatus.OPEN.value], limit=LIST_LIMIT)
            munis = self._known_municipalities()
            ranked = model.rank_needs(
                me, [(n, frozenset(prefecture_of(c) for c in n.participants))
                     for n in open_needs],
                store.engagements(conn, specialist_id=me.id),
                store.skill_names(conn, active_only=False))
            views = self._need_views(conn, open_needs, munis)
            return [{"rank": i + 1, "score": m.score, "eligible": m.eligible,
                     "reasons": list(m.reasons),
                     "need": views[m.need_id]}
                    for i, m in enumerate(ranked)]

    # -- engagements -----------------------------------------------------------------

    def offer(self, actor: StaffMember, need_id: str, data: Mapping[str, object]
              ) -> dict[str, Any]:
        """The posting municipality offers a specialist an engagement on its need: by
        default the whole period and every municipality's share."""
        lgcode = self._manager(actor)
        with self.db.platform() as conn:
            need = self._need(conn, actor, need_id)
            if need.lead_lgcode != lgcode:
                raise Forbidden("打診できるのは募集した団体です。",
                                "Only the posting municipality can make offers.")
            if need.status != NeedStatus.OPEN:
                raise Conflict(f"この募集は{model.STATUS_LABELS[need.status.value]}です。",
                               f"The need is {need.status.value}, not open.")
            specialist_id = str(data.get("specialist_id", ""))
            if not store.lock_specialist(conn, specialist_id):
                raise _no_such("specialist")
            person = store.profile(conn, specialist_id)
            assert person is not None
            if not person.listed:
                raise RuleViolation("この専門人材は現在打診を受け付けていません。",
                                    "The specialist is not taking offers.", field="specialist_id")
            start = model.parse_month(data.get("start", need.start), "start")
            end = model.parse_month(data.get("end", need.end), "end")
            if not need.start <= start <= end <= need.end:
                raise ValidationFailed([FieldError(
                    "end", f"契約期間は募集期間({need.start}〜{need.end})の中で指定してください。",
                    f"the period must lie within the need's ({need.start} to {need.end}).")])
            days = self._offer_days(need, data.get("days"))
            others = store.engagements(conn, need_ids=[need.id])
            for code, asked in days.items():
                taken = sum(e.days.get(code, 0) for e in others if e.live()
                            and e.start <= end and start <= e.last_month)
                if taken + asked > need.share_days()[code]:
                    raise RuleViolation(
                        f"{code} の日数が募集を超えます(募集 月{need.share_days()[code]}日、"
                        f"既に打診・契約 月{taken}日)。",
                        f"{code}'s days would exceed the need ({need.share_days()[code]} asked, "
                        f"{taken} already offered or engaged).", field="days")
            new = Engagement(id=_new_id(), need_id=need.id, specialist_id=specialist_id,
                             start=start, end=end, days=days, status=EngagementStatus.OFFERED)
            model.check_fits(person, store.engagements(conn, specialist_id=specialist_id), new)
            store.insert_engagement(conn, new, actor.id, self.clock.now())
            return self._engagement_view(conn, new, need)

    @staticmethod
    def _offer_days(need: Need, value: object) -> dict[str, int]:
        if value is None:
            return need.share_days()
        shares = need.share_days()
        if not isinstance(value, Mapping) or not value:
            raise ValidationFailed([FieldError("days", "団体ごとの日数で指定してください。",
                                               "days must map municipalities to days.")])
        days: dict[str, int] = {}
        for code, d in value.items():
            if code not in shares:
                raise ValidationFailed([FieldError(f"days.{code}", "この募集の参加団体ではありません。",
                                                   f"{code} is not part of this need.")])
            if isinstance(d, bool) or not isinstance(d, int) or d < 1:
                raise ValidationFailed([FieldError(f"days.{code}", "日数は1日以上です。",
                                                   "days must be at least 1.")])
            days[str(code)] = d
        return days

    def respond(self, actor: StaffMember, engagement_id: str, accept: bool) -> dict[str, Any]:
        """The specialist accepts or declines; acceptance checks availability again under the
        specialist's lock, since another offer may have been accepted meanwhile."""
        with self.db.platform() as conn:
            me = self._specialist(conn, actor)
            e, need, _ = self._engagement_for(conn, actor, engagement_id)
            if e.specialist_id != me.id:
                raise _no_such()
            if e.status != EngagementStatus.OFFERED:
                raise Conflict(f"この契約は{model.STATUS_LABELS[e.status.value]}です。",
                               f"The engagement is {e.status.value}, not offered.")
            if accept:
                store.lock_specialist(conn, me.id)
                if need.status not in (NeedStatus.OPEN, NeedStatus.FILLED):
                    raise Conflict("この募集は締め切られました。", "The need has been closed.")
                model.check_fits(me, store.engagements(conn, specialist_id=me.id), e)
            e = replace(e, status=EngagementStatus.ACCEPTED if accept else EngagementStatus.DECLINED)
            self._move(conn, e, EngagementStatus.OFFERED)
            if accept:
                self._refresh_filled(conn, need)
            return self._engagement_view(conn, e, need)

    def _move(self, conn: Connection, e: Engagement, expected: EngagementStatus) -> None:
        if not store.update_engagement(conn, e, self.clock.now(), expected):
            raise Conflict("この契約は他の操作で変更されました。画面を更新してください。",
                           "The engagement was changed meanwhile; reload it.")

    @staticmethod
    def _refresh_filled(conn: Connection, need: Need) -> None:
        engaged = sum(x.days_per_month for x in store.engagements(conn, need_ids=[need.id])
                      if x.status == EngagementStatus.ACCEPTED)
        if need.status == NeedStatus.OPEN and engaged >= need.days_per_month:
            store.set_need_status(conn, need.id, NeedStatus.FILLED)
        elif need.status == NeedStatus.FILLED and engaged < need.days_per_month:
            store.set_need_status(conn, need.id, NeedStatus.OPEN)

    def withdraw(self, actor: StaffMember, engagement_id: str) -> dict[str, Any]:
        lgcode = self._manager(actor)
        with self.db.platform() as conn:
            e, need, _ = self._engagement_for(conn, actor, engagement_id)
            if need.lead_lgcode != lgcode:
                raise Forbidden("取り下げられるのは募集した団体です。",
                                "Only the posting municipality can withdraw an offer.")
            if e.status != EngagementStatus.OFFERED:
                raise Conflict("打診中の契約だけを取り下げられます。",
                               "Only an offer can be withdrawn.")
            e = replace(e, status=EngagementStatus.WITHDRAWN)
            self._move(conn, e, EngagementStatus.OFFERED)
            return self._engagement_view(conn, e, need)

    def end(self, actor: StaffMember, engagement_id: str, last_month: object) -> dict[str, Any]:
        """Either party ends an engagement after its last month worked; the months after it
        are freed."""
        with self.db.platform() as conn:
            e, need, _ = self._engagement_for(conn, actor, engagement_id)
            if e.status != EngagementStatus.ACCEPTED:
                raise Conflict("契約中の契約だけを終了できます。", "Only an accepted engagement can end.")
            month = model.parse_month(last_month, "last_month")
            if not e.start <= month <= e.end:
                raise ValidationFailed([FieldError(
                    "last_month", f"最終月は契約期間({e.start}〜{e.end})の中で指定してください。",
                    f"last_month must lie within {e.start} to {e.end}.")])
            store.lock_specialist(conn, e.specialist_id)
            e = replace(e, status=EngagementStatus.ENDED, ended_month=month)
            self._move(conn, e, EngagementStatus.ACCEPTED)
            self._refresh_filled(conn, need)
            return self._engagement_view(conn, e, need)

    def report(self, actor: StaffMember, engagement_id: str, data: Mapping[str, object]
               ) -> dict[str, Any]:
        """The specialist's monthly activity report: days worked for each municipality, at
        most the days agreed, for a month of the engagement that has begun."""
        with self.db.platform() as conn:
            me = self._specialist(conn, actor)
            e, need, _ = self._engagement_for(conn, actor, engagement_id)
            if e.specialist_id != me.id:
                raise _no_such()
            if e.status not in (EngagementStatus.ACCEPTED, EngagementStatus.ENDED):
                raise Conflict("契約前の活動は報告できません。", "The engagement has not started.")
            month = model.parse_month(data.get("month"), "month")
            if not e.start <= month <= e.last_month:
                raise ValidationFailed([FieldError(
                    "month", f"報告月は契約期間({e.start}〜{e.last_month})の中です。",
                    f"month must lie within {e.start} to {e.last_month}.")])
            if month > self.this_month():
                raise ValidationFailed([FieldError("month", "まだ始まっていない月は報告できません。",
                                                   "month has not begun.")])
            days = data.get("days")
            if not isinstance(days, Mapping):
                raise ValidationFailed([FieldError("days", "団体ごとの稼働日数で指定してください。",
                                                   "days must map municipalities to days.")])
            worked: dict[str, int] = {}
            for code, d in days.items():
                if code not in e.days:
                    raise ValidationFailed([FieldError(
                        f"days.{code}", "この契約の団体ではありません。", f"{code} is not a party.")])
                if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= e.days[code]:
                    raise ValidationFailed([FieldError(
                        f"days.{code}", f"稼働日数は0〜{e.days[code]}日(契約日数)です。",
                        f"days for {code} must be 0 to {e.days[code]}, the days agreed.")])
                worked[str(code)] = d
            summary = str(data.get("summary", "")).strip()
            if not summary or len(summary) > 4000:
                raise ValidationFailed([FieldError("summary", "活動内容を入力してください(4000文字以内)。",
                                                   "summary is required (at most 4000).")])
            try:
                with conn.begin_nested():
                    store.insert_report(conn, e.id, month, worked, summary, self.clock.now())
            except IntegrityError:
                raise Conflict(f"{month} の報告は提出済みです。",
                               f"The report for {month} has been submitted.", field="month") from None
            return self._engagement_view(conn, e, need)

    def evaluate(self, actor: StaffMember, engagement_id: str, data: Mapping[str, object]
                 ) -> dict[str, Any]:
        lgcode = self._manager(actor)
        with self.db.platform() as conn:
            e, need, _ = self._engagement_for(conn, actor, engagement_id)
            if e.status != EngagementStatus.ENDED:
                raise Conflict("終了した契約だけを評価できます。", "Only an ended engagement is evaluated.")
            rating = data.get("rating")
            if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
                raise ValidationFailed([FieldError("rating", "評価は1〜5です。", "rating is 1 to 5.")])
            comment = str(data.get("comment", "")).strip()
            if len(comment) > 1000:
                raise ValidationFailed([FieldError("comment", "コメントは1000文字以内です。",
                                                   "comment is at most 1000 characters.")])
            try:
                with conn.begin_nested():
                    store.insert_evaluation(conn, e.id, lgcode, rating, comment, actor.id,
                                            self.clock.now())
            except IntegrityError:
                raise Conflict("この契約は評価済みです。", "Already evaluated.") from None
            return self._engagement_view(conn, e, need)

    def engagement(self, actor: StaffMember, engagement_id: str) -> dict[str, Any]:
        with self.db.platform() as conn:
            e, need, _ = self._engagement_for(conn, actor, engagement_id)
            return self._engagement_view(conn, e, need)

    def engagements(self, actor: StaffMember) -> list[dict[str, Any]]:
        """The actor's own: a specialist's, or their municipality's."""
        self._user(actor)
        with self.db.platform() as conn:
            if actor.can(Permission.TALENT_PROFILE):
                me = store.profile_by_staff(conn, actor.id)
                found = store.engagements(conn, specialist_id=me.id) if me else []
            elif actor.lgcode is not None:
                ids = [n.id for n in store.needs(conn, lgcode=actor.lgcode)]
                found = [e for e in store.engagements(conn, need_ids=ids) if actor.lgcode in e.days]
            else:
                found = []
            needs = {n.id: n for n in store.needs(conn)} if found else {}
            munis = self._known_municipalities()
            return [self._engagement_view(conn, e, needs[e.need_id], detail=False, munis=munis)
                    for e in found]

    def _engagement_view(self, conn: Connection, e: Engagement, need: Need,
                         detail: bool = True, munis: Mapping[str, str] | None = None
                         ) -> dict[str, Any]:
        munis = munis if munis is not None else self._known_municipalities()
        person = store.profile(conn, e.specialist_id)
        assert person is not None
        view: dict[str, Any] = {
            "id": e.id, "need_id": e.need_id, "need_title": need.title,
            "lead_lgcode": need.lead_lgcode, "specialist_id": e.specialist_id,
            "specialist_name": person.display_name if "display_name" not in person.hidden
            or e.status in (EngagementStatus.ACCEPTED, EngagementStatus.ENDED)
            else f"専門人材 {person.id[:6]}", "start": e.start, "end": e.end,
            "ended_month": e.ended_month, "status": e.status.value,
            "status_label": model.STATUS_LABELS[e.status.value],
            "days": [{"lgcode": c, "name": munis.get(c, c), "days": d}
                     for c, d in sorted(e.days.items())],
            "days_per_month": e.days_per_month,
        }
        if detail:
            view["reports"] = store.reports(conn, e.id)
            view["evaluations"] = store.evaluations(conn, e.id)
        return view

    # -- the prefecture's view -------------------------------------------------------

    def coverage(self, actor: StaffMember, prefecture: str, month: str | None = None
                 ) -> dict[str, Any]:
        """Which municipalities of a prefecture have a specialist in a month, and which
        skills open needs still lack. Staff see their own prefecture; platform admins any."""
        if prefecture not in PREFECTURES:
            raise ValidationFailed([FieldError("prefecture", "都道府県名が不正です。",
                                               "unknown prefecture.")])
        if not actor.can(Permission.PLATFORM_MANAGE):
            self._manager(actor)
            if prefecture_of(actor.lgcode or "") != prefecture:
                raise Forbidden("所属する都道府県の状況だけを表示できます。",
                                "You can see your own prefecture only.")
        month = model.parse_month(month or self.this_month(), "month")
        munis = sorted((m["lgcode"], m["name"]) for m in self.municipalities.list()
                       if prefecture_of(m["lgcode"]) == prefecture)
        codes = {c for c, _ in munis}
        with self.db.platform() as conn:
            needs = [n for n in store.needs(conn) if codes & set(n.participants)]
            result = model.coverage(month, munis, needs, store.engagements(conn),
                                    store.profiles(conn), prefecture, store.skill_names(conn))
        return {"prefecture": prefecture, "month": result.month,
                "municipalities": list(result.municipalities), "skills": list(result.skills),
                "uncovered": result.uncovered, "total": len(munis)}

