"""The specialist pool, pure: profiles, needs (joint ones shared between municipalities),
engagements, the availability invariant, matching with reasons, and prefecture coverage.

Months are "YYYY-MM" strings (they sort as they should). A specialist offers a number of days
per month; accepted engagements commit days in each month of their period; in no month may
the days committed exceed the days offered. Every refusal names its reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kiban.core.errors import Conflict, FieldError, RuleViolation, ValidationFailed

MAX_DAYS_PER_MONTH = 22  # working days in a month: more cannot be offered or asked for
MAX_PERIOD_MONTHS = 36
MAX_PARTICIPANTS = 10
# A need's budget must at least pay the minimum wage for the days asked: 8 hours at the
# national weighted average 地域別最低賃金 of 令和7年度 (1,121 yen an hour).
MIN_BUDGET_PER_DAY = 8 * 1121
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class EngagementStatus(StrEnum):
    OFFERED = "offered"  # 打診中
    ACCEPTED = "accepted"  # 契約中
    DECLINED = "declined"  # 辞退
    WITHDRAWN = "withdrawn"  # 取下げ
    ENDED = "ended"  # 終了


class NeedStatus(StrEnum):
    AWAITING = "awaiting"  # 共同募集の参加確認待ち
    OPEN = "open"  # 募集中
    FILLED = "filled"  # 充足
    CLOSED = "closed"  # 終了


STATUS_LABELS = {
    "offered": "打診中", "accepted": "契約中", "declined": "辞退", "withdrawn": "取下げ",
    "ended": "終了", "awaiting": "参加確認待ち", "open": "募集中", "filled": "充足",
    "closed": "募集終了",
}
# What a specialist may hide; skills, regions, work style and availability are always shown
# to municipalities, since matching rests on them.
HIDEABLE = ("display_name", "experience", "rate_per_day")


def parse_month(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not _MONTH.match(value):
        raise ValidationFailed([FieldError(field_name, "年月は YYYY-MM で入力してください。",
                                           f"{field_name} must be YYYY-MM.")])
    return value


def month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_of(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months(start: str, end: str) -> list[str]:
    return [month_of(i) for i in range(month_index(start), month_index(end) + 1)]


@dataclass(frozen=True)
class Profile:
    id: str
    display_name: str
    skills: frozenset[str]
    experience: str
    regions: frozenset[str]  # prefectures served on site
    onsite: bool
    remote: bool
    days_per_month: int
    rate_per_day: int  # yen, expected
    hidden: frozenset[str] = frozenset()
    listed: bool = True  # open to offers


@dataclass(frozen=True)
class Share:
    lgcode: str
    days: int
    confirmed: bool = False


@dataclass(frozen=True)
class Need:
    id: str
    lead_lgcode: str
    title: str
    tasks: str
    required_skills: tuple[str, ...]
    preferred_skills: tuple[str, ...]
    days_per_month: int
    start: str
    end: str
    onsite_percent: int
    budget_per_month: int  # yen, all participants together
    shares: tuple[Share, ...]
    status: NeedStatus = NeedStatus.OPEN

    @property
    def participants(self) -> tuple[str, ...]:
        return tuple(s.lgcode for s in self.shares)

    @property
    def budget_per_day(self) -> int:
        return self.budget_per_month // self.days_per_month

    def share_days(self) -> dict[str, int]:
        return {s.lgcode: s.days for s in self.shares}


@dataclass(frozen=True)
class Engagement:
    id: str
    need_id: str
    specialist_id: str
    start: str
    end: str
    days: Mapping[str, int]  # 地方公共団体コード -> days per month
    status: EngagementStatus
    ended_month: str | None = None  # last month worked, when ended early

    @property
    def days_per_month(self) -> int:
        return sum(self.days.values())

    @property
    def last_month(self) -> str:
        return self.ended_month or self.end

    def commits(self, month: str) -> int:
        """Days this engagement holds in `month`: accepted ones, within their period."""
        if self.status not in (EngagementStatus.ACCEPTED, EngagementStatus.ENDED):
            return 0
        return self.days_per_month if self.start <= month <= self.last_month else 0

    def live(self) -> bool:
        return self.status in (EngagementStatus.OFFERED, EngagementStatus.ACCEPTED)


def _error(field_name: str, ja: str, en: str) -> FieldError:
    return FieldError(field_name, ja, en)


def _int(data: Mapping[str, object], name: str, errors: list[FieldError], ja: str) -> int | None:
    """The integer, or None after noting that it is not one."""
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(_error(name, f"{ja}は整数で入力してください。", f"{name} must be an integer."))
        return None
    return value


def validate_profile(data: Mapping[str, object], skills: Iterable[str],
                     prefectures: Iterable[str]) -> dict[str, object]:
    """The fields of a profile, checked; raises ValidationFailed naming every bad one."""
    errors: list[FieldError] = []
    known, prefs = set(skills), set(prefectures)
    name = str(data.get("display_name", "")).strip()
    if not name or len(name) > 100:
        errors.append(_error("display_name", "氏名を100文字以内で入力してください。",
                             "display_name is required (at most 100 characters)."))
    chosen = data.get("skills")
    if not isinstance(chosen, list) or not chosen or not all(isinstance(s, str) for s in chosen):
        errors.append(_error("skills", "スキルを1つ以上選んでください。", "choose at least one skill."))
        chosen = []
    elif unknown := sorted(set(chosen) - known):
        errors.append(_error("skills", f"スキル一覧にない項目です: {', '.join(unknown)}",
                             f"not in the skill list: {', '.join(unknown)}"))
    regions = data.get("regions", [])
    if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        errors.append(_error("regions", "対応地域は都道府県名の一覧です。",
                             "regions must be a list of prefectures."))
        regions = []
    elif unknown := sorted(set(regions) - prefs):
        errors.append(_error("regions", f"都道府県名が不正です: {', '.join(unknown)}",
                             f"unknown prefectures: {', '.join(unknown)}"))
    onsite, remote = data.get("onsite") is True, data.get("remote") is True
    if not onsite and not remote:
        errors.append(_error("onsite", "現地・リモートの少なくとも一方を選んでください。",
                             "choose on-site, remote or both."))
    if onsite and not regions:
        errors.append(_error("regions", "現地対応する場合は対応地域を選んでください。",
                             "on-site work needs at least one region."))
    days = _int(data, "days_per_month", errors, "月あたり日数")
    if days is not None and not 1 <= days <= MAX_DAYS_PER_MONTH:
        errors.append(_error("days_per_month", f"月あたり日数は1〜{MAX_DAYS_PER_MONTH}日です。",
                             f"days_per_month must be 1 to {MAX_DAYS_PER_MONTH}."))
    rate = _int(data, "rate_per_day", errors, "希望日額")
    if rate is not None and not 0 <= rate <= 10_000_000:
        errors.append(_error("rate_per_day", "希望日額が範囲外です。", "rate_per_day is out of range."))
    hidden = data.get("hidden", [])
    if not isinstance(hidden, list) or not set(hidden) <= set(HIDEABLE):
        errors.append(_error("hidden", f"非公開にできる項目は {', '.join(HIDEABLE)} です。",
                             f"only {', '.join(HIDEABLE)} can be hidden."))
        hidden = []
    experience = str(data.get("experience", ""))
    if len(experience) > 4000:
        errors.append(_error("experience", "経歴は4000文字以内です。", "experience is too long."))
    if errors:
        raise ValidationFailed(errors)
    return {"display_name": name, "skills": sorted(set(chosen)), "regions": sorted(set(regions)),
            "onsite": onsite, "remote": remote, "days_per_month": days, "rate_per_day": rate,
            "hidden": sorted(set(hidden)), "experience": experience,
            "listed": data.get("listed", True) is not False}


def validate_need(data: Mapping[str, object], lead: str, skills: Iterable[str],
                  municipalities: Iterable[str], this_month: str) -> dict[str, object]:
    """A need's figures, checked for possibility: days, period, on-site share, budget, and the
    split of a joint need's days between its municipalities."""
    errors: list[FieldError] = []
    known, munis = set(skills), set(municipalities)
    title = str(data.get("title", "")).strip()
    if not title or len(title) > 100:
        errors.append(_error("title", "件名を100文字以内で入力してください。",
                             "title is required (at most 100 characters)."))
    tasks = str(data.get("tasks", "")).strip()
    if not tasks or len(tasks) > 4000:
        errors.append(_error("tasks", "業務内容を入力してください(4000文字以内)。",
                             "tasks are required (at most 4000 characters)."))
    skill_lists: dict[str, list[str]] = {}
    for name in ("required_skills", "preferred_skills"):
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            errors.append(_error(name, "スキルの一覧で指定してください。", f"{name} must be a list."))
            value = []
        elif unknown := sorted(set(value) - known):
            errors.append(_error(name, f"スキル一覧にない項目です: {', '.join(unknown)}",
                                 f"not in the skill list: {', '.join(unknown)}"))
        skill_lists[name] = sorted(set(value))
    if not skill_lists["required_skills"] and not any(e.field == "required_skills"
                                                      for e in errors):
        errors.append(_error("required_skills", "必須スキルを1つ以上選んでください。",
                             "choose at least one required skill."))
    days = _int(data, "days_per_month", errors, "月あたり日数")
    if days is not None and not 1 <= days <= MAX_DAYS_PER_MONTH:
        errors.append(_error("days_per_month", f"月あたり日数は1〜{MAX_DAYS_PER_MONTH}日です。",
                             f"days_per_month must be 1 to {MAX_DAYS_PER_MONTH}."))
    start = end = ""
    try:
        start = parse_month(data.get("start"), "start")
        end = parse_month(data.get("end"), "end")
    except ValidationFailed as exc:
        errors.extend(exc.errors)
    if start and end:
        if end < start:
            errors.append(_error("end", "終了月が開始月より前です。", "end is before start."))
        elif month_index(end) - month_index(start) + 1 > MAX_PERIOD_MONTHS:
            errors.append(_error("end", f"期間は{MAX_PERIOD_MONTHS}か月以内です。",
                                 f"the period is at most {MAX_PERIOD_MONTHS} months."))
        if start < this_month:
            errors.append(_error("start", "開始月が過去です。", "start is in the past."))
    onsite = _int(data, "onsite_percent", errors, "現地勤務の割合")
    if onsite is not None and not 0 <= onsite <= 100:
        errors.append(_error("onsite_percent", "現地勤務の割合は0〜100%です。",
                             "onsite_percent must be 0 to 100."))
    budget = _int(data, "budget_per_month", errors, "月額予算")
    if days and budget is not None and budget < days * MIN_BUDGET_PER_DAY:
        errors.append(_error(
            "budget_per_month",
            f"月額予算が少なすぎます: {days}日なら{days * MIN_BUDGET_PER_DAY:,}円以上"
            "(最低賃金8時間分の日額)が必要です。",
            f"budget_per_month is below {days * MIN_BUDGET_PER_DAY} yen, the minimum wage "
            f"for {days} days."))
    shares = _shares(data.get("shares"), lead, days or 0, munis, errors)
    if errors:
        raise ValidationFailed(errors)
    return {"title": title, "tasks": tasks, **skill_lists, "days_per_month": days,
            "start": start, "end": end, "onsite_percent": onsite, "budget_per_month": budget,
            "shares": shares}


