"""A resident logs in to the resident portal with a virtual My Number card in a real browser:
the portal (an OpenID Connect relying party) sends them to Kiban's provider, whose page signs
the challenge with the card's authentication key (WebCrypto), and they come back logged in.
A revoked card is refused on the provider's page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from playwright.sync_api import Page, expect

from kiban.core.clock import FixedClock
from kiban.identity import linking, service, testca
from kiban.platform.auth import Role, StaffMember
from kiban.web.context import Services

pytestmark = pytest.mark.e2e

LGCODE = "131016"  # as the live_server fixture (tests/e2e/conftest.py) creates it
NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)  # the live server's fixed clock
LiveServer = Any  # tests/e2e/conftest.py's LiveServer: url and db


def resident_with_card(live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                       ) -> tuple[service.TestPki, testca.Card, Path]:
    """A resident in the registry, a virtual card for them linked to their record, and the
    card as the JSON file the browser is given."""
    monkeypatch.setenv("KIBAN_TEST_CA_DIR", str(tmp_path / "ca"))
    clock = FixedClock(NOW)
    pki = service.TestPki(tmp_path / "ca", "test", clock)
    pki.init()
    svc = Services.build(live_server.db.settings, clock, live_server.db)
    clerk = StaffMember("e2e-clerk", LGCODE, "clerk", "clerk", "", frozenset({Role.COUNTER_CLERK}))
    svc.registry.move_in(clerk, LGCODE, {
        "origin": "domestic", "occurred_on": "2026-03-25", "notified_on": "2026-03-30",
        "previous_address": "大阪府大阪市北区梅田1-1",
        "address": {"town_code": "0001001", "banchi": "1番地2", "katagaki": "メゾン101"},
        "members": [{"family_name": "山田", "given_name": "太郎", "family_kana": "ヤマダ", "given_kana": "タロウ",
                     "birth_date": "1980-05-05", "sex": "1", "relationship": "世帯主"}]})
    card = pki.issue_card(LGCODE, "r", "山田 太郎", "東京都千代田区本町一丁目1番地2 メゾン101", "1980-05-05", "1",
                          "1234")
    auth = card.auth_cert.public_bytes(Encoding.DER)
    links = linking.for_platform(svc.db, clock, svc.registry, svc.municipalities, "test")
    assert links.link_card(LGCODE, auth, testca.sign_detached(auth, card.signing_cert, card.signing_key)).linked
    card_file = tmp_path / "virtual-card.json"
    card_file.write_bytes(testca.login_key_json(card))
    return pki, card, card_file


def start_login(page: Page, card_file: Path) -> None:
    page.goto("/portal")
    page.get_by_role("link", name="マイナンバーカードでログイン").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("マイナンバーカードでログイン")
    expect(page.locator("#scopes")).to_contain_text("氏名")
    page.locator("#virtual-card").set_input_files(str(card_file))
    page.get_by_role("button", name="カードで署名してログイン").click()


def test_resident_logs_in_with_a_virtual_card(page: Page, live_server: LiveServer, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, card_file = resident_with_card(live_server, tmp_path, monkeypatch)
    start_login(page, card_file)
    expect(page.locator("#welcome")).to_have_text("山田 太郎 さん、ようこそ。")
    expect(page).to_have_url(f"{live_server.url}/portal")
    expect(page.locator("#claims")).to_contain_text("東京都千代田区本町一丁目1番地2 メゾン101")
    page.get_by_role("button", name="ログアウト").click()
    expect(page.get_by_role("link", name="マイナンバーカードでログイン")).to_be_visible()


def test_revoked_card_is_refused_in_the_browser(page: Page, live_server: LiveServer, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pki, card, card_file = resident_with_card(live_server, tmp_path, monkeypatch)
    pki.revoke(format(card.auth_cert.serial_number, "X"))
    start_login(page, card_file)
    expect(page.locator("#login-error")).to_contain_text("失効")
    expect(page.locator("#welcome")).to_have_count(0)
