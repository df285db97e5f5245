"""`kiban demo seed` through the real command line, on a temporary SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kiban.cli import app
from kiban.core.clock import SystemClock
from kiban.platform import settings as settings_module
from kiban.platform.db import Database
from kiban.web.context import Services


def test_demo_seed_prints_logins_and_creates_residents(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBAN_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    monkeypatch.delenv("KIBAN_DATABASE_ADMIN_URL", raising=False)
    monkeypatch.setenv("KIBAN_MODE", "dev")
    runner = CliRunner()
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    result = runner.invoke(app, ["demo", "seed", "--residents", "300"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "http://127.0.0.1:8000" in out
    assert "kiban-demo-2026" in out
    for username in ("chiyoda-clerk", "chiyoda-supervisor", "chiyoda-tax", "chiyoda-privacy",
                     "chiyoda-admin", "yokohama-clerk", "sapporo-admin", "platform-admin",
                     "sapporo-dx", "ebetsu-dx", "specialist-sato"):
        assert username in out
    for role in ("counter_clerk", "registry_supervisor", "tax_officer", "privacy_officer",
                 "municipality_admin", "platform_admin"):
        assert role in out

    settings = settings_module.load()
    svc = Services.build(settings, SystemClock(), Database(settings))
    try:
        assert [m["lgcode"] for m in svc.municipalities.list()] == [
            "011002", "012173", "012351", "131016", "141003"]
        # The specialist pool has content: a joint need open, an engagement under way.
        sapporo_dx = next(m for m in svc.accounts.list("011002") if m.username == "sapporo-dx")
        joint = svc.talent.needs(sapporo_dx, "mine")[0]
        assert joint["status"] == "open" and len(joint["shares"]) == 3
        yokohama_dx = next(m for m in svc.accounts.list("141003")
                           if m.username == "yokohama-dx")
        assert svc.talent.engagements(yokohama_dx)[0]["status"] == "accepted"
        total = 0
        for lgcode in ("131016", "141003", "011002"):
            assert 20 <= len(svc.municipalities.towns(lgcode)) <= 60
            supervisor = next(m for m in svc.accounts.list(lgcode)
                              if m.username.endswith("-supervisor"))
            counts = svc.registry.dashboard(supervisor, lgcode)
            assert counts["residents"] > 0
            total += counts["residents"] + counts["removed"]
            assert svc.registry.verify_ledger(lgcode)["ok"]
        assert total == 300
        # The demo password logs in.
        svc.accounts.login("chiyoda-clerk", "kiban-demo-2026", "test", svc.clock.now(), 5, 900)
    finally:
        svc.db.dispose()

    again = runner.invoke(app, ["demo", "seed", "--residents", "300"])
    assert again.exit_code == 0, again.output
    assert "already registered, skipped" in again.output
    assert "existed already" in again.output


def test_demo_seed_refused_in_production(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("KIBAN_MODE", "production")
    monkeypatch.setenv("KIBAN_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("KIBAN_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["demo", "seed", "--residents", "1"])
    assert result.exit_code == 2
