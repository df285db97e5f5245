"""`kiban talent ...` through the real command line on a temporary SQLite database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kiban.cli import app


def test_skills_profile_need_match_and_coverage(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBAN_DATABASE_URL", f"sqlite:///{tmp_path / 'kiban.db'}")
    monkeypatch.delenv("KIBAN_DATABASE_ADMIN_URL", raising=False)
    monkeypatch.setenv("KIBAN_MODE", "dev")
    runner = CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    ok("db", "upgrade")
    ok("municipality", "create", "131016", "千代田区", "東京都")
    ok("staff", "create", "dx", "DX 推進", "--roles", "digital_officer", "--lgcode", "131016",
       "--password", "correct-horse-battery")
    ok("staff", "create", "sato", "佐藤 花子", "--roles", "specialist",
       "--password", "correct-horse-battery")
    assert "情報セキュリティ" in ok("talent", "skills")
    ok("talent", "skill-add", "gis", "GIS・地理空間情報", "GIS")
    assert "gis" in ok("talent", "skills")
    refused = runner.invoke(app, ["talent", "skill-add", "gis", "重複", "dup"])
    assert refused.exit_code == 2 and "exists" in refused.output

    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({
        "display_name": "佐藤 花子", "skills": ["information_security", "gis"], "remote": True,
        "days_per_month": 6, "rate_per_day": 40000}, ensure_ascii=False), encoding="utf-8")
    ok("talent", "profile", str(profile), "--as", "sato")

    need = tmp_path / "need.json"
    data = {"title": "GIS 整備", "tasks": "地図データ整備", "required_skills": ["gis"],
            "days_per_month": 4, "start": "2099-01", "end": "2099-06", "onsite_percent": 0,
            "budget_per_month": 160000}
    need.write_text(json.dumps({**data, "days_per_month": 40}, ensure_ascii=False),
                    encoding="utf-8")
    bad = runner.invoke(app, ["talent", "post-need", str(need), "--as", "dx"])
    assert bad.exit_code == 2 and "days_per_month" in bad.output
    need.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    need_id = json.loads(ok("talent", "post-need", str(need), "--as", "dx"))["id"]
    assert need_id in ok("talent", "needs", "--as", "sato")

    ranked = ok("talent", "match", need_id, "--as", "dx")
    assert "  1. 100 佐藤 花子" in ranked and "必須スキル 1/1: GIS・地理空間情報" in ranked
    coverage = ok("talent", "coverage", "東京都", "--as", "dx", "--month", "2099-02")
    assert "1 of 1 municipalities without a specialist" in coverage
    assert "GIS・地理空間情報: demand 4, supply 6, short 0" in coverage
