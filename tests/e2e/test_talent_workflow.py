"""The specialist pool in a real browser: a specialist signs up and fills in a profile; the
municipality's DX officer posts a need, sees the specialist ranked with the reasons, and
makes an offer that the specialist then accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from kiban_testkit import PASSWORD

DX_OFFICER = "dx-a"  # created by the live_server fixture

pytestmark = pytest.mark.e2e


def sign_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("button", name="ログアウト")).to_be_visible()


def test_sign_up_profile_need_offer_and_acceptance(page: Page, chromium: Browser,
                                                   live_server: Any) -> None:
    page.goto("/talent/register")
    page.get_by_label("ユーザー名(英数字)").fill("sato")
    page.get_by_label("氏名").fill("佐藤 花子")
    page.get_by_label("パスワード(12文字以上)").fill(PASSWORD)
    page.get_by_role("button", name="登録").click()
    expect(page).to_have_url(re.compile(r"/login\?next=/talent/profile$"))
    page.get_by_label("ユーザー名").fill("sato")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("heading", name="専門人材プロフィール")).to_be_visible()
    page.get_by_label("情報セキュリティ").check()
    page.get_by_label("現地勤務可").check()
    page.locator("#regions").select_option(["東京都"])
    page.get_by_label("稼働可能日数(月)").fill("8")
    page.get_by_label("希望日額(円)").fill("45000")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_have_text("プロフィールを保存しました。")

    officer = chromium.new_context(base_url=live_server.url, locale="ja-JP")
    officer.set_default_timeout(5_000)
    dx = officer.new_page()
    sign_in(dx, DX_OFFICER)
    dx.get_by_role("link", name="専門人材").first.click()
    dx.get_by_role("link", name="募集を登録").click()
    dx.get_by_label("件名(必須)").fill("情報セキュリティ規程の改定")
    dx.get_by_label("業務内容(必須)").fill("規程改定と職員研修")
    dx.locator("fieldset", has_text="必須スキル").get_by_label("情報セキュリティ").check()
    dx.get_by_label("開始月").fill("2026-05")
    dx.get_by_label("終了月").fill("2026-10")
    dx.get_by_label("月額予算(円、全団体の合計)").fill("200000")
    dx.get_by_role("button", name="募集を登録").click()
    candidates = dx.locator("#candidates")
    expect(candidates).to_contain_text("佐藤 花子")
    expect(candidates).to_contain_text("必須スキル 1/1: 情報セキュリティ")
    dx.get_by_role("button", name="打診する").click()
    officer.close()

    page.goto("/talent")
    page.locator("#engagements").get_by_role("link").first.click()
    page.get_by_role("button", name="引き受ける").click()
    expect(page.locator("#engagement-status")).to_have_text("契約中")