def _shares(value: object, lead: str, days: int, munis: set[str],
            errors: list[FieldError]) -> list[Share]:
    """A need without shares is its lead's alone; a joint need splits every day."""
    if value is None:
        return [Share(lead, days, confirmed=True)]
    if not isinstance(value, list) or not value or len(value) > MAX_PARTICIPANTS:
        errors.append(_error("shares", f"参加団体は1〜{MAX_PARTICIPANTS}団体です。",
                             f"shares must list 1 to {MAX_PARTICIPANTS} municipalities."))
        return []
    shares: list[Share] = []
    for i, item in enumerate(value):
        where = f"shares[{i}]"
        if not isinstance(item, Mapping):
            errors.append(_error(where, "参加団体の指定が不正です。", f"{where} is malformed."))
            continue
        code, share_days = str(item.get("lgcode", "")), item.get("days")
        if code not in munis:
            errors.append(_error(f"{where}.lgcode", f"登録されていない団体です: {code}",
                                 f"unknown municipality {code}"))
        if isinstance(share_days, bool) or not isinstance(share_days, int) or share_days < 1:
            errors.append(_error(f"{where}.days", "各団体の日数は1日以上です。",
                                 "each municipality's days must be at least 1."))
            share_days = 0
        shares.append(Share(code, share_days, confirmed=code == lead))
    codes = [s.lgcode for s in shares]
    if len(set(codes)) != len(codes):
        errors.append(_error("shares", "同じ団体が重複しています。", "a municipality is listed twice."))
    if lead not in codes:
        errors.append(_error("shares", "募集する団体自身を参加団体に含めてください。",
                             "the posting municipality must be one of the shares."))
    total = sum(s.days for s in shares)
    if days and total != days:
        errors.append(_error("shares", f"各団体の日数の合計({total}日)が月あたり日数({days}日)と"
                             "一致しません。",
                             f"the shares add up to {total} days, not {days}."))
    return shares


