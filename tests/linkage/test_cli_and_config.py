"""`kiban linkage ...` through Typer's runner, and the hub's configuration in production mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from linkage_kit import INSURER, ITEM, JUMIN_A, PROCEDURE, build
from sqlalchemy import text
from typer.testing import CliRunner

from kiban.cli import app
from kiban.linkage import protocol
from kiban.linkage.service import DEV_LINKAGE_SECRET, LinkageConfig
from kiban.platform.settings import UnsafeConfiguration
from kiban_testkit import LG_A, World

runner = CliRunner()


def test_cli_publish_enrol_sth_and_verify(sqlite_world: World, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    world = sqlite_world
    setup = build(world)
    monkeypatch.setenv("KIBAN_DATABASE_URL", world.backend.settings.database_url)
    monkeypatch.setenv("KIBAN_MODE", "test")
    rules = tmp_path / "table.json"
    rules.write_text(json.dumps({"rules": [{"requester": INSURER, "provider": JUMIN_A, "item": ITEM,
                                            "procedure": PROCEDURE, "legal_basis": "番号法 第19条第8号"}]}))
    published = runner.invoke(app, ["linkage", "publish", str(rules), "--as", "platform", "--note", "v2"])
    assert published.exit_code == 0, published.output
    assert "published version 2 (1 rules" in published.output
    refused = runner.invoke(app, ["linkage", "publish", str(rules), "--as", "clerk-a"])
    assert refused.exit_code == 2 and "error:" in refused.output
    bad = tmp_path / "bad.json"
    bad.write_text("[{\"requester\": \"nobody\"}]")
    invalid = runner.invoke(app, ["linkage", "publish", str(bad), "--as", "platform"])
    assert invalid.exit_code == 2 and "rules[0].requester" in invalid.output
    code = runner.invoke(app, ["linkage", "enrol", INSURER, LG_A, setup.resident_id])
    assert code.exit_code == 0 and code.output.strip() == setup.insurer_code
    members = runner.invoke(app, ["linkage", "members"])
    assert INSURER in members.output and "jumin/household-composition" in members.output

    # The hub writes the log; the CLI's own hub instance reads it.
    out = protocol.build_request(INSURER, setup.insurer.key, JUMIN_A, ITEM, PROCEDURE, setup.insurer_code,
                                 world.svc.clock.now())
    assert setup.hub.exchange(out.body, INSURER, out.headers[protocol.SIGNATURE_HEADER]).status == 200
    head = runner.invoke(app, ["linkage", "sth"])
    assert head.exit_code == 0 and json.loads(head.output)["tree_size"] == 1
    (tmp_path / "head.json").write_text(head.output)
    assert runner.invoke(app, ["linkage", "verify", "--expect", str(tmp_path / "head.json")]).exit_code == 0
    with world.svc.db.engine.begin() as conn:
        conn.execute(text("UPDATE linkage_log SET entry = replace(entry, 'provided', 'refused')"))
    broken = runner.invoke(app, ["linkage", "verify"])
    assert broken.exit_code == 1 and "does not match its hash" in broken.output


def test_production_mode_never_defaults_the_hub_secret_or_keys(tmp_path: Path) -> None:
    with pytest.raises(UnsafeConfiguration, match="KIBAN_LINKAGE_SECRET"):
        LinkageConfig.from_env("production", {})
    with pytest.raises(UnsafeConfiguration, match="KIBAN_LINKAGE_SECRET"):
        LinkageConfig.from_env("production", {"KIBAN_LINKAGE_SECRET": DEV_LINKAGE_SECRET})
    with pytest.raises(UnsafeConfiguration, match="KIBAN_LINKAGE_KEY_DIR"):
        LinkageConfig.from_env("production", {"KIBAN_LINKAGE_SECRET": "x" * 40})
    config = LinkageConfig.from_env("test", {"KIBAN_TEST_CA_DIR": str(tmp_path)})
    assert config.secret == DEV_LINKAGE_SECRET.encode() and config.ca_dir == tmp_path
