"""Page languages for what residents see (the portal, its procedures, the public pages):
Japanese and English.

The language of a request is, in order: `?lang=ja|en` (and the switch link on every page sets
it), the `kiban_lang` cookie (set when `?lang` was given, so the choice sticks across pages),
the browser's Accept-Language, else Japanese. Staff pages stay Japanese.

A page opts in by rendering through `i18n.render` (or by adding `**i18n.context(request)` to
its template context). The template then has `lang` (for `<html lang>`, set by base.html),
`t(key, **params)` for catalog messages, `tr(ja, en)` for one-off text, and `lang_switch` (the
link to the other language that base.html shows). Packages add their messages with
`i18n.register({...})` at import time; keys are dotted, prefixed with the package
("portal.title", "procedures.submit").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from kiban.web.pages import render as render_page

LANGS = ("ja", "en")
DEFAULT = "ja"
COOKIE = "kiban_lang"
COOKIE_TTL = 365 * 24 * 3600
NAMES = {"ja": "日本語", "en": "English"}

_CATALOG: dict[str, dict[str, str]] = {}


def register(messages: Mapping[str, Mapping[str, str]]) -> None:
    """Adds messages ({key: {"ja": ..., "en": ...}}); both languages are required."""
    for key, texts in messages.items():
        missing = [lang for lang in LANGS if not texts.get(lang)]
        if missing:
            raise ValueError(f"message {key!r} has no text for {', '.join(missing)}")
        _CATALOG[key] = dict(texts)


def catalog() -> Mapping[str, Mapping[str, str]]:
    return _CATALOG


def translate(key: str, lang: str, **params: Any) -> str:
    """The message in `lang`; an unknown key is returned as itself (visible, never a crash)."""
    texts = _CATALOG.get(key)
    if texts is None:
        return key
    text = texts.get(lang) or texts[DEFAULT]
    return text.format(**params) if params else text


def _accept_language(header: str) -> str | None:
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(header.split(",")):
        tag, _, rest = part.strip().partition(";")
        q = 1.0
        if rest.strip().startswith("q="):
            try:
                q = float(rest.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGS and q > 0 and (best is None or (q, -position) > (best[0], best[1])):
            best = (q, -position, primary)
    return best[2] if best else None


def negotiate(request: Request) -> str:
    asked = request.query_params.get("lang", "")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(COOKIE, "")
    if kept in LANGS:
        return kept
    return _accept_language(request.headers.get("accept-language", "")) or DEFAULT


def switch_url(request: Request, lang: str) -> str:
    """The current page (its other query parameters kept) in `lang`."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return f"{request.url.path}?{urlencode([*query, ('lang', lang)])}"


def context(request: Request) -> dict[str, Any]:
    lang = negotiate(request)
    other = "en" if lang == "ja" else "ja"

    def t(key: str, **params: Any) -> str:
        return translate(key, lang, **params)

    def tr(ja: str, en: str) -> str:
        return en if lang == "en" else ja

    ctx: dict[str, Any] = {"lang": lang, "t": t, "tr": tr,
                           "lang_switch": {"href": switch_url(request, other), "lang": other, "label": NAMES[other]}}
    if request.url.path.startswith(("/portal", "/oidc/")):
        ctx["home_url"] = "/portal"  # the brand link takes a resident home, not to the staff console
    return ctx


def remember(request: Request, response: Response) -> Response:
    """Keeps a language chosen with ?lang in a cookie, and tells caches that the page depends
    on Accept-Language and the cookie."""
    response.headers.append("Vary", "Accept-Language, Cookie")
    asked = request.query_params.get("lang", "")
    if asked in LANGS and request.cookies.get(COOKIE) != asked:
        response.set_cookie(COOKIE, asked, max_age=COOKIE_TTL, httponly=True, samesite="lax", path="/",
                            secure=request.url.scheme == "https")
    return response


def render(request: Request, name: str, session: Any = None, status: int = 200, **ctx: Any) -> Response:
    """kiban.web.pages.render with the language context, remembering a ?lang choice."""
    response = render_page(request, name, session, status=status, **{**context(request), **ctx})
    return remember(request, response)


register({
    "common.skip": {"ja": "本文へ移動", "en": "Skip to main content"},
    "common.language": {"ja": "言語", "en": "Language"},
    "common.footer": {"ja": "Kiban — 地方公共団体情報システム標準準拠の共同利用基盤",
                      "en": "Kiban — the shared platform of Japanese municipalities"},
})