def committed(engagements: Iterable[Engagement], month: str) -> int:
    return sum(e.commits(month) for e in engagements)


def availability_left(profile: Profile, engagements: Sequence[Engagement], start: str,
                      end: str) -> int:
    """Days a month still free in every month of [start, end]."""
    return min((profile.days_per_month - committed(engagements, m) for m in months(start, end)),
               default=profile.days_per_month)


def check_fits(profile: Profile, engagements: Sequence[Engagement], new: Engagement) -> None:
    """Refuses an engagement that would over-commit the specialist in any month, or that
    overlaps another live engagement on the same need."""
    for other in engagements:
        if (other.id != new.id and other.need_id == new.need_id and other.live()
                and other.start <= new.end and new.start <= other.last_month):
            raise Conflict(
                f"この専門人材には同じ募集で期間の重なる契約があります({other.start}〜{other.last_month})。",
                f"The specialist already has an overlapping engagement on this need "
                f"({other.start} to {other.last_month}).", field="specialist_id")
    others = [e for e in engagements if e.id != new.id]
    for month in months(new.start, new.end):
        held = committed(others, month)
        if held + new.days_per_month > profile.days_per_month:
            raise RuleViolation(
                f"{month} は既に月{held}日の契約があり、空きは{profile.days_per_month - held}日です"
                f"(今回 {new.days_per_month}日)。",
                f"In {month} the specialist already has {held} days committed and "
                f"{profile.days_per_month - held} free ({new.days_per_month} asked).",
                field="days")


