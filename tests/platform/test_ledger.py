"""The ledger is tamper-evident: `kiban ledger verify` names any altered, removed, inserted
or reordered entry. Tampering goes through the owner's connection, as an attacker with
database access would."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from kiban.platform import ledger
from kiban_testkit import LG_A, LG_B, World, move_in_data


def _populate(world: World) -> None:
    for i in range(3):
        world.svc.registry.move_in(world.clerk_a, LG_A, move_in_data(
            previous_address=f"大阪府大阪市{i}"))


def _tamper(world: World, sql: str, **params: object) -> None:
    with world.svc.db.admin_engine.begin() as conn:
        conn.execute(text(sql), {"lg": LG_A, **params})


def _problems(world: World) -> list[dict]:
    report = world.svc.registry.verify_ledger(LG_A)
    return report["problems"]


def test_untouched_chain_verifies(world: World) -> None:
    _populate(world)
    report = world.svc.registry.verify_ledger(LG_A)
    assert report["ok"] and report["head_seq"] >= 4
    assert world.svc.registry.verify_ledger(LG_B)["ok"]


def test_altered_entry_is_named(world: World) -> None:
    _populate(world)
    _tamper(world, "UPDATE ledger_entries SET actor = 'intruder' WHERE lgcode = :lg AND seq = 3")
    problems = _problems(world)
    assert {"seq": 3, "what": "altered"}.items() <= problems[0].items()


def test_altered_payload_is_named(world: World) -> None:
    _populate(world)
    payload = json.dumps({"event": "x", "digest": "0" * 64})
    _tamper(world, "UPDATE ledger_entries SET payload = :p WHERE lgcode = :lg AND seq = 2",
            p=payload)
    assert _problems(world)[0]["seq"] == 2


def test_removed_entry_is_named(world: World) -> None:
    _populate(world)
    _tamper(world, "DELETE FROM ledger_entries WHERE lgcode = :lg AND seq = 2")
    problems = _problems(world)
    assert problems[0]["seq"] == 2 and problems[0]["what"] == "removed"


def test_removed_tail_is_named(world: World) -> None:
    _populate(world)
    with world.svc.db.tenant(LG_A) as conn:
        last, _ = ledger.head(conn, LG_A)
    _tamper(world, "DELETE FROM ledger_entries WHERE lgcode = :lg AND seq = :s", s=last)
    problems = _problems(world)
    assert problems[0]["seq"] == last and problems[0]["what"] == "removed"


def test_inserted_entry_is_named(world: World) -> None:
    _populate(world)
    # Shift entries 3.. up by one and forge a well-formed entry at 3.
    with world.svc.db.admin_engine.begin() as conn:
        rows = conn.execute(text("SELECT seq FROM ledger_entries WHERE lgcode = :lg "
                                 "AND seq >= 3 ORDER BY seq DESC"), {"lg": LG_A}).scalars().all()
        for seq in rows:
            conn.execute(text("UPDATE ledger_entries SET seq = seq + 1 WHERE lgcode = :lg "
                              "AND seq = :s"), {"lg": LG_A, "s": seq})
        prev = conn.execute(text("SELECT hash FROM ledger_entries WHERE lgcode = :lg "
                                 "AND seq = 2"), {"lg": LG_A}).scalar_one()
        forged = ledger.entry_hash(prev, LG_A, 3, "registry.move_in", "forged", {}, "x",
                                   "2026-04-01T00:00:00+00:00")
        conn.execute(text(
            "INSERT INTO ledger_entries (lgcode, seq, kind, subject, payload, actor, "
            "recorded_at, prev_hash, hash) VALUES (:lg, 3, 'registry.move_in', 'forged', "
            "'{}', 'x', '2026-04-01T00:00:00+00:00', :p, :h)"), {"lg": LG_A, "p": prev,
                                                                  "h": forged})
    problems = _problems(world)
    assert problems and problems[0]["seq"] == 4  # the genuine entry no longer follows


def test_reordered_entries_are_named(world: World) -> None:
    _populate(world)
    with world.svc.db.admin_engine.begin() as conn:
        conn.execute(text("UPDATE ledger_entries SET seq = -1 WHERE lgcode = :lg AND seq = 2"),
                     {"lg": LG_A})
        conn.execute(text("UPDATE ledger_entries SET seq = 2 WHERE lgcode = :lg AND seq = 3"),
                     {"lg": LG_A})
        conn.execute(text("UPDATE ledger_entries SET seq = 3 WHERE lgcode = :lg AND seq = -1"),
                     {"lg": LG_A})
    assert _problems(world)[0]["seq"] == 2


def test_change_event_rewritten_behind_the_ledger_is_named(world: World) -> None:
    _populate(world)
    _tamper(world, "UPDATE change_events SET occurred_on = '2020-01-01' WHERE lgcode = :lg")
    problems = _problems(world)
    assert problems and all(p["what"] == "event" for p in problems)


def test_cli_verify_exits_non_zero_and_names_the_entry(world: World,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from kiban.cli import app

    _populate(world)
    settings = world.backend.settings
    monkeypatch.setenv("KIBAN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIBAN_DATABASE_ADMIN_URL", settings.admin_database_url)
    runner = CliRunner()
    ok = runner.invoke(app, ["ledger", "verify", "--lgcode", LG_A])
    assert ok.exit_code == 0, ok.output
    _tamper(world, "UPDATE ledger_entries SET kind = 'x' WHERE lgcode = :lg AND seq = 2")
    bad = runner.invoke(app, ["ledger", "verify"])
    assert bad.exit_code == 1
    assert f"{LG_A}: entry 2: altered" in bad.output
    assert f"{LG_B}: ok" in bad.output


def test_deleted_change_event_is_named(world: World) -> None:
    _populate(world)
    _tamper(world, "DELETE FROM event_subjects WHERE lgcode = :lg")
    _tamper(world, "DELETE FROM change_events WHERE lgcode = :lg")
    problems = _problems(world)
    assert len(problems) == 3 and "not in the registry" in problems[0]["detail"]


def test_rewritten_tail_is_caught_by_the_published_head(world: World, tmp_path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from kiban.cli import app

    _populate(world)
    settings = world.backend.settings
    monkeypatch.setenv("KIBAN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIBAN_DATABASE_ADMIN_URL", settings.admin_database_url)
    runner = CliRunner()
    heads = runner.invoke(app, ["ledger", "head"])
    assert heads.exit_code == 0
    published = tmp_path / "heads.txt"
    published.write_text(heads.output)
    # An owner who drops the last entry and rewinds the head row leaves a consistent chain...
    with world.svc.db.tenant(LG_A) as conn:
        last, _ = ledger.head(conn, LG_A)
    _tamper(world, "DELETE FROM ledger_entries WHERE lgcode = :lg AND seq = :s", s=last)
    with world.svc.db.admin_engine.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM ledger_entries WHERE lgcode = :lg AND seq = :s"),
                            {"lg": LG_A, "s": last - 1}).scalar_one()
        conn.execute(text("UPDATE ledger_heads SET seq = :s, hash = :h WHERE lgcode = :lg"),
                     {"lg": LG_A, "s": last - 1, "h": prev})
    # ...which only the published head exposes.
    result = runner.invoke(app, ["ledger", "verify", "--expect", str(published)])
    assert result.exit_code == 1
    assert f"{LG_A}: entry {last}: removed" in result.output
