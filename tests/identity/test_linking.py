"""Part 4: a card linked to the resident record by its 基本4情報, and revoked when the registry
records a change that invalidates it (read from the change feed, idempotently), on SQLite and
PostgreSQL, with tenant isolation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from identity_world import IdWorld, reuse_keys
from sqlalchemy import select
from typer.testing import CliRunner

from kiban.cli import app as cli_app
from kiban.identity import linking, service, store, testca
from kiban.identity.model import Purpose, Reason
from kiban_testkit import LG_A, LG_B, move_in_data

ADDRESS = "東京都千代田区本町一丁目1番地2 メゾン101"  # 千代田区 + the registry's address text


@dataclass
class Setup:
    world: IdWorld
    pki: service.TestPki
    links: linking.CardLinks
    ids: list[str]


def card_for(s: Setup, **overrides: str) -> testca.Card:
    data = {"name": "山田 太郎", "address": ADDRESS, "birth_date": "1980-05-05", "sex": "1"}
    data.update(overrides)
    return s.pki.issue_card(LG_A, "r", data["name"], data["address"], data["birth_date"], data["sex"], "1234")


def link(s: Setup, card: testca.Card, lgcode: str = LG_A) -> linking.LinkResult:
    auth = card.auth_cert.public_bytes(Encoding.DER)
    return s.links.link_card(lgcode, auth, testca.sign_detached(auth, card.signing_cert, card.signing_key))


def signature_check(s: Setup, card: testca.Card, purpose: Purpose = Purpose.SIGNING) -> Reason:
    identity = service.platform_identity("test", s.world.svc.clock)
    if purpose is Purpose.AUTHENTICATION:
        return identity.validate_certificate(card.auth_cert.public_bytes(Encoding.DER), purpose).reason
    return identity.verify_signature(b"x", testca.sign_detached(b"x", card.signing_cert, card.signing_key)).reason


@pytest.fixture
def setup(id_world: IdWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    yield from _setup(id_world, tmp_path, monkeypatch)


@pytest.fixture
def setup_any(id_world_any: IdWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """On SQLite and PostgreSQL (row-level security, the feed's cursor, upserts)."""
    yield from _setup(id_world_any, tmp_path, monkeypatch)


def _setup(world: IdWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    reuse_keys(monkeypatch)
    monkeypatch.setenv("KIBAN_TEST_CA_DIR", str(tmp_path / "ca"))
    svc = world.svc
    pki = service.TestPki(tmp_path / "ca", "test", svc.clock)
    pki.init()
    ids = svc.registry.move_in(world.clerk_a, LG_A, move_in_data())["resident_ids"]
    yield Setup(world, pki, linking.for_platform(svc.db, svc.clock, svc.registry, svc.municipalities, "test"), ids)


def test_card_links_to_the_record_its_four_items_name(setup_any: Setup) -> None:
    card = card_for(setup_any)
    result = link(setup_any, card)
    assert result.linked and result.reason == "ok" and result.resident_id == setup_any.ids[0]
    assert result.authentication_serial == format(card.auth_cert.serial_number, "X")
    found = setup_any.links.linked_resident(result.authentication_serial)
    assert found is not None and found[0] == LG_A and found[1]["kind"] == "authentication"
    head = setup_any.world.svc.registry.get(setup_any.world.clerk_a, LG_A, setup_any.ids[0])
    assert found[1]["juminhyo_code"] == head["juminhyo_code"]
    # Full-width digits and no space: the same items once normalised.
    fullwidth = card_for(setup_any, name="山田太郎", address="東京都千代田区本町一丁目１番地２メゾン101")
    assert link(setup_any, fullwidth).linked
    # Tenant isolation: another municipality sees none of the links.
    db = setup_any.world.svc.db
    with db.tenant(LG_B) as conn:
        assert store.links_of(conn, LG_B, setup_any.ids) == []
        rows: list[Any] = list(conn.execute(select(store.card_links)))
        if db.is_postgres:  # row-level security: the other municipality's rows are invisible
            assert rows == []
    with db.tenant(LG_A) as conn:
        assert len(list(conn.execute(select(store.card_links)))) == 4


@pytest.mark.parametrize("overrides, mismatched", [
    ({"address": "東京都千代田区本町二丁目1番地2"}, ["address"]),
    ({"name": "山田 次郎"}, ["name"]),
    ({"sex": "2"}, ["sex"]),
])
def test_a_mismatch_is_reported_never_guessed(setup: Setup, overrides: dict[str, str],
                                              mismatched: list[str]) -> None:
    result = link(setup, card_for(setup, **overrides))
    assert not result.linked and result.reason == "no_match" and list(result.mismatched) == mismatched
    assert setup.links.links(LG_A, setup.ids[0]) == []


def test_no_record_with_that_birth_date(setup: Setup) -> None:
    result = link(setup, card_for(setup, birth_date="1999-01-01"))
    assert (result.linked, result.reason) == (False, "no_match")


def test_signature_by_another_card_is_refused(setup: Setup) -> None:
    card, other = card_for(setup), card_for(setup)
    auth = card.auth_cert.public_bytes(Encoding.DER)
    bad = testca.sign_detached(auth + b"!", other.signing_cert, other.signing_key)
    result = setup.links.link_card(LG_A, auth, bad)
    assert (result.linked, result.reason) == (False, "digest_mismatch")


def test_revoked_signing_certificate_is_not_linked(setup: Setup) -> None:
    card = card_for(setup)
    setup.pki.revoke(format(card.signing_cert.serial_number, "X"))
    assert link(setup, card).reason == "revoked"


def test_relocation_revokes_the_signing_certificate_only(setup: Setup) -> None:
    world, card = setup.world, card_for(setup)
    assert link(setup, card).linked
    assert setup.links.process_changes(LG_A)["revoked"] == 0  # the move-in itself
    head = world.svc.registry.get(world.clerk_a, LG_A, setup.ids[0])
    world.svc.registry.relocate(world.clerk_a, LG_A, {
        "household_id": head["household_id"], "occurred_on": "2026-03-31", "notified_on": "2026-04-01",
        "address": {"town_code": "0002001", "banchi": "5-6"}})
    assert setup.links.process_changes(LG_A) == {"lgcode": LG_A, "notices": 1, "revoked": 1}
    rows = {r["kind"]: r for r in setup.links.links(LG_A, setup.ids[0])}
    assert rows["signing"]["revocation_reason"] == "relocation" and rows["authentication"]["revoked_at"] is None
    assert signature_check(setup, card) is Reason.REVOKED
    assert signature_check(setup, card, Purpose.AUTHENTICATION) is Reason.OK
    # Idempotent: nothing new, nothing done again.
    assert setup.links.process_changes(LG_A) == {"lgcode": LG_A, "notices": 0, "revoked": 0}


def test_name_correction_revokes_signing(setup: Setup) -> None:
    world = setup.world
    card = card_for(setup, name="山田 花子", sex="2", birth_date="1982-07-07")
    assert link(setup, card).resident_id == setup.ids[1]
    world.svc.registry.correct(world.supervisor_a, LG_A, {"resident_id": setup.ids[1],
                                                          "updates": {"given_name": "華子"}, "reason": "誤記"})
    assert setup.links.process_changes(LG_A)["revoked"] == 1
    assert signature_check(setup, card) is Reason.REVOKED


def test_death_revokes_both_certificates(setup: Setup) -> None:
    world, card = setup.world, card_for(setup)
    assert link(setup, card).linked
    world.svc.registry.death(world.clerk_a, LG_A, {"resident_id": setup.ids[0], "occurred_on": "2026-03-31",
                                                   "notified_on": "2026-03-31", "remaining_head_id": setup.ids[1]})
    assert setup.links.process_changes(LG_A)["revoked"] == 2
    assert signature_check(setup, card) is Reason.REVOKED
    assert signature_check(setup, card, Purpose.AUTHENTICATION) is Reason.REVOKED


def test_move_out_keeps_the_authentication_certificate(setup: Setup) -> None:
    world, card = setup.world, card_for(setup)
    assert link(setup, card).linked
    world.svc.registry.move_out(world.clerk_a, LG_A, {
        "resident_ids": [setup.ids[0], setup.ids[1]], "planned_on": "2026-04-10", "notified_on": "2026-04-01",
        "destination": "神奈川県横浜市", "dest_lgcode": LG_B})
    assert setup.links.process_changes(LG_A)["revoked"] == 1
    assert signature_check(setup, card, Purpose.AUTHENTICATION) is Reason.OK


def test_process_changes_cli_is_idempotent(setup_any: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = setup_any.world.backend.settings
    monkeypatch.setenv("KIBAN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIBAN_MODE", "test")
    world, card = setup_any.world, card_for(setup_any)
    assert link(setup_any, card).linked
    world.svc.registry.death(world.clerk_a, LG_A, {"resident_id": setup_any.ids[0], "occurred_on": "2026-03-31",
                                                   "notified_on": "2026-03-31", "remaining_head_id": setup_any.ids[1]})
    runner = CliRunner()
    first = runner.invoke(cli_app, ["identity", "process-changes", "--lgcode", LG_A])
    assert first.exit_code == 0, first.output
    assert '"revoked": 2' in first.output
    again = runner.invoke(cli_app, ["identity", "process-changes", "--lgcode", LG_A])
    assert again.exit_code == 0 and '"revoked": 0' in again.output and '"notices": 0' in again.output


def test_demo_seeds_a_linked_virtual_card(setup: Setup, tmp_path: Path) -> None:
    from kiban.identity import demo

    svc, lines = setup.world.svc, []
    demo.seed(svc.db, svc.clock, svc.registry, svc.municipalities, LG_A, "test", tmp_path / "var", lines.append)
    card = json.loads((tmp_path / "var" / "demo-card.json").read_text())
    serial = x509.load_pem_x509_certificate(card["authentication_certificate"].encode()).serial_number
    found = setup.links.linked_resident(format(serial, "X"))
    assert found is not None and found[1]["resident_id"] in setup.ids and "log in at /portal" in lines[-1]
    demo.seed(svc.db, svc.clock, svc.registry, svc.municipalities, LG_A, "test", tmp_path / "var", lines.append)
    assert lines[-1].endswith("exists")


def test_link_card_cli(setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBAN_DATABASE_URL", setup.world.backend.settings.database_url)
    monkeypatch.setenv("KIBAN_MODE", "test")
    good, bad = tmp_path / "good.p12", tmp_path / "bad.p12"
    good.write_bytes(testca.write_card(card_for(setup), "1234"))
    bad.write_bytes(testca.write_card(card_for(setup, sex="2"), "1234"))
    runner = CliRunner()
    linked = runner.invoke(cli_app, ["identity", "link-card", "--lgcode", LG_A, "--card", str(good), "--pin", "1234"])
    assert linked.exit_code == 0, linked.output
    assert json.loads(linked.output)["resident_id"] == setup.ids[0]
    refused = runner.invoke(cli_app, ["identity", "link-card", "--lgcode", LG_A, "--card", str(bad), "--pin", "1234"])
    assert refused.exit_code == 1 and json.loads(refused.output)["mismatched"] == ["sex"]
    wrong_pin = runner.invoke(cli_app, ["identity", "link-card", "--lgcode", LG_A, "--card", str(good), "--pin", "0"])
    assert wrong_pin.exit_code == 2
