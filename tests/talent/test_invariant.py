"""No specialist is ever over-committed, whatever the order of offers, acceptances, ends and
profile changes (Hypothesis, through the service on a real database); and two acceptances
racing on PostgreSQL cannot both win."""

from __future__ import annotations

import threading
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiban.core.errors import KibanError
from kiban_testkit import LG_A, LG_B, PASSWORD, World

MONTHS = [f"2026-{m:02d}" for m in range(4, 13)]


def _setup(world: World) -> tuple[Any, Any, Any]:
    svc, now = world.svc, world.svc.clock.now()
    dx_a = svc.accounts.create("dx-a", PASSWORD, "DX A", ["digital_officer"], LG_A, now)
    dx_b = svc.accounts.create("dx-b", PASSWORD, "DX B", ["digital_officer"], LG_B, now)
    return svc, dx_a, dx_b


def _need(svc: Any, actor: Any, days: int, start: str, end: str) -> str:
    return str(svc.talent.post_need(actor, {
        "title": f"{start}..{end} {days}", "tasks": "支援", "required_skills": ["bpr"],
        "days_per_month": days, "start": start, "end": end, "onsite_percent": 0,
        "budget_per_month": 100_000 * days})["id"])


operation = st.one_of(
    st.tuples(st.just("offer"), st.integers(1, 8), st.sampled_from(MONTHS),
              st.integers(0, 5), st.booleans()),
    st.tuples(st.just("accept"), st.integers(0, 20)),
    st.tuples(st.just("decline"), st.integers(0, 20)),
    st.tuples(st.just("end"), st.integers(0, 20), st.sampled_from(MONTHS)),
    st.tuples(st.just("days"), st.integers(1, 12)),
)


def test_random_sequences_never_over_commit(sqlite_world: World) -> None:
    svc, dx_a, dx_b = _setup(sqlite_world)
    counter = iter(range(10_000))

    @settings(max_examples=40, deadline=None, suppress_health_check=[
        HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(operation, min_size=1, max_size=25))
    def run(ops: list[tuple[Any, ...]]) -> None:
        n = next(counter)
        person = svc.accounts.create(f"sp-{n}", PASSWORD, "専門 人材", ["specialist"], None,
                                     svc.clock.now())
        me = svc.talent.save_profile(person, {
            "display_name": f"sp {n}", "skills": ["bpr"], "remote": True, "onsite": False,
            "days_per_month": 10, "rate_per_day": 30_000})
        offers: list[str] = []
        succeeded = 0
        for op in ops:
            try:
                if op[0] == "offer":
                    _, days, start, length, by_b = op
                    end = MONTHS[min(MONTHS.index(start) + length, len(MONTHS) - 1)]
                    actor = dx_b if by_b else dx_a
                    need_id = _need(svc, actor, days, start, end)
                    offers.append(svc.talent.offer(actor, need_id,
                                                   {"specialist_id": me["id"]})["id"])
                elif op[0] == "days":
                    svc.talent.save_profile(person, {
                        "display_name": f"sp {n}", "skills": ["bpr"], "remote": True,
                        "onsite": False, "days_per_month": op[1], "rate_per_day": 30_000})
                elif offers:
                    eid = offers[op[1] % len(offers)]
                    if op[0] == "accept":
                        svc.talent.respond(person, eid, accept=True)
                    elif op[0] == "decline":
                        svc.talent.respond(person, eid, accept=False)
                    else:
                        e = svc.talent.engagement(person, eid)
                        who = dx_a if e["lead_lgcode"] == LG_A else dx_b
                        svc.talent.end(who, eid, max(op[2], e["start"]))
                succeeded += 1
            except KibanError:
                pass  # refused with a reason: the invariant below must still hold
            mine = svc.talent.my_profile(person)
            assert mine is not None
            engagements = svc.talent.engagements(person)
            for month in MONTHS:
                held = sum(e["days_per_month"] for e in engagements
                           if e["status"] in ("accepted", "ended")
                           and e["start"] <= month <= (e["ended_month"] or e["end"]))
                if month >= svc.talent.this_month():
                    assert held <= mine["days_per_month"], (month, held, ops)
        assert succeeded or not ops

    run()


def test_two_acceptances_racing_cannot_both_fit(pg_world: World) -> None:
    svc, dx_a, dx_b = _setup(pg_world)
    person = svc.accounts.create("racer", PASSWORD, "競争 花子", ["specialist"], None,
                                 svc.clock.now())
    me = svc.talent.save_profile(person, {
        "display_name": "racer", "skills": ["bpr"], "remote": True, "onsite": False,
        "days_per_month": 10, "rate_per_day": 30_000})
    offers = [svc.talent.offer(actor, _need(svc, actor, 6, "2026-05", "2026-07"),
                               {"specialist_id": me["id"]})["id"] for actor in (dx_a, dx_b)]
    results: list[str] = []
    barrier = threading.Barrier(2)

    def accept(eid: str) -> None:
        barrier.wait()
        try:
            svc.talent.respond(person, eid, accept=True)
            results.append("accepted")
        except KibanError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=accept, args=(eid,)) for eid in offers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["accepted", "rule"]
    held = [e for e in svc.talent.engagements(person) if e["status"] == "accepted"]
    assert sum(e["days_per_month"] for e in held) == 6


def test_confirmations_racing_still_open_a_joint_need(pg_world: World) -> None:
    svc, now = pg_world.svc, pg_world.svc.clock.now()
    codes = ("132012", "132021")
    for code, name in zip(codes, ("八王子市", "立川市"), strict=True):
        svc.municipalities.create(code, name, "東京都", now)
    lead = svc.accounts.create("dx-lead", PASSWORD, "DX", ["digital_officer"], LG_A, now)
    others = [svc.accounts.create(f"dx-{c}", PASSWORD, "DX", ["digital_officer"], c, now)
              for c in codes]
    for _ in range(3):
        need = svc.talent.post_need(lead, {
            "title": "共同", "tasks": "支援", "required_skills": ["bpr"], "days_per_month": 3,
            "start": "2026-05", "end": "2026-07", "onsite_percent": 0, "budget_per_month": 90_000,
            "shares": [{"lgcode": LG_A, "days": 1}, {"lgcode": codes[0], "days": 1},
                       {"lgcode": codes[1], "days": 1}]})
        barrier = threading.Barrier(2)

        def confirm(actor: Any, need_id: str = need["id"],
                    gate: threading.Barrier = barrier) -> None:
            gate.wait()
            svc.talent.confirm_share(actor, need_id)

        threads = [threading.Thread(target=confirm, args=(o,)) for o in others]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert svc.talent.need(lead, need["id"])["status"] == "open"
