"""住民票コード uniqueness is the partial unique index's (no query beforehand), and a change
joins the unit of work it runs in: on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from kiban.core.errors import Conflict, ValidationFailed
from kiban.platform import ledger
from kiban.platform.db import before_commit
from kiban.platform.tables import idempotency_keys
from kiban.registry import service as service_module
from kiban_testkit import LG_A, LG_B, World, move_in_data, person


def _count(world: World, lgcode: str = LG_A) -> int:
    return world.svc.registry.dashboard(world.admin_a if lgcode == LG_A else world.clerk_b,
                                        lgcode)["residents"]


def _code_of(world: World, resident_id: str) -> str:
    return str(world.svc.registry.get(world.clerk_a, LG_A, resident_id)["juminhyo_code"])


def test_a_registered_juminhyo_code_is_refused_and_nothing_is_written(world: World) -> None:
    reg = world.svc.registry
    ids = reg.move_in(world.clerk_a, LG_A, move_in_data())["resident_ids"]
    code = _code_of(world, ids[0])
    head_before = None
    with world.svc.db.tenant(LG_A) as conn:
        head_before = ledger.head(conn, LG_A)
    again = move_in_data(members=[person(family_name="佐藤", family_kana="サトウ",
                                         juminhyo_code=code)])
    with pytest.raises(Conflict) as refused:
        reg.move_in(world.clerk_a, LG_A, again)
    assert refused.value.field == "juminhyo_code"
    assert refused.value.status == 409
    assert reg.search(world.clerk_a, LG_A, name="サトウ")["total"] == 0
    with world.svc.db.tenant(LG_A) as conn:
        assert ledger.head(conn, LG_A) == head_before
    assert reg.verify_ledger(LG_A)["ok"]
    # The same code twice in one move-in is refused too.
    twice = move_in_data(members=[
        person(juminhyo_code="10000000017"),
        person(given_name="花子", given_kana="ハナコ", sex="2", relationship="妻",
               juminhyo_code="10000000017")])
    with pytest.raises((Conflict, ValidationFailed)):
        reg.move_in(world.clerk_a, LG_A, twice)
    # Another municipality may hold the same code (the index is per municipality).
    moved = reg.move_in(world.clerk_b, LG_B, again)
    assert reg.get(world.clerk_b, LG_B, moved["resident_ids"][0])["juminhyo_code"] == code


def test_a_drawn_code_that_is_taken_is_drawn_again(world: World,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    reg = world.svc.registry
    ids = reg.move_in(world.clerk_a, LG_A, move_in_data())["resident_ids"]
    taken = _code_of(world, ids[0])
    draws = iter([taken, taken, "10000000017", "10000000025"])
    monkeypatch.setattr(service_module.Registry, "_new_code", staticmethod(lambda: next(draws)))
    result = reg.move_in(world.clerk_a, LG_A, move_in_data(previous_address="別の前住所"))
    codes = {_code_of(world, i) for i in result["resident_ids"]}
    assert taken not in codes and len(codes) == 2
    assert codes <= {"10000000017", "10000000025"}
    # The change event records the codes as stored.
    history = reg.history(world.clerk_a, LG_A, result["resident_ids"][0])
    assert history[0]["after"][result["resident_ids"][0]]["juminhyo_code"] in codes
    assert reg.verify_ledger(LG_A)["ok"]


def test_a_unit_of_work_is_one_transaction(world: World) -> None:
    """A change run inside a unit of work joins it: a failure after the change undoes it."""
    db, reg = world.svc.db, world.svc.registry
    with db.tenant(LG_A) as conn:
        head = ledger.head(conn, LG_A)

    class Stop(Exception):
        pass

    with pytest.raises(Stop), db.unit_of_work(LG_A) as conn:
        reg.move_in(world.clerk_a, LG_A, move_in_data())
        with db.tenant(LG_A) as inner:
            assert inner is conn
        raise Stop
    assert _count(world) == 0
    with db.tenant(LG_A) as conn:
        assert ledger.head(conn, LG_A) == head
    # Another municipality's tenant() inside the unit is a transaction of its own.
    with db.unit_of_work(LG_A) as conn, db.tenant(LG_B) as other:
        assert other is not conn
    # Steps registered for just before COMMIT run in order, after the unit's body.
    order: list[str] = []
    with db.unit_of_work(LG_A) as conn:
        before_commit(conn, lambda _c: order.append("first"))
        with db.tenant(LG_A) as inner:
            before_commit(inner, lambda _c: order.append("second"))
        order.append("body")
    assert order == ["body", "first", "second"]


def test_concurrent_changes_keep_the_ledger_chain(world: World) -> None:
    """The ledger head is locked late (just before COMMIT); concurrent changes still chain."""
    reg = world.svc.registry
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            reg.move_in(world.clerk_a, LG_A, move_in_data(previous_address=f"前住所{i}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    with world.svc.db.tenant(LG_A) as conn:
        start = ledger.head(conn, LG_A)[0]
    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _count(world) == 12
    report = reg.verify_ledger(LG_A)
    assert report["ok"], report["problems"]
    assert report["head_seq"] == start + 6


def test_idempotency_table_is_untouched_by_service_calls(world: World) -> None:
    world.svc.registry.move_in(world.clerk_a, LG_A, move_in_data())
    with world.svc.db.tenant(LG_A) as conn:
        assert conn.execute(select(func.count()).select_from(idempotency_keys)).scalar() == 0