def check_availability_change(engagements: Sequence[Engagement], new_days: int,
                              from_month: str) -> None:
    """A specialist may lower their days only down to what they have already committed."""
    ends = [e.last_month for e in engagements if e.commits(e.start)]
    for month in months(from_month, max(ends)) if ends else []:
        held = committed(engagements, month)
        if held > new_days:
            raise RuleViolation(
                f"{month} に月{held}日の契約があるため、月{new_days}日には減らせません。",
                f"{held} days are committed in {month}; availability cannot drop to "
                f"{new_days}.", field="days_per_month")


@dataclass(frozen=True)
class Match:
    specialist_id: str
    need_id: str
    score: int  # 0..100
    eligible: bool
    days_free: int
    reasons: tuple[str, ...] = field(default_factory=tuple)


def score(need: Need, need_prefectures: frozenset[str], profile: Profile,
          engagements: Sequence[Engagement], skill_names: Mapping[str, str]) -> Match:
    """How well a specialist fits a need, out of 100, with the reasons, in Japanese:
    required skills 50, preferred skills 10, region and work style 20, availability 20,
    less up to 10 when the expected rate exceeds the budget per day."""
    reasons: list[str] = []
    eligible = profile.listed

    def names(codes: Iterable[str]) -> str:
        return "、".join(skill_names.get(c, c) for c in codes) or "なし"

    required = set(need.required_skills)
    covered = required & profile.skills
    points = 50.0 * len(covered) / len(required) if required else 50.0
    reasons.append(f"必須スキル {len(covered)}/{len(required)}: {names(sorted(covered))}")
    if missing := sorted(required - profile.skills):
        reasons.append(f"不足する必須スキル: {names(missing)}")
    if not covered:
        eligible = False
    if need.preferred_skills:
        pref = set(need.preferred_skills) & profile.skills
        points += 10.0 * len(pref) / len(need.preferred_skills)
        reasons.append(f"歓迎スキル {len(pref)}/{len(need.preferred_skills)}")
    else:
        points += 10.0
    place_ok = True
    if need.onsite_percent > 0:
        served = sorted(need_prefectures & profile.regions)
        if not profile.onsite:
            place_ok = False
            reasons.append(f"現地勤務 {need.onsite_percent}% に対応しない")
        elif not served:
            place_ok = False
            reasons.append(f"対応地域外({'・'.join(sorted(need_prefectures))})")
        else:
            reasons.append(f"対応地域: {'・'.join(served)}")
    if need.onsite_percent < 100:
        if profile.remote:
            reasons.append("リモート対応可")
        else:
            place_ok = False
            reasons.append("リモート不可")
    if place_ok:
        points += 20.0
    else:
        eligible = False
    free = availability_left(profile, engagements, need.start, need.end)
    if free >= need.days_per_month:
        points += 20.0
        reasons.append(f"空き 月{free}日(必要 月{need.days_per_month}日)")
    elif free > 0:
        points += 20.0 * free / need.days_per_month
        reasons.append(f"空き 月{free}日のみ(必要 月{need.days_per_month}日、一部を担当)")
    else:
        eligible = False
        reasons.append(f"{need.start}〜{need.end} に空きなし")
    if "rate_per_day" in profile.hidden:
        reasons.append("希望日額: 非公開")
    elif profile.rate_per_day <= need.budget_per_day:
        reasons.append(f"希望日額 {profile.rate_per_day:,}円 ≤ 予算日額 {need.budget_per_day:,}円")
    else:
        over = (profile.rate_per_day - need.budget_per_day) / max(need.budget_per_day, 1)
        points -= min(10.0, 10.0 * over)
        reasons.append(f"希望日額 {profile.rate_per_day:,}円 > 予算日額 {need.budget_per_day:,}円")
    if not profile.listed:
        reasons.append("現在は打診を受け付けていない")
    return Match(profile.id, need.id, max(0, round(points)), eligible, max(free, 0),
                 tuple(reasons))


