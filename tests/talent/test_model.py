"""The pure rules of the specialist pool: matching ranks and reasons on fixed data, the
availability invariant, the figures a need must make possible, prefecture coverage."""

from __future__ import annotations

import pytest

from kiban.core.errors import Conflict, RuleViolation, ValidationFailed
from kiban.talent import model
from kiban.talent.model import Engagement, EngagementStatus, Need, Profile, Share

SKILLS = {"cloud_migration": "クラウド移行", "information_security": "情報セキュリティ",
          "data_analysis": "データ分析・EBPM", "procurement": "調達支援(仕様書・評価)"}
TOKYO = frozenset({"東京都"})


def need(**overrides: object) -> Need:
    base: dict[str, object] = dict(
        id="n1", lead_lgcode="131016", title="標準化移行の支援", tasks="移行計画の策定",
        required_skills=("cloud_migration", "information_security"),
        preferred_skills=("procurement",), days_per_month=6, start="2026-04", end="2026-09",
        onsite_percent=50, budget_per_month=360_000, shares=(Share("131016", 6, True),))
    base.update(overrides)
    return Need(**base)  # type: ignore[arg-type]


def person(pid: str, **overrides: object) -> Profile:
    base: dict[str, object] = dict(
        id=pid, display_name=pid, skills=frozenset({"cloud_migration", "information_security"}),
        experience="", regions=TOKYO, onsite=True, remote=True, days_per_month=10,
        rate_per_day=50_000)
    base.update(overrides)
    return Profile(**base)  # type: ignore[arg-type]


def accepted(eid: str, pid: str, days: int, start: str = "2026-04", end: str = "2026-09",
             need_id: str = "other") -> Engagement:
    return Engagement(eid, need_id, pid, start, end, {"131016": days}, EngagementStatus.ACCEPTED)


def test_ranking_orders_by_fit_and_says_why() -> None:
    people = [
        person("a-full"),  # every required skill, region, time, rate within budget
        person("b-half", skills=frozenset({"cloud_migration"})),
        person("c-busy"),  # fits, but only 2 days free
        person("d-far", regions=frozenset({"北海道"})),  # on-site share, wrong region
        person("e-pricey", skills=frozenset({"cloud_migration", "information_security",
                                             "procurement"}), rate_per_day=90_000),
        person("f-none", skills=frozenset({"data_analysis"})),
    ]
    busy = {"c-busy": [accepted("x", "c-busy", 8)]}
    ranked = model.rank_specialists(need(), TOKYO, people, busy, SKILLS)
    assert [(m.specialist_id, m.score, m.eligible) for m in ranked] == [
        # 50 + 10 preferred + 20 region + 20 time, less 5: the rate is 50% over the budget
        ("e-pricey", 95, True),
        ("a-full", 90, True),  # 50 + 0 preferred + 20 + 20
        ("c-busy", 77, True),  # 20 * 2/6 for time
        ("b-half", 65, True),
        ("d-far", 70, False),
        ("f-none", 40, False),
    ]
    reasons = {m.specialist_id: m.reasons for m in ranked}
    assert reasons["a-full"] == (
        "必須スキル 2/2: クラウド移行、情報セキュリティ", "歓迎スキル 0/1", "対応地域: 東京都",
        "リモート対応可", "空き 月10日(必要 月6日)", "希望日額 50,000円 ≤ 予算日額 60,000円")
    assert "不足する必須スキル: 情報セキュリティ" in reasons["b-half"]
    assert "空き 月2日のみ(必要 月6日、一部を担当)" in reasons["c-busy"]
    assert "対応地域外(東京都)" in reasons["d-far"]
    assert "希望日額 90,000円 > 予算日額 60,000円" in reasons["e-pricey"]


def test_remote_only_need_ignores_region_and_hidden_rate_is_not_quoted() -> None:
    remote_need = need(onsite_percent=0)
    far = person("far", regions=frozenset({"沖縄県"}), onsite=False,
                 hidden=frozenset({"rate_per_day"}))
    onsite_only = person("onsite", remote=False)
    ranked = model.rank_specialists(remote_need, TOKYO, [far, onsite_only], {}, SKILLS)
    assert [(m.specialist_id, m.eligible) for m in ranked] == [("far", True), ("onsite", False)]
    assert "希望日額: 非公開" in ranked[0].reasons
    assert "リモート不可" in ranked[1].reasons


def test_needs_are_ranked_for_a_specialist() -> None:
    me = person("me", skills=frozenset({"data_analysis"}), onsite=False)
    fits = need(id="fits", required_skills=("data_analysis",), onsite_percent=0)
    no_skill = need(id="no-skill")
    ranked = model.rank_needs(me, [(no_skill, TOKYO), (fits, TOKYO)], [], SKILLS)
    assert [(m.need_id, m.eligible) for m in ranked] == [("fits", True), ("no-skill", False)]


def test_offer_that_would_over_commit_a_month_is_refused_naming_it() -> None:
    me = person("me", days_per_month=10)
    held = [accepted("e1", "me", 6, "2026-04", "2026-06"),
            accepted("e2", "me", 2, "2026-06", "2026-08")]
    fits = Engagement("new", "n1", "me", "2026-07", "2026-09", {"131016": 8},
                      EngagementStatus.OFFERED)
    model.check_fits(me, held, fits)  # July has 2 held: 8 more fit exactly
    too_much = Engagement("new", "n1", "me", "2026-05", "2026-07", {"131016": 3},
                          EngagementStatus.OFFERED)
    with pytest.raises(RuleViolation) as refused:
        model.check_fits(me, held, too_much)
    assert "2026-06 は既に月8日の契約があり、空きは2日です" in refused.value.ja


