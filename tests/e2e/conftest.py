"""Browser-test fixtures: a live Kiban server on a fresh SQLite database, and Debian's Chromium
driven by Playwright (never a downloaded browser).

Each test gets its own database and server (migrations plus seeding take well under a second);
the browser is started once per session and each test gets a fresh context (no cookies shared).
The clock is fixed at 2026-04-01 10:00 JST, so "today" in forms and certificates is known.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from kiban.core.clock import FixedClock
from kiban.documents.juminhyo import font_path
from kiban.platform import settings as settings_module
from kiban.platform.db import Database
from kiban.platform.migrate import upgrade
from kiban.web.app import create_app
from kiban_testkit import serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)  # 2026-04-01 10:00 JST
LGCODE = "131016"  # 千代田区
TOWNS = [{"code": "0001001", "name": "本町一丁目"}, {"code": "0001002", "name": "本町二丁目"},
         {"code": "0002001", "name": "緑町一丁目"}]
CLERK = "clerk-a"
PASSWORD = "correct-horse-battery"  # test account only
CLERK_NAME = "窓口 一郎"
DX_OFFICER = "dx-a"

# Every Playwright wait and expect() gives up after this; no page here takes near a second.
TIMEOUT_MS = 5_000


@dataclass
class LiveServer:
    url: str
    db: Database


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = settings_module.load({"KIBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'kiban.db'}",
                                     "KIBAN_MODE": "test"})
    upgrade(settings)
    clock = FixedClock(NOW)
    db = Database(settings)
    app = create_app(settings, clock, db)
    svc = app.state.services
    svc.municipalities.create(LGCODE, "千代田区", "東京都", clock.now())
    svc.municipalities.set_towns(LGCODE, TOWNS, clock.now(), "test")
    svc.accounts.create(CLERK, PASSWORD, CLERK_NAME, ["counter_clerk"], LGCODE, clock.now())
    svc.accounts.create(DX_OFFICER, PASSWORD, "推進 五郎", ["digital_officer"], LGCODE,
                        clock.now())
    try:
        with serve(app) as url:
            yield LiveServer(url=url, db=db)
    finally:
        db.dispose()


def _fontconfig(directory: Path) -> Path:
    """The system fonts plus IPAex Gothic (shipped with the app for the PDFs), so that
    screenshots show Japanese rather than empty boxes on hosts without a CJK font."""
    cache = directory / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    conf = directory / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{font_path().parent}</dir>\n  <cachedir>{cache}</cachedir>\n</fontconfig>\n",
        encoding="utf-8")
    return conf


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (make chromium)")
    env = {**os.environ,
           "FONTCONFIG_FILE": str(_fontconfig(tmp_path_factory.mktemp("fonts")))}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS, env=env)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser, live_server: LiveServer) -> Iterator[Page]:
    context = chromium.new_context(base_url=live_server.url, locale="ja-JP",
                                   timezone_id="Asia/Tokyo", accept_downloads=True,
                                   viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def _login(page: Page, username: str = CLERK, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン").click()
    expect(page).to_have_url(re.compile(r"/console$"))
    expect(page.get_by_role("button", name="ログアウト")).to_be_visible()


@pytest.fixture
def login() -> Callable[..., None]:
    """Signs the page in as the counter clerk (or as given) and waits for the dashboard."""
    return _login
