"""The assistant's chat widget in a real browser: a resident asks in Japanese and English,
gets the approved answer with its source, says it helped; a script-laden question is refused
and shown as text; an off-topic one is handed off to the inquiry page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_widget_answers_hands_off_and_never_runs_what_was_typed(page: Page,
                                                                live_server: Any) -> None:
    from kiban.assist.service import Assist
    from kiban.core.clock import SystemClock
    from kiban.platform.tenants import Municipalities

    Assist(live_server.db, SystemClock(), Municipalities(live_server.db)).seed_demo()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto("/assist/131016")
    expect(page.get_by_role("heading", name="千代田区 AIお問い合わせ / Assistant")).to_be_visible()
    question = page.get_by_label("質問 / Question(日本語・English・中文・한국어・Tiếng Việt)")
    log = page.get_by_role("log")

    question.fill("住民票が欲しいです")
    page.get_by_role("button", name="送信 / Send").click()
    answer = log.locator("article.assist-answer").first
    expect(answer).to_contain_text("住民票の写しは市民課の窓口で請求できます。")
    expect(answer).to_contain_text("出典 / Source: 標準FAQ(共通)・STD-0006")
    expect(question).to_be_focused()
    answer.get_by_role("button", name="はい / Yes").click()
    expect(answer).to_contain_text("ご意見ありがとうございました")

    question.fill("How do I apply for a My Number card?")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the button, reached from the keyboard
    expect(log.locator("article.assist-answer").nth(1)).to_contain_text("交付申請書")

    question.fill("<img src=x onerror=alert(1)>")
    page.get_by_role("button", name="送信 / Send").click()
    expect(log.get_by_role("alert")).to_contain_text("HTMLやスクリプト")
    expect(log.locator(".assist-question").last).to_have_text("<img src=x onerror=alert(1)>")
    assert page.locator("img").count() == 0 and dialogs == []

    question.fill("What is the capital of France?")
    page.get_by_role("button", name="送信 / Send").click()
    handoff = log.locator(".assist-handoff")
    expect(handoff).to_contain_text("We are sorry")
    handoff.get_by_role("link", name="お問い合わせ窓口 / Inquiry page").click()
    expect(page.get_by_role("heading", name="千代田区 お問い合わせ / Inquiry")).to_be_visible()