def test_ended_and_declined_engagements_free_their_days() -> None:
    me = person("me", days_per_month=6)
    ended = Engagement("e1", "x", "me", "2026-04", "2026-12", {"131016": 6},
                       EngagementStatus.ENDED, ended_month="2026-05")
    declined = Engagement("e2", "y", "me", "2026-04", "2026-12", {"131016": 6},
                          EngagementStatus.DECLINED)
    assert model.committed([ended, declined], "2026-05") == 6
    assert model.committed([ended, declined], "2026-06") == 0
    later = Engagement("new", "n", "me", "2026-06", "2026-12", {"131016": 6},
                       EngagementStatus.OFFERED)
    model.check_fits(me, [ended, declined], later)


def test_a_second_live_engagement_on_the_same_need_overlapping_is_a_conflict() -> None:
    me = person("me", days_per_month=20)
    first = Engagement("e1", "n1", "me", "2026-04", "2026-06", {"131016": 2},
                       EngagementStatus.OFFERED)
    second = Engagement("e2", "n1", "me", "2026-06", "2026-08", {"131016": 2},
                        EngagementStatus.OFFERED)
    with pytest.raises(Conflict):
        model.check_fits(me, [first], second)


def test_availability_cannot_drop_below_what_is_committed() -> None:
    held = [accepted("e1", "me", 6, "2026-04", "2026-06")]
    model.check_availability_change(held, 6, "2026-04")
    model.check_availability_change(held, 2, "2026-07")  # after the engagement
    with pytest.raises(RuleViolation) as refused:
        model.check_availability_change(held, 5, "2026-05")
    assert refused.value.field == "days_per_month"


def _need_data(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "title": "共同での情報セキュリティ対策", "tasks": "規程の改定と研修",
        "required_skills": ["information_security"], "days_per_month": 6, "start": "2026-04",
        "end": "2027-03", "onsite_percent": 30, "budget_per_month": 300_000,
        "shares": [{"lgcode": "131016", "days": 2}, {"lgcode": "132012", "days": 2},
                   {"lgcode": "132021", "days": 2}]}
    base.update(overrides)
    return base


MUNIS = {"131016", "132012", "132021"}


def _fields(data: dict[str, object]) -> set[str]:
    with pytest.raises(ValidationFailed) as refused:
        model.validate_need(data, "131016", SKILLS, MUNIS, "2026-04")
    return {e.field for e in refused.value.errors}


def test_a_joint_need_splits_its_days_and_only_the_lead_is_confirmed() -> None:
    fields = model.validate_need(_need_data(), "131016", SKILLS, MUNIS, "2026-04")
    shares = fields["shares"]
    assert [(s.lgcode, s.days, s.confirmed) for s in shares] == [  # type: ignore[attr-defined]
        ("131016", 2, True), ("132012", 2, False), ("132021", 2, False)]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"days_per_month": 30}, "days_per_month"),
    ({"days_per_month": 0}, "days_per_month"),
    ({"end": "2026-03"}, "end"),
    ({"start": "2026-01", "end": "2026-06"}, "start"),
    ({"end": "2030-01"}, "end"),
    ({"onsite_percent": 150}, "onsite_percent"),
    ({"budget_per_month": 40_000}, "budget_per_month"),
    ({"start": "2026-13"}, "start"),
    ({"required_skills": []}, "required_skills"),
    ({"required_skills": ["juggling"]}, "required_skills"),
    ({"shares": [{"lgcode": "131016", "days": 2}, {"lgcode": "132012", "days": 2}]}, "shares"),
    ({"shares": [{"lgcode": "132012", "days": 6}]}, "shares"),
    ({"shares": [{"lgcode": "131016", "days": 3}, {"lgcode": "131016", "days": 3}]}, "shares"),
    ({"shares": [{"lgcode": "131016", "days": 6}, {"lgcode": "999999", "days": 0}]},
     "shares[1].lgcode"),
    ({"title": ""}, "title"),
    ({"days_per_month": "six"}, "days_per_month"),
])
def test_impossible_figures_are_refused_with_the_field(overrides: dict[str, object],
                                                       field: str) -> None:
    assert field in _fields(_need_data(**overrides))


def test_coverage_shows_uncovered_municipalities_and_short_skills() -> None:
    munis = [("131016", "千代田区"), ("132012", "八王子市"), ("132021", "立川市")]
    open_need = need(id="open", lead_lgcode="132021", shares=(Share("132021", 6, True),),
                     required_skills=("information_security",), status=model.NeedStatus.OPEN)
    held = [accepted("e1", "p1", 4)]  # 千代田区 has p1 for 4 days
    people = [person("p1", days_per_month=6), person("p2", regions=frozenset({"北海道"}),
                                                      remote=False, days_per_month=10)]
    view = model.coverage("2026-05", munis, [open_need], held, people, "東京都", SKILLS)
    assert [(m["lgcode"], m["days"], m["specialists"]) for m in view.municipalities] == [
        ("131016", 4, 1), ("132012", 0, 0), ("132021", 0, 0)]
    assert view.uncovered == 2
    security = next(s for s in view.skills if s["code"] == "information_security")
    # 6 days asked; p1 has 2 free (p2 cannot serve Tokyo): 4 short.
    assert (security["demand"], security["supply"], security["short"]) == (6, 2, 4)
    assert view.skills[0]["code"] == "information_security"  # the shortest first
