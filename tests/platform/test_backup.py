"""`kiban backup` / `kiban restore` round-trip a whole database, every municipality."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kiban.cli import app
from kiban_testkit import LG_A, LG_B, World, move_in_data


def _state(world: World) -> dict:
    reg = world.svc.registry
    return {
        "a": reg.search(world.supervisor_a, LG_A, name="ヤマダ", include_removed=True),
        "b": reg.search(world.clerk_b, LG_B, name="ヤマダ", include_removed=True),
        "ledger": reg.verify_ledger(LG_A),
    }


def test_backup_restore_round_trip(world: World, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    reg = world.svc.registry
    ids = reg.move_in(world.clerk_a, LG_A, move_in_data())["resident_ids"]
    reg.move_in(world.clerk_b, LG_B, move_in_data())
    reg.death(world.clerk_a, LG_A, {"resident_id": ids[1], "occurred_on": "2026-03-31",
                                    "notified_on": "2026-03-31"})
    before = _state(world)
    settings = world.backend.settings
    monkeypatch.setenv("KIBAN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIBAN_DATABASE_ADMIN_URL", settings.admin_database_url)
    runner = CliRunner()
    dump = tmp_path / "backup.jsonl.gz"
    result = runner.invoke(app, ["backup", str(dump)])
    assert result.exit_code == 0, result.output
    # Change things after the backup; the restore must bring back the backed-up state.
    reg.move_in(world.clerk_a, LG_A, move_in_data(previous_address="後から"))
    assert _state(world) != before
    result = runner.invoke(app, ["restore", str(dump)])
    assert result.exit_code == 0, result.output
    assert _state(world) == before
    assert before["ledger"]["ok"]


def test_restore_refuses_a_foreign_file(world: World, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bogus = tmp_path / "x.jsonl"
    bogus.write_text('{"format": "something-else"}\n')
    settings = world.backend.settings
    monkeypatch.setenv("KIBAN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIBAN_DATABASE_ADMIN_URL", settings.admin_database_url)
    result = CliRunner().invoke(app, ["restore", str(bogus)])
    assert result.exit_code != 0
    assert world.svc.municipalities.get(LG_A)["name"] == "千代田区"


def test_backup_as_the_application_role_is_refused(pg_world: World, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pg_world.svc.registry.move_in(pg_world.clerk_a, LG_A, move_in_data())
    # Without the owner's URL, the app role would see no personal data: refuse, don't lie.
    monkeypatch.setenv("KIBAN_DATABASE_URL", pg_world.backend.settings.database_url)
    monkeypatch.delenv("KIBAN_DATABASE_ADMIN_URL", raising=False)
    result = CliRunner().invoke(app, ["backup", str(tmp_path / "b.jsonl")])
    assert result.exit_code == 2
    assert "owner" in result.output


def test_login_works_after_restore(world: World, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from kiban.platform.auth import BadCredentials

    settings = world.backend.settings
    monkeypatch.setenv("KIBAN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIBAN_DATABASE_ADMIN_URL", settings.admin_database_url)
    accounts, now = world.svc.accounts, world.svc.clock.now()
    with pytest.raises(BadCredentials):
        accounts.login("clerk-a", "wrong-password", "1.2.3.4", now, 5, 900)
    dump = tmp_path / "b.jsonl"
    assert CliRunner().invoke(app, ["backup", str(dump)]).exit_code == 0
    assert CliRunner().invoke(app, ["restore", str(dump)]).exit_code == 0
    # Sequences continue after the restored rows: a new failure row is no duplicate key.
    with pytest.raises(BadCredentials):
        accounts.login("clerk-a", "wrong-password", "1.2.3.4", now, 5, 900)
