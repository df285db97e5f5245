"""The counter clerk's day in a real browser: sign in, record a 転入届, find the resident, and
hand over a 住民票の写し as PDF; and what the clerk sees when something is wrong."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from kiban.core.checkdigits import is_valid_juminhyo_code

pytestmark = pytest.mark.e2e

Login = Callable[..., None]

YAMADA = {
    "occurred_on": "2026-03-25", "notified_on": "2026-04-01",
    "previous_address": "大阪府大阪市北区梅田1-1", "town": "本町一丁目", "banchi": "1番地2",
    "katagaki": "メゾン101", "family_name": "山田", "given_name": "太郎",
    "family_kana": "ヤマダ", "given_kana": "タロウ", "birth_date": "1980-05-05", "sex": "男",
}


def fill_move_in(page: Page, person: dict[str, str]) -> None:
    """Fills the 転入届 form (already open) the way a clerk would, then submits it."""
    page.locator("#origin").select_option(label="国内の他市区町村")
    for name in ("occurred_on", "notified_on", "previous_address", "banchi", "katagaki",
                 "family_name", "given_name", "family_kana", "given_kana", "birth_date"):
        page.locator(f"#{name}").fill(person[name])
    page.locator("#town_code").select_option(label=person["town"])
    page.locator("#sex").select_option(label=person["sex"])
    page.locator("#relationship").select_option(label="世帯主")
    page.get_by_role("button", name="転入を記録").click()


def open_menu(page: Page, item: str) -> None:
    page.get_by_role("navigation", name="メインメニュー").get_by_role("link", name=item).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(item)


def search(page: Page, name: str) -> None:
    open_menu(page, "住民検索")
    page.locator("#name").fill(name)
    page.get_by_role("button", name="検索", exact=True).click()


def pdf_text(pdf: bytes) -> str:
    """The text a reader of the PDF sees, without the spacing the layout puts between glyphs."""
    text = "".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"\s+", "", text)


def test_move_in_and_issue_juminhyo(page: Page, login: Login, tmp_path: Path) -> None:
    login(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("東京都千代田区 ダッシュボード")
    expect(page.locator("#count-residents")).to_have_text("0")
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)

    open_menu(page, "転入届")
    expect(page.locator("#notified_on")).to_have_value("2026-04-01")  # today, by the fixed clock
    fill_move_in(page, YAMADA)

    expect(page).to_have_url(re.compile(r"/console/residents/[\w-]+$"))  # not late: no ?late=1
    expect(page.get_by_role("heading", level=1)).to_contain_text("山田 太郎")
    expect(page.get_by_role("heading", level=1)).to_contain_text("ヤマダ タロウ")
    code = page.locator("#juminhyo-code").inner_text().strip()
    assert is_valid_juminhyo_code(code), code
    record = page.locator("dl.record")
    expect(record).to_contain_text("本町一丁目1番地2")
    expect(record).to_contain_text("大阪府大阪市北区梅田1-1")
    page.screenshot(path=tmp_path / "resident.png", full_page=True)

    page.get_by_label("住民票コード").check()
    with page.expect_download() as info:
        page.get_by_role("button", name="住民票の写しを交付(PDF)").click()
    download = info.value
    assert re.fullmatch(r"juminhyo-2026-\d{6}\.pdf", download.suggested_filename)
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    assert "住民票の写し" in text
    assert "山田太郎" in text
    assert code in text
    for shot in ("dashboard.png", "resident.png"):
        assert (tmp_path / shot).read_bytes().startswith(b"\x89PNG")


def test_bad_move_in_shows_errors_and_records_nothing(page: Page, login: Login) -> None:
    login(page)
    open_menu(page, "転入届")
    fill_move_in(page, {**YAMADA, "family_kana": "Yamada", "given_kana": "Taro", "banchi": ""})

    expect(page).to_have_url(re.compile(r"/console/move-in$"))
    expect(page.get_by_role("alert")).to_contain_text("入力内容を確認してください")
    for name in ("family_kana", "given_kana"):
        field = page.locator(f"#{name}")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(page.locator(f"#{name}-error")).to_have_text(
            "フリガナはカタカナで入力してください。")
    expect(page.locator("#banchi")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#banchi-error")).to_contain_text("番地を正しく入力してください")
    # What the clerk typed is kept, so only the wrong fields need retyping.
    expect(page.locator("#family_name")).to_have_value("山田")
    expect(page.locator("#family_kana")).to_have_value("Yamada")
    expect(page.locator("#town_code")).to_have_value("0001001")

    search(page, "山田")
    expect(page.locator("#result-count")).to_have_text("0件")


def test_wrong_password_and_no_console_without_login(page: Page) -> None:
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/login\?next=/console$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("職員ログイン")

    page.get_by_label("ユーザー名").fill("clerk-a")
    page.get_by_label("パスワード").fill("not-the-password")
    page.get_by_role("button", name="ログイン").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#login-error")).not_to_be_empty()
    expect(page.get_by_label("パスワード")).to_have_value("")
    assert not [c for c in page.context.cookies() if c["name"] == "kiban_session"]

    page.goto("/console/residents")
    expect(page).to_have_url(re.compile(r"/login\?next=/console/residents$"))


def test_search_by_hiragana_finds_the_resident(page: Page, login: Login) -> None:
    login(page)
    open_menu(page, "転入届")
    fill_move_in(page, YAMADA)
    expect(page).to_have_url(re.compile(r"/console/residents/[\w-]+$"))

    search(page, "やまだ")
    expect(page.locator("#result-count")).to_have_text("1件")
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ヤマダ タロウ")
    rows.first.get_by_role("link", name="山田 太郎").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("山田 太郎")

    search(page, "たろ")  # a prefix of the given name's reading finds them too
    expect(page.locator("#result-count")).to_have_text("1件")
