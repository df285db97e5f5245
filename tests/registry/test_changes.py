"""Service tests of each change (異動), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from kiban.core.checkdigits import is_valid_juminhyo_code
from kiban.core.errors import Conflict, Forbidden, RuleViolation, ValidationFailed
from kiban.platform import ledger
from kiban_testkit import LG_A, LG_B, World, move_in_data, person


def move_in(world: World, **overrides: object) -> dict:
    return world.svc.registry.move_in(world.clerk_a, LG_A, move_in_data(**overrides))


def test_move_in_creates_household_residents_event_and_ledger(world: World) -> None:
    result = move_in(world)
    reg = world.svc.registry
    assert result["kind"] == "move_in"
    assert not result["late_notice"]
    head = reg.get(world.clerk_a, LG_A, result["resident_ids"][0])
    assert head["relationship"] == "世帯主"
    assert is_valid_juminhyo_code(head["juminhyo_code"])
    assert head["address"]["text"] == "本町一丁目1番地2 メゾン101"
    household = reg.household(world.clerk_a, LG_A, head["household_id"])
    assert [m["given_name"] for m in household["members"]] == ["太郎", "花子"]
    assert household["head_id"] == head["id"]
    history = reg.history(world.clerk_a, LG_A, head["id"])
    assert [e["kind"] for e in history] == ["move_in"]
    with world.svc.db.tenant(LG_A) as conn:
        kinds = [e["kind"] for e in ledger.entries(conn, LG_A)]
    assert kinds[-1] == "registry.move_in"
    assert reg.verify_ledger(LG_A)["ok"]


def test_late_move_in_is_flagged_not_refused(world: World) -> None:
    result = move_in(world, occurred_on="2026-03-01", notified_on="2026-03-31")
    assert result["late_notice"] is True


@pytest.mark.parametrize("change, field", [
    ({"members": [person(family_kana="Yamada")]}, "members[0].family_kana"),
    ({"members": [person(birth_date="2030-01-01")]}, "members[0].birth_date"),
    ({"members": [person(sex="9")]}, "members[0].sex"),
    ({"members": [person(my_number="123456789012")]}, "members[0].my_number"),
    ({"members": [person(juminhyo_code="12345678901")]}, "members[0].juminhyo_code"),
    ({"members": [person(juminhyo_code="abcdefghijk")]}, "members[0].juminhyo_code"),
    ({"address": {"town_code": "9999999", "banchi": "1"}}, "address.town_code"),
    ({"address": {"town_code": "0001001", "banchi": "<script>"}}, "address.banchi"),
    ({"members": [person(relationship="妻")]}, "members"),
    ({"previous_address": ""}, "previous_address"),
    ({"occurred_on": "2026-13-01"}, "occurred_on"),
])
def test_bad_move_in_names_field_and_leaves_nothing(world: World, change: dict,
                                                     field: str) -> None:
    with world.svc.db.tenant(LG_A) as conn:
        before = ledger.head(conn, LG_A)
    with pytest.raises(ValidationFailed) as caught:
        move_in(world, **change)
    assert field in [e.field for e in caught.value.errors]
    with world.svc.db.tenant(LG_A) as conn:
        assert ledger.head(conn, LG_A) == before
    found = world.svc.registry.search(world.clerk_a, LG_A, name="ヤマダ")
    assert found["total"] == 0


def test_future_move_in_refused(world: World) -> None:
    with pytest.raises(RuleViolation):
        move_in(world, occurred_on="2026-04-05", notified_on="2026-04-01")


def test_birth_joins_household(world: World) -> None:
    hh = world.svc.registry.get(world.clerk_a, LG_A, move_in(world)["resident_ids"][0])
    result = world.svc.registry.birth(world.clerk_a, LG_A, {
        "household_id": hh["household_id"], "notified_on": "2026-03-31",
        "child": person(given_name="一郎", given_kana="イチロウ", birth_date="2026-03-20",
                        relationship="子")})
    child = world.svc.registry.get(world.clerk_a, LG_A, result["resident_ids"][0])
    assert child["relationship"] == "子"
    assert child["resident_since"] == "2026-03-20"


def test_death_of_head_requires_new_head(world: World) -> None:
    reg = world.svc.registry
    ids = move_in(world)["resident_ids"]
    with pytest.raises(ValidationFailed):
        reg.death(world.clerk_a, LG_A, {"resident_id": ids[0], "occurred_on": "2026-03-31",
                                        "notified_on": "2026-03-31"})
    reg.death(world.clerk_a, LG_A, {"resident_id": ids[0], "occurred_on": "2026-03-31",
                                    "notified_on": "2026-03-31", "remaining_head_id": ids[1]})
    dead = reg.get(world.clerk_a, LG_A, ids[0])
    assert dead["status"] == "removed" and dead["removal_reason"] == "死亡"
    widow = reg.get(world.clerk_a, LG_A, ids[1])
    assert widow["relationship"] == "世帯主"
    # 除票 stay retrievable, and change only by correction or cancellation.
    found = reg.search(world.clerk_a, LG_A, name="ヤマダ タロウ", include_removed=True)
    assert found["total"] == 1
    with pytest.raises(RuleViolation):
        reg.move_out(world.clerk_a, LG_A, {"resident_ids": [ids[0]], "planned_on": "2026-04-10",
                                           "notified_on": "2026-04-01", "destination": "x"})


def test_relocation_of_whole_household(world: World) -> None:
    reg = world.svc.registry
    ids = move_in(world)["resident_ids"]
    head = reg.get(world.clerk_a, LG_A, ids[0])
    reg.relocate(world.clerk_a, LG_A, {
        "household_id": head["household_id"], "occurred_on": "2026-03-31",
        "notified_on": "2026-04-01",
        "address": {"town_code": "0002001", "banchi": "5-6"}})
    assert reg.get(world.clerk_a, LG_A, ids[1])["address"]["text"] == "緑町一丁目5-6"
    assert reg.get(world.clerk_a, LG_A, ids[1])["address_since"] == "2026-03-31"


def test_split_merge_and_head_change_keep_one_head(world: World) -> None:
    reg = world.svc.registry
    ids = move_in(world)["resident_ids"]
    hh = reg.get(world.clerk_a, LG_A, ids[0])["household_id"]
    split = reg.split_household(world.clerk_a, LG_A, {
        "household_id": hh, "member_ids": [ids[1]], "new_head_id": ids[1],
        "occurred_on": "2026-03-31", "notified_on": "2026-03-31"})
    new_hh = split["detail"]["to_household"]
    assert reg.household(world.clerk_a, LG_A, new_hh)["head_id"] == ids[1]
    reg.merge_households(world.clerk_a, LG_A, {
        "household_id": hh, "other_household_id": new_hh, "relationships": {ids[1]: "妻"},
        "occurred_on": "2026-03-31", "notified_on": "2026-03-31"})
    merged = reg.household(world.clerk_a, LG_A, hh)
    assert len(merged["members"]) == 2
    reg.change_head(world.clerk_a, LG_A, {
        "household_id": hh, "new_head_id": ids[1], "relationships": {ids[0]: "夫"},
        "occurred_on": "2026-03-31", "notified_on": "2026-03-31"})
    rels = {m["id"]: m["relationship"] for m in reg.household(world.clerk_a, LG_A,
                                                               hh)["members"]}
    assert rels == {ids[0]: "夫", ids[1]: "世帯主"}


def test_move_out_and_special_move_in_across_municipalities(world: World) -> None:
    reg = world.svc.registry
    ids = move_in(world)["resident_ids"]
    result = reg.move_out(world.clerk_a, LG_A, {
        "resident_ids": ids, "planned_on": "2026-04-10", "notified_on": "2026-04-01",
        "destination": "神奈川県横浜市", "dest_lgcode": LG_B})
    assert len(result["moveout_certificates"]) == 2
    assert reg.get(world.clerk_a, LG_A, ids[0])["status"] == "removed"
    # The destination sees the data sent ahead; the departure's clerk B cannot.
    incoming = reg.incoming_transfers(world.clerk_b, LG_B)
    assert {t["juminhyo_code"] for t in incoming} == {
        c["juminhyo_code"] for c in result["moveout_certificates"]}
    head_transfer = next(t for t in incoming if t["name"] == "山田 太郎")
    world.svc.clock.advance(__import__("datetime").timedelta(days=7))  # type: ignore[attr-defined]
    moved = reg.special_move_in(world.clerk_b, LG_B, {
        "transfer_id": head_transfer["id"], "occurred_on": "2026-04-06",
        "notified_on": "2026-04-07", "address": {"town_code": "0001002", "banchi": "3"}})
    newcomer = reg.get(world.clerk_b, LG_B, moved["resident_ids"][0])
    departed = reg.get(world.clerk_a, LG_A, ids[0])
    assert newcomer["juminhyo_code"] == departed["juminhyo_code"]
    # The move-out takes effect on the earlier of the planned and the move-in date.
    assert departed["removed_on"] == "2026-04-06"
    with pytest.raises(ValidationFailed):  # used once only
        reg.special_move_in(world.clerk_b, LG_B, {
            "transfer_id": head_transfer["id"], "occurred_on": "2026-04-06",
            "notified_on": "2026-04-07", "address": {"town_code": "0001002", "banchi": "3"}})
    assert reg.verify_ledger(LG_A)["ok"] and reg.verify_ledger(LG_B)["ok"]


def test_special_move_in_after_thirty_days_refused(world: World) -> None:
    import datetime as dt

    reg = world.svc.registry
    ids = move_in(world)["resident_ids"]
    reg.move_out(world.clerk_a, LG_A, {
        "resident_ids": ids, "planned_on": "2026-04-01", "notified_on": "2026-04-01",
        "destination": "横浜市", "dest_lgcode": LG_B})
    transfer = reg.incoming_transfers(world.clerk_b, LG_B)[0]
    world.svc.clock.advance(dt.timedelta(days=40))  # type: ignore[attr-defined]
    with pytest.raises(RuleViolation):
        reg.special_move_in(world.clerk_b, LG_B, {
            "transfer_id": transfer["id"], "occurred_on": "2026-05-08",
            "notified_on": "2026-05-10", "address": {"town_code": "0001002", "banchi": "3"}})


def test_authority_changes_need_supervisor(world: World) -> None:
    reg = world.svc.registry
    ids = move_in(world)["resident_ids"]
    with pytest.raises(Forbidden):
        reg.correct(world.clerk_a, LG_A, {"resident_id": ids[1],
                                          "updates": {"given_name": "華子"}, "reason": "誤記"})
    reg.correct(world.supervisor_a, LG_A, {"resident_id": ids[1],
                                           "updates": {"given_name": "華子"}, "reason": "誤記"})
    assert reg.get(world.clerk_a, LG_A, ids[1])["given_name"] == "華子"
    reg.authority_removal(world.supervisor_a, LG_A, {
        "resident_ids": ids, "occurred_on": "2026-03-31", "reason": "実態調査により居住なし"})
    assert reg.get(world.clerk_a, LG_A, ids[0])["status"] == "removed"
    # A removed record can still be corrected.
    reg.correct(world.supervisor_a, LG_A, {"resident_id": ids[0],
                                           "updates": {"honseki": "東京都千代田区"},
                                           "reason": "本籍の記載漏れ"})


def test_cancellation_restores_and_refuses_when_later_changes_exist(world: World) -> None:
    reg = world.svc.registry
    first = move_in(world)
    ids = first["resident_ids"]
    hh = reg.get(world.clerk_a, LG_A, ids[0])["household_id"]
    reloc = reg.relocate(world.clerk_a, LG_A, {
        "household_id": hh, "occurred_on": "2026-03-31", "notified_on": "2026-04-01",
        "address": {"town_code": "0002001", "banchi": "5-6"}})
    with pytest.raises(Conflict):  # the move-in has a later change on top
        reg.cancel(world.supervisor_a, LG_A, {"event_id": first["event_id"], "reason": "誤り"})
    reg.cancel(world.supervisor_a, LG_A, {"event_id": reloc["event_id"], "reason": "誤入力"})
    assert reg.get(world.clerk_a, LG_A, ids[0])["address"]["text"] == "本町一丁目1番地2 メゾン101"
    with pytest.raises(Conflict):
        reg.cancel(world.supervisor_a, LG_A, {"event_id": reloc["event_id"], "reason": "再"})
    reg.cancel(world.supervisor_a, LG_A, {"event_id": first["event_id"], "reason": "誤り"})
    assert reg.search(world.clerk_a, LG_A, name="ヤマダ", include_removed=True)["total"] == 0
    kinds = [e["kind"] for e in reg.history(world.supervisor_a, LG_A, ids[0])]
    assert kinds == ["move_in", "relocation", "cancellation", "cancellation"]
    assert reg.verify_ledger(LG_A)["ok"]


def test_my_number_visible_only_to_roles_that_may_see_it(world: World) -> None:
    reg = world.svc.registry
    ids = move_in(world, members=[person(my_number="123456789018")])["resident_ids"]
    assert "my_number" not in reg.get(world.clerk_a, LG_A, ids[0])
    assert reg.get(world.supervisor_a, LG_A, ids[0])["my_number"] == "123456789018"


def test_search_by_kana_kanji_birth_date_code_and_address(world: World) -> None:
    reg = world.svc.registry
    ids = move_in(world)["resident_ids"]
    code = reg.get(world.clerk_a, LG_A, ids[0])["juminhyo_code"]
    for query in ("やまだ", "ヤマダ タ", "ﾔﾏﾀﾞ", "ハナコ", "山田", "花子"):
        assert reg.search(world.clerk_a, LG_A, name=query)["total"] >= 1, query
    assert reg.search(world.clerk_a, LG_A, name="ヤマダタロウ")["total"] == 1
    assert reg.search(world.clerk_a, LG_A, name="タナカ")["total"] == 0
    import datetime as dt

    assert reg.search(world.clerk_a, LG_A, birth_date=dt.date(1982, 7, 7))["total"] == 1
    assert reg.search(world.clerk_a, LG_A, juminhyo_code=code)["items"][0]["id"] == ids[0]
    assert reg.search(world.clerk_a, LG_A, town_code="0001001")["total"] == 2
    with pytest.raises(ValidationFailed):
        reg.search(world.clerk_a, LG_A)
    page = reg.search(world.clerk_a, LG_A, name="ヤマダ", per_page=1, page=2)
    assert page["total"] == 2 and len(page["items"]) == 1


def test_cancelling_a_move_out_withdraws_the_data_sent_ahead(world: World) -> None:
    reg = world.svc.registry
    ids = move_in(world)["resident_ids"]
    out = reg.move_out(world.clerk_a, LG_A, {
        "resident_ids": ids, "planned_on": "2026-04-10", "notified_on": "2026-04-01",
        "destination": "横浜市", "dest_lgcode": LG_B})
    assert len(reg.incoming_transfers(world.clerk_b, LG_B)) == 2
    reg.cancel(world.supervisor_a, LG_A, {"event_id": out["event_id"], "reason": "届出の撤回"})
    assert reg.incoming_transfers(world.clerk_b, LG_B) == []
    assert reg.get(world.clerk_a, LG_A, ids[0])["status"] == "active"


def test_cancelling_a_special_move_in_reopens_the_transfer(world: World) -> None:
    import datetime as dt

    reg = world.svc.registry
    ids = move_in(world)["resident_ids"]
    out = reg.move_out(world.clerk_a, LG_A, {
        "resident_ids": ids[:1], "planned_on": "2026-04-10", "notified_on": "2026-04-01",
        "destination": "横浜市", "dest_lgcode": LG_B, "remaining_head_id": ids[1]})
    transfer = reg.incoming_transfers(world.clerk_b, LG_B)[0]
    world.svc.clock.advance(dt.timedelta(days=7))  # type: ignore[attr-defined]
    moved = reg.special_move_in(world.clerk_b, LG_B, {
        "transfer_id": transfer["id"], "occurred_on": "2026-04-05", "notified_on": "2026-04-07",
        "address": {"town_code": "0001002", "banchi": "3"}})
    assert reg.get(world.clerk_a, LG_A, ids[0])["removed_on"] == "2026-04-05"
    # The departure cannot withdraw a move-out the destination has used.
    with pytest.raises(Conflict):
        reg.cancel(world.supervisor_a, LG_A, {"event_id": out["event_id"], "reason": "誤り"})
    supervisor_b = world.svc.accounts.create("super-b", "correct-horse-battery", "責任 B",
                                             ["registry_supervisor"], LG_B, world.svc.clock.now())
    reg.cancel(supervisor_b, LG_B, {"event_id": moved["event_id"], "reason": "誤入力"})
    assert reg.get(world.clerk_a, LG_A, ids[0])["removed_on"] == "2026-04-10"
    assert [t["id"] for t in reg.incoming_transfers(world.clerk_b, LG_B)] == [transfer["id"]]
    # The corrected move-in can use the same data (and 住民票コード) again.
    again = reg.special_move_in(world.clerk_b, LG_B, {
        "transfer_id": transfer["id"], "occurred_on": "2026-04-06", "notified_on": "2026-04-07",
        "address": {"town_code": "0001001", "banchi": "4"}})
    assert reg.get(world.clerk_b, LG_B, again["resident_ids"][0])["juminhyo_code"] == \
        reg.get(world.clerk_a, LG_A, ids[0])["juminhyo_code"]
    assert reg.verify_ledger(LG_A)["ok"] and reg.verify_ledger(LG_B)["ok"]