def _ranked(matches: list[Match], key: str) -> list[Match]:
    return sorted(matches, key=lambda m: (not m.eligible, -m.score, getattr(m, key)))


def rank_specialists(need: Need, need_prefectures: frozenset[str], profiles: Sequence[Profile],
                     engagements: Mapping[str, Sequence[Engagement]],
                     skill_names: Mapping[str, str]) -> list[Match]:
    """Specialists for a need, best first: eligible before not, then by score."""
    return _ranked([score(need, need_prefectures, p, engagements.get(p.id, ()), skill_names)
                    for p in profiles], "specialist_id")


def rank_needs(profile: Profile, needs: Sequence[tuple[Need, frozenset[str]]],
               engagements: Sequence[Engagement], skill_names: Mapping[str, str]) -> list[Match]:
    """Open needs for a specialist, best first."""
    return _ranked([score(n, prefs, profile, engagements, skill_names) for n, prefs in needs],
                   "need_id")


@dataclass(frozen=True)
class Coverage:
    """A prefecture in one month: who has a specialist, and which skills are short."""

    month: str
    municipalities: tuple[dict[str, object], ...]
    skills: tuple[dict[str, object], ...]

    @property
    def uncovered(self) -> int:
        return sum(1 for m in self.municipalities if not m["days"])


def coverage(month: str, municipalities: Sequence[tuple[str, str]],
             needs: Sequence[Need], engagements: Sequence[Engagement],
             profiles: Sequence[Profile], prefecture: str,
             skill_names: Mapping[str, str]) -> Coverage:
    """Days secured per municipality in `month`; per skill, the days that open needs still
    ask for beside the days that specialists able to serve the prefecture still have free."""
    days: dict[str, int] = {code: 0 for code, _ in municipalities}
    people: dict[str, set[str]] = {code: set() for code, _ in municipalities}
    for e in engagements:
        if e.commits(month):
            for code, d in e.days.items():
                if code in days:
                    days[code] += d
                    people[code].add(e.specialist_id)
    open_needs = [n for n in needs if n.status == NeedStatus.OPEN and n.start <= month <= n.end]
    engaged: dict[str, int] = {}
    for e in engagements:
        if e.commits(month):
            engaged[e.need_id] = engaged.get(e.need_id, 0) + e.days_per_month
    demand: dict[str, int] = {}
    for n in open_needs:
        short = max(0, n.days_per_month - engaged.get(n.id, 0))
        for s in n.required_skills:
            demand[s] = demand.get(s, 0) + short
    by_specialist: dict[str, list[Engagement]] = {}
    for e in engagements:
        by_specialist.setdefault(e.specialist_id, []).append(e)
    supply: dict[str, int] = {}
    for p in profiles:
        if not p.listed or not (p.remote or prefecture in p.regions):
            continue
        free = p.days_per_month - committed(by_specialist.get(p.id, []), month)
        for s in p.skills:
            supply[s] = supply.get(s, 0) + max(free, 0)
    rows = tuple({"lgcode": code, "name": name, "days": days[code],
                  "specialists": len(people[code])} for code, name in municipalities)
    skills = tuple(sorted(({"code": s, "name": skill_names.get(s, s), "demand": demand.get(s, 0),
                            "supply": supply.get(s, 0),
                            "short": max(0, demand.get(s, 0) - supply.get(s, 0))}
                           for s in skill_names), key=lambda r: (-int(str(r["short"])),
                                                                 -int(str(r["demand"])),
                                                                 str(r["code"]))))
    return Coverage(month, rows, skills)
