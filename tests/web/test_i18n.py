"""The language of the resident's pages over HTTP: ?lang, then the kiban_lang cookie, then
Accept-Language, else Japanese; <html lang> follows, the switch links to the other language,
and a language no one offers is ignored. The message catalog refuses half-translated text."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kiban.web import i18n
from kiban.web.app import create_app
from kiban_testkit import World

HTML = {"Accept": "text/html"}


@pytest.fixture
def client(sqlite_world: World) -> Iterator[TestClient]:
    app = create_app(sqlite_world.backend.settings, sqlite_world.svc.clock, sqlite_world.svc.db)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def html_lang(text: str) -> str:
    match = re.search(r'<html lang="([^"]*)">', text)
    assert match, text[:200]
    return match.group(1)


def test_japanese_by_default(client: TestClient) -> None:
    page = client.get("/portal", headers=HTML)
    assert page.status_code == 200
    assert html_lang(page.text) == "ja" and "<h1>住民ポータル</h1>" in page.text
    assert 'href="/portal?lang=en" lang="en" hreflang="en" id="lang-switch">English</a>' in page.text
    assert "kiban_lang" not in page.headers.get("set-cookie", "")
    assert "Accept-Language" in page.headers["vary"]


@pytest.mark.parametrize(("header", "expected"), [
    ("en-US,en;q=0.9", "en"),
    ("ja,en;q=0.8", "ja"),
    ("fr-FR,en;q=0.5,ja;q=0.4", "en"),
    ("en;q=0.2,ja;q=0.9", "ja"),
    ("fr,de", "ja"),  # neither offered
    ("en;q=0", "ja"),  # explicitly not wanted
    ("en;q=bogus", "ja"),
    ("", "ja"),
])
def test_accept_language(client: TestClient, header: str, expected: str) -> None:
    page = client.get("/portal", headers={**HTML, "Accept-Language": header})
    assert html_lang(page.text) == expected


def test_query_beats_cookie_beats_accept_language(client: TestClient) -> None:
    page = client.get("/portal?lang=en", headers={**HTML, "Accept-Language": "ja"})
    assert html_lang(page.text) == "en" and "<h1>Resident portal</h1>" in page.text
    assert 'href="/portal?lang=ja" lang="ja" hreflang="ja" id="lang-switch">日本語</a>' in page.text
    cookie = page.headers["set-cookie"]
    assert "kiban_lang=en" in cookie and "Path=/" in cookie and "samesite=lax" in cookie.lower()
    # the cookie (kept by the client) now decides, against the browser's preference
    again = client.get("/portal", headers={**HTML, "Accept-Language": "ja"})
    assert html_lang(again.text) == "en"
    assert "kiban_lang" not in again.headers.get("set-cookie", "")
    # ?lang wins over the cookie
    back = client.get("/portal?lang=ja", headers=HTML)
    assert html_lang(back.text) == "ja" and "kiban_lang=ja" in back.headers["set-cookie"]


@pytest.mark.parametrize("bad", ["fr", "EN", "en-US", "<script>", ""])
def test_unknown_language_is_ignored(client: TestClient, bad: str) -> None:
    page = client.get("/portal", params={"lang": bad}, headers=HTML)
    assert page.status_code == 200 and html_lang(page.text) == "ja"
    assert "kiban_lang" not in page.headers.get("set-cookie", "")
    client.cookies.set("kiban_lang", bad)
    assert html_lang(client.get("/portal", headers=HTML).text) == "ja"


def test_switch_link_keeps_the_other_parameters(client: TestClient) -> None:
    page = client.get("/portal?failed=state&lang=ja", headers=HTML)
    assert 'href="/portal?failed=state&amp;lang=en"' in page.text
    assert "ログインできませんでした(state)。" in page.text
    english = client.get("/portal?failed=state&lang=en", headers=HTML)
    assert "You could not be logged in (state)." in english.text


def test_staff_pages_stay_japanese(client: TestClient) -> None:
    page = client.get("/login?lang=en", headers={**HTML, "Accept-Language": "en"})
    assert html_lang(page.text) == "ja" and 'id="lang-switch"' not in page.text


def test_catalog_refuses_half_translated_messages() -> None:
    with pytest.raises(ValueError, match="no text for en"):
        i18n.register({"test.half": {"ja": "半分"}})
    assert "test.half" not in i18n.catalog()
    i18n.register({"test.greeting": {"ja": "{name} さん", "en": "Dear {name}"}})
    assert i18n.translate("test.greeting", "en", name="<b>") == "Dear <b>"  # the template escapes
    assert i18n.translate("test.greeting", "ja", name="山田") == "山田 さん"
    assert i18n.translate("test.missing", "en") == "test.missing"
