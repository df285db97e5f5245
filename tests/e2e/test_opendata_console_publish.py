"""Open data from the staff console in a real browser: the DX officer uploads a CSV with a
bad row, sees the row and field named (nothing published), fixes the cell in the console's
row editor, publishes, and the record shows in the public catalog and on its map."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

DX_OFFICER = "dx-a"  # created by the live_server fixture (digital_officer of 131016)
SAMPLE = Path(__file__).parent.parent / "opendata" / "samples" / "aed_locations.csv"

pytestmark = pytest.mark.e2e


def test_upload_bad_row_fix_in_console_publish_and_see_in_catalog(
        page: Page, login: Callable[..., None]) -> None:
    bad = SAMPLE.read_bytes().replace(b"35.6941", b"95.6941")  # row 3: latitude outside Japan
    login(page, DX_OFFICER)
    page.get_by_role("navigation").get_by_role("link", name="オープンデータ").click()
    expect(page.get_by_role("heading", name="オープンデータの公開")).to_be_visible()
    page.get_by_role("link", name="作成・アップロード(AED設置箇所一覧)").click()

    page.get_by_label(re.compile(r"^CSV ファイル\(")).set_input_files(
        {"name": "aed.csv", "mimeType": "text/csv", "buffer": bad})
    page.get_by_role("button", name="アップロードして公開").click()
    alert = page.locator("#od-problems")
    expect(alert).to_contain_text("3行目「緯度」: 日本の範囲外です(95.6941)")
    expect(alert).to_contain_text("何も公開していません")
    latitude = page.get_by_label("3行目 緯度", exact=True)
    expect(latitude).to_have_attribute("aria-invalid", "true")
    expect(latitude).to_have_value("95.6941")

    page.goto("/opendata")
    expect(page.get_by_text("0 件のデータセット")).to_be_visible()  # nothing published
    page.go_back()

    page.get_by_label("3行目 緯度", exact=True).fill("35.6941")
    page.get_by_role("button", name="検証して公開").click()
    expect(page.get_by_role("status")).to_have_text("第1版を公開しました。")
    expect(page.locator("#od-history")).to_contain_text("画面で編集")
    expect(page.get_by_label("3行目 x-設置台数", exact=True)).to_have_value("1")  # own column kept

    page.goto("/opendata")
    expect(page.get_by_text("1 件のデータセット")).to_be_visible()
    page.get_by_role("link", name="千代田区 AED設置箇所一覧").first.click()
    expect(page.get_by_role("cell", name="千代田区立図書館")).to_be_visible()
    expect(page.locator("figure.od-map path.od-outline")).to_have_count(1)
    page.goto("/opendata/datasets/131016-aed-locations/records/2")
    expect(page.locator("main")).to_contain_text("35.6941")
