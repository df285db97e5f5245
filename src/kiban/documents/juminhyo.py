"""住民票の写し and 除票の写し as PDF (住民記録システム標準仕様書, 帳票).

A pure renderer: it takes the certificate as plain data (a dict, shape below) and returns PDF
bytes. It reads no database and knows nothing of the registry; the registry's service decides
what a certificate contains (which residents, which optional items were requested) and calls
:func:`render`.

Only the standard library, ReportLab and ``kiban.core`` are imported here. The Japanese font
is IPAex Gothic (IPA Font License), shipped by the ``japanize-matplotlib`` distribution; it is
located through that distribution's file list (matplotlib is never imported), registered once
per process and embedded, subset, in every PDF.

``cert`` shape (every date is a ``datetime.date``)::

    {
      "kind": "juminhyo" | "joshu" | "kisai_jiko",  # 写し | 除票の写し | 住民票記載事項証明書
      "form": "household" | "individual",  # 世帯連記式 | 個人票 (one page per person)
      "serial": "R8-000123",
      "issued_on": date,
      "municipality": {"name", "prefecture", "lgcode", "issuer_title", "issuer_name"},
      "address": str,
      "head_name": str,
      "options": {"head_and_relationship", "honseki", "juminhyo_code", "my_number"},  # bools
      "items": ["person.family_name", "address", ...],  # kisai_jiko: the only items printed
      "residents": [
        {"full_name", "full_kana", "birth_date", "sex" ("1" | "2"), "relationship",
         "resident_since", "address_since", "notified_on" (date | None), "previous_address",
         "honseki", "hittosha", "juminhyo_code", "my_number" (str | None), "former_surname",
         "removed_on" (date | None), "removal_reason",
         "foreign": None | {"nationality", "residence_status", "period", "expiry" (date),
                            "card_number", "alias", "category"}},
        ...
      ],
    }

A character the font lacks (外字) is refused with a ``ValueError`` rather than printed as an
empty box; variation selectors are dropped and the base character printed.

Items the resident did not ask for (世帯主・続柄, 本籍・筆頭者, 住民票コード, 個人番号) are
printed as their label with 「省略」, never with the value, so a reader sees that they were
omitted on request. Text that is too long for its box is shrunk, then wrapped; text that would
still not fit legibly is refused (``ValueError`` naming the field) rather than truncated.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import io
import pathlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from kiban.core.wareki import to_wareki

__all__ = ["font_path", "render"]

FONT_NAME = "IPAexGothic"
_FONT_DIST = "japanize-matplotlib"
_FONT_PACKAGE = "japanize_matplotlib"
_FONT_FILE = "ipaexg.ttf"

OMITTED = "省略"
TITLES = {"juminhyo": "住民票の写し", "joshu": "除票の写し", "kisai_jiko": "住民票記載事項証明書"}
STATEMENTS = {
    "juminhyo": "この写しは、住民票の原本と相違ないことを証明する。",
    "joshu": "この写しは、除票の原本と相違ないことを証明する。",
    "kisai_jiko": "上記の事項は、住民票に記載されていることを証明する。",
}
# 住民票記載事項証明書: item -> (label, key in the resident, is a date); "address" and
# "household.head" go in the household box. Nothing else is printed.
_PERSON_ITEMS: dict[str, tuple[str, str, bool]] = {
    "person.family_name": ("氏", "family_name", False),
    "person.given_name": ("名", "given_name", False),
    "person.family_kana": ("氏のフリガナ", "family_kana", False),
    "person.given_kana": ("名のフリガナ", "given_kana", False),
    "person.former_surname": ("旧氏", "former_surname", False),
    "person.birth_date": ("生年月日", "birth_date", True),
    "person.sex": ("性別", "sex", False),
    "person.relationship": ("続柄", "relationship", False),
    "person.resident_since": ("住民となった年月日", "resident_since", True),
    "person.address_since": ("住所を定めた年月日", "address_since", True),
    "person.notified_on": ("届出日", "notified_on", True),
    "person.previous_address": ("前住所", "previous_address", False),
    "person.honseki": ("本籍", "honseki", False),
    "person.hittosha": ("筆頭者", "hittosha", False),
    "person.juminhyo_code": ("住民票コード", "juminhyo_code", False),
    "person.nationality": ("国籍・地域", "foreign.nationality", False),
    "person.foreign_category": ("30条の45区分", "foreign.category", False),
    "person.residence_status": ("在留資格", "foreign.residence_status", False),
    "person.residence_period": ("在留期間", "foreign.period", False),
    "person.residence_expiry": ("在留期間の満了の日", "foreign.expiry", True),
    "person.residence_card_number": ("在留カード等の番号", "foreign.card_number", False),
    "person.alias": ("通称", "foreign.alias", False),
}
FORMS = ("household", "individual")
SEXES = {"1": "男", "2": "女"}

# --- geometry (points; A4 portrait) -------------------------------------------------------
PAGE_W, PAGE_H = A4
MARGIN = 12 * mm
CONTENT_W = PAGE_W - 2 * MARGIN
LABEL_W = 24 * mm  # shaded label column of every cell
PAD = 1.2 * mm  # inner horizontal padding of a text box
ROW_H = 5.5 * mm
NAME_ROW_H = 10 * mm
KANA_H = 3.4 * mm  # furigana strip at the top of the name cell
HEAD_ROW_H = 7 * mm  # 住所 / 世帯主 rows of the household box
BLOCK_GAP = 2.5 * mm  # between two persons
BODY_TOP = PAGE_H - MARGIN - 31 * mm
BODY_BOTTOM = MARGIN + 4 * mm
BODY_H = BODY_TOP - BODY_BOTTOM
TRAILER_H = 4 * mm  # 「以下余白」 under the last person
CERT_H = 30 * mm  # certifying statement, last page only
HALF = CONTENT_W / 2
WIDE = CONTENT_W * 2 / 3

# --- type sizes (pt) -----------------------------------------------------------------------
TITLE_SIZE = 16.0
LABEL_SIZE = 6.5
VALUE_SIZE = 8.5
NAME_SIZE = 11.0
KANA_SIZE = 6.0
SMALL_SIZE = 7.5
LEADING = 1.15
SHRINK_FLOOR = 0.75  # shrink a single line down to this share of its size before wrapping
MIN_SIZE = 4.0  # below this, text is refused rather than printed illegibly
_CENTRE = 0.36  # CJK glyphs sit from about -0.12 to 0.88 em around the baseline

_LABEL_FILL = 0.92
_RULE = 0.4
_FRAME = 0.8


# --- font -----------------------------------------------------------------------------------
def font_path() -> pathlib.Path:
    """The IPAex Gothic TrueType file shipped in the ``japanize_matplotlib`` package.

    Located without importing the package (which would import matplotlib): first from the
    package's location on the import path, then from the distribution's installed file list.
    """
    spec = importlib.util.find_spec(_FONT_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = pathlib.Path(folder) / "fonts" / _FONT_FILE
        if path.is_file():
            return path
    try:
        files = importlib.metadata.files(_FONT_DIST) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == _FONT_FILE:
            path = pathlib.Path(str(entry.locate())).resolve()
            if path.is_file():
                return path
    raise FileNotFoundError(f"{_FONT_FILE} not found: install {_FONT_DIST}, which ships it")


@functools.cache
def _font() -> frozenset[int]:
    """Register the font with ReportLab once per process; return the code points it has."""
    font = TTFont(FONT_NAME, str(font_path()))
    pdfmetrics.registerFont(font)
    return frozenset(font.face.charToGlyph)


# Ideographic variation selectors pick a glyph variant (異体字); the font has none, so the base
# character is printed.
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def _printable(text: str, field: str) -> str:
    """``text`` without variation selectors. A character the font cannot draw would print as an
    empty box, which on a certificate is a wrong certificate: it is refused instead (the
    message names code points only, no personal data)."""
    text = _VARIATION_SELECTORS.sub("", text)
    glyphs = _font()
    missing = sorted({ch for ch in text if ord(ch) not in glyphs})
    if missing:
        points = " ".join(f"U+{ord(ch):04X}" for ch in missing)
        raise _invalid(field or "cert", f"has characters the font cannot print ({points})")
    return text


# --- layout model -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Cell:
    label: str
    value: str
    width: float
    field: str = ""  # where the value came from, for error messages
    kana: str | None = None  # furigana drawn above the value (the name cell only)
    size: float = VALUE_SIZE


@dataclass(frozen=True, slots=True)
class _Row:
    height: float
    cells: tuple[_Cell, ...]


_Block = tuple[_Row, ...]


def _height(block: _Block) -> float:
    return sum(row.height for row in block)


def _invalid(field: str, problem: str) -> ValueError:
    """Bad input. A ValueError naming the field; the calling service turns it into its own
    error type (``kiban.core.errors``), which this pure renderer does not depend on."""
    return ValueError(f"{field} {problem}")


# --- text fitting -----------------------------------------------------------------------------
def _width(text: str, size: float) -> float:
    return float(pdfmetrics.stringWidth(text, FONT_NAME, size))


def _wrap(text: str, width: float, size: float) -> list[str]:
    """Greedy wrap, per character (Japanese has no spaces); Latin words break at a space when
    one is on the line."""
    lines: list[str] = []
    line = ""
    line_w = 0.0
    for ch in text:
        ch_w = _width(ch, size)
        if line and line_w + ch_w > width:
            cut = line.rfind(" ")
            if ch != " " and line[-1:] != " " and cut > 0 and line[cut - 1 : cut].isascii():
                lines.append(line[:cut])
                line = line[cut + 1 :]
            else:
                lines.append(line.rstrip(" "))
                line = ""
            if ch == " " and not line:
                line_w = 0.0
                continue
            line_w = _width(line, size)
            if line and line_w + ch_w > width:
                # The word carried over from a break at a space is itself too long to take
                # this character: break it per character.
                lines.append(line)
                line, line_w = "", 0.0
        line += ch
        line_w += ch_w
    if line or not lines:
        lines.append(line)
    return lines


def _fit(
    text: str, width: float, height: float, size: float, field: str
) -> tuple[float, list[str]]:
    """The type size and lines that put ``text`` inside a ``width`` x ``height`` box: the
    given size if it fits, else one shrunk line, else wrapped lines at the largest size that
    fits. Raises ``ValueError`` if even ``MIN_SIZE`` will not do."""
    full = _width(text, size)
    if not text or (full <= width and size * LEADING <= height):
        return size, [text]
    if full > 0:
        shrunk = int(size * width / full * 10) / 10  # round down to 0.1 pt
        if shrunk >= max(size * SHRINK_FLOOR, MIN_SIZE) and shrunk * LEADING <= height:
            return shrunk, [text]
    trial = min(size, height / LEADING)
    while trial >= MIN_SIZE:
        lines = _wrap(text, width, trial)
        if len(lines) * trial * LEADING <= height:
            return trial, lines
        trial -= 0.25
    raise _invalid(field or "cert", "is too long to fit its box on the certificate")


def _text(
    c: Canvas, text: str, x: float, y: float, w: float, h: float, size: float,
    field: str = "", align: str = "left",
) -> None:
    """Draw ``text`` fitted into the box (x, y, w, h), vertically centred."""
    text = _printable(text, field)
    if not text:
        return
    inner = w - 2 * PAD
    size, lines = _fit(text, inner, h, size, field)
    step = size * LEADING
    first = y + h / 2 + (len(lines) - 1) * step / 2 - _CENTRE * size
    c.setFont(FONT_NAME, size)
    for i, line in enumerate(lines):
        base = first - i * step
        if align == "center":
            c.drawCentredString(x + w / 2, base, line)
        elif align == "right":
            c.drawRightString(x + w - PAD, base, line)
        else:
            c.drawString(x + PAD, base, line)


# --- content ----------------------------------------------------------------------------------
def _wareki(value: date | None) -> str:
    return to_wareki(value) if value is not None else ""


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _requested(cert: Mapping[str, Any], index: int) -> _Block:
    """A 記載事項証明書 entry: the requested items only, one row each, in the order asked."""
    r: Mapping[str, Any] = cert["residents"][index]
    rows = []
    for item in cert.get("items") or []:
        if item in ("address", "household.head"):
            continue
        if item not in _PERSON_ITEMS:
            raise _invalid("items", f"has an item that cannot be certified ({item})")
        label, key, is_date = _PERSON_ITEMS[item]
        value: Any = r
        for part in key.split("."):
            value = (value or {}).get(part)
        text = _wareki(value) if is_date else (
            SEXES.get(_s(value), "") if key == "sex" else _s(value))
        rows.append(_Row(ROW_H, (_Cell(label, text, CONTENT_W, f"residents[{index}].{key}"),)))
    return tuple(rows)


def _person(cert: Mapping[str, Any], index: int) -> _Block:
    """The rows of one person's entry."""
    if cert["kind"] == "kisai_jiko":
        return _requested(cert, index)
    options = cert.get("options") or {}
    r: Mapping[str, Any] = cert["residents"][index]
    at = f"residents[{index}]"
    sex = SEXES.get(_s(r.get("sex")))
    if sex is None:
        raise _invalid(f"{at}.sex", "must be '1' (男) or '2' (女)")

    def pair(a: tuple[str, str, str], b: tuple[str, str, str], first: float = HALF) -> _Row:
        return _Row(ROW_H, (
            _Cell(a[0], a[1], first, f"{at}.{a[2]}"),
            _Cell(b[0], b[1], CONTENT_W - first, f"{at}.{b[2]}"),
        ))

    def wide(label: str, value: str, key: str) -> _Row:
        return _Row(ROW_H, (_Cell(label, value, CONTENT_W, f"{at}.{key}"),))

    rows = [
        _Row(NAME_ROW_H, (
            _Cell("氏名", _s(r.get("full_name")), WIDE, f"{at}.full_name",
                  kana=_s(r.get("full_kana")), size=NAME_SIZE),
            _Cell("性別", sex, CONTENT_W - WIDE, f"{at}.sex"),
        )),
        pair(
            ("生年月日", _wareki(r.get("birth_date")), "birth_date"),
            ("続柄", _s(r.get("relationship")) if options.get("head_and_relationship")
             else OMITTED, "relationship"),
        ),
    ]
    former = _s(r.get("former_surname"))
    rows += [
        pair(
            ("旧氏" if former else "", former, "former_surname"),
            ("住民となった年月日", _wareki(r.get("resident_since")), "resident_since"),
        ),
        pair(
            ("住所を定めた年月日", _wareki(r.get("address_since")), "address_since"),
            ("届出日", _wareki(r.get("notified_on")), "notified_on"),
        ),
        wide("前住所", _s(r.get("previous_address")), "previous_address"),
    ]
    foreign: Mapping[str, Any] | None = r.get("foreign")
    if foreign:
        rows += [
            pair(("国籍・地域", _s(foreign.get("nationality")), "foreign.nationality"),
                 ("在留資格", _s(foreign.get("residence_status")), "foreign.residence_status")),
            pair(("在留期間", _s(foreign.get("period")), "foreign.period"),
                 ("在留期間の満了の日", _wareki(foreign.get("expiry")), "foreign.expiry")),
            pair(("在留カード等の番号", _s(foreign.get("card_number")), "foreign.card_number"),
                 ("30条の45区分", _s(foreign.get("category")), "foreign.category")),
            wide("通称", _s(foreign.get("alias")), "foreign.alias"),
        ]
    elif options.get("honseki"):
        rows.append(pair(("本籍", _s(r.get("honseki")), "honseki"),
                         ("筆頭者", _s(r.get("hittosha")), "hittosha"), WIDE))
    else:
        rows.append(pair(("本籍", OMITTED, "honseki"), ("筆頭者", OMITTED, "hittosha"), WIDE))
    rows.append(pair(
        ("住民票コード", _s(r.get("juminhyo_code")) if options.get("juminhyo_code") else OMITTED,
         "juminhyo_code"),
        ("個人番号", _s(r.get("my_number")) if options.get("my_number") else OMITTED,
         "my_number"),
    ))
    if cert["kind"] == "joshu":
        rows.append(pair(("消除日", _wareki(r.get("removed_on")), "removed_on"),
                         ("事由", _s(r.get("removal_reason")), "removal_reason")))
    return tuple(rows)


def _household_box(cert: Mapping[str, Any]) -> _Block:
    if cert["kind"] == "kisai_jiko":  # the address and the head only if requested
        items = cert.get("items") or []
        return tuple(row for row, item in (
            (_Row(HEAD_ROW_H, (_Cell("住所", _s(cert.get("address")), CONTENT_W, "address"),)),
             "address"),
            (_Row(HEAD_ROW_H, (_Cell("世帯主", _s(cert.get("head_name")), CONTENT_W,
                                     "head_name"),)), "household.head")) if item in items)
    options = cert.get("options") or {}
    head = _s(cert.get("head_name")) if options.get("head_and_relationship") else OMITTED
    return (
        _Row(HEAD_ROW_H, (_Cell("住所", _s(cert.get("address")), CONTENT_W, "address"),)),
        _Row(HEAD_ROW_H, (_Cell("世帯主", head, CONTENT_W, "head_name"),)),
    )


def _paginate(cert: Mapping[str, Any], blocks: Sequence[_Block]) -> list[list[int]]:
    """Which persons go on which page. 世帯連記式 fills each page; the last page must also
    hold 「以下余白」 and the certifying statement, so if it cannot, its last person moves to
    a page of their own."""
    if cert["form"] == "individual":
        return [[i] for i in range(len(blocks))]
    pages: list[list[int]] = [[]]
    used = 0.0
    for i, block in enumerate(blocks):
        need = _height(block) + (BLOCK_GAP if pages[-1] else 0.0)
        if pages[-1] and used + need > BODY_H:
            pages.append([])
            used, need = 0.0, _height(block)
        pages[-1].append(i)
        used += need
    if used + TRAILER_H + CERT_H > BODY_H and len(pages[-1]) > 1:
        pages.append([pages[-1].pop()])
    return pages


# --- drawing ----------------------------------------------------------------------------------
def _draw_rows(c: Canvas, rows: Sequence[_Row], top: float) -> float:
    """Draw a framed grid of labelled cells from ``top`` down; return its bottom."""
    if not rows:  # a 記載事項証明書 without the items of this grid
        return top
    y = top
    for row in rows:
        y -= row.height
        x = MARGIN
        for cell in row.cells:
            c.setFillGray(_LABEL_FILL)
            c.rect(x, y, LABEL_W, row.height, stroke=0, fill=1)
            c.setFillGray(0)
            c.rect(x, y, cell.width, row.height, stroke=1, fill=0)
            c.line(x + LABEL_W, y, x + LABEL_W, y + row.height)
            if cell.kana is not None:
                _text(c, "フリガナ", x, y + row.height - KANA_H, LABEL_W, KANA_H, KANA_SIZE)
                _text(c, cell.label, x, y, LABEL_W, row.height - KANA_H, LABEL_SIZE)
                vx, vw = x + LABEL_W, cell.width - LABEL_W
                _text(c, cell.kana, vx, y + row.height - KANA_H, vw, KANA_H, KANA_SIZE,
                      cell.field.replace("full_name", "full_kana"))
                _text(c, cell.value, vx, y, vw, row.height - KANA_H, cell.size, cell.field)
            else:
                _text(c, cell.label, x, y, LABEL_W, row.height, LABEL_SIZE)
                _text(c, cell.value, x + LABEL_W, y, cell.width - LABEL_W, row.height,
                      cell.size, cell.field)
            x += cell.width
    c.setLineWidth(_FRAME)
    c.rect(MARGIN, y, CONTENT_W, top - y, stroke=1, fill=0)
    c.setLineWidth(_RULE)
    return y


def _draw_page(c: Canvas, cert: Mapping[str, Any], number: int, total: int) -> None:
    """Title, serial and page number, the household box, and the footer."""
    serial = _s(cert.get("serial"))
    top = PAGE_H - MARGIN
    _text(c, f"証明書番号 {serial}", MARGIN, top - 4 * mm, CONTENT_W / 2, 4 * mm, SMALL_SIZE,
          "serial")
    _text(c, f"{number} / {total} 頁", PAGE_W / 2, top - 4 * mm, CONTENT_W / 2, 4 * mm,
          SMALL_SIZE, align="right")
    _text(c, TITLES[cert["kind"]], MARGIN, top - 12 * mm, CONTENT_W, 8 * mm, TITLE_SIZE,
          align="center")
    _draw_rows(c, _household_box(cert), top - 14 * mm)
    lgcode = _s((cert.get("municipality") or {}).get("lgcode"))
    _text(c, f"地方公共団体コード {lgcode}　証明書番号 {serial}", MARGIN, MARGIN - 1 * mm,
          CONTENT_W, 4 * mm, 6.0, align="right")


def _draw_certification(c: Canvas, cert: Mapping[str, Any]) -> None:
    m: Mapping[str, Any] = cert.get("municipality") or {}
    y = BODY_BOTTOM
    issuer = f"{_s(m.get('issuer_title'))} {_s(m.get('issuer_name'))}".strip()
    place = f"{_s(m.get('prefecture'))}{_s(m.get('name'))}"
    x = MARGIN + 10 * mm
    w = CONTENT_W - 20 * mm
    _text(c, STATEMENTS[cert["kind"]], x, y + 21 * mm, w, 7 * mm, 10.5, "kind")
    _text(c, _wareki(cert["issued_on"]), x, y + 14 * mm, w, 6 * mm, 10.0, "issued_on")
    _text(c, f"{place}　{issuer}", x, y + 7 * mm, w, 7 * mm, 12.0, "municipality",
          align="right")


def _check(cert: Mapping[str, Any]) -> None:
    if cert.get("kind") not in TITLES:
        raise _invalid("kind", "must be 'juminhyo', 'joshu' or 'kisai_jiko'")
    if cert["kind"] == "kisai_jiko" and not cert.get("items"):
        raise _invalid("items", "must list the items to certify")
    if cert.get("form") not in FORMS:
        raise _invalid("form", "must be 'household' or 'individual'")
    if not cert.get("residents"):
        raise _invalid("residents", "must list at least one resident")
    if not isinstance(cert.get("issued_on"), date):
        raise _invalid("issued_on", "must be a date")


def render(cert: Mapping[str, Any]) -> bytes:
    """The 住民票の写し, 除票の写し or 住民票記載事項証明書 described by ``cert``, as PDF bytes
    (A4 portrait)."""
    _check(cert)
    _font()
    blocks = [_person(cert, i) for i in range(len(cert["residents"]))]
    pages = _paginate(cert, blocks)
    out = io.BytesIO()
    c = Canvas(out, pagesize=A4, pageCompression=1, initialFontName=FONT_NAME)
    title = TITLES[cert["kind"]]
    c.setTitle(title)
    m = cert.get("municipality") or {}
    c.setAuthor(f"{_s(m.get('prefecture'))}{_s(m.get('name'))}")
    c.setSubject(f"{title} {_s(cert.get('serial'))}")
    c.setCreator("Kiban")
    for number, members in enumerate(pages, start=1):
        c.setLineWidth(_RULE)
        _draw_page(c, cert, number, len(pages))
        y = BODY_TOP
        for i in members:
            y = _draw_rows(c, blocks[i], y) - BLOCK_GAP
        last = number == len(pages)
        if last or cert["form"] == "individual":  # each 個人票 is closed off
            _text(c, "以下余白", MARGIN, y + BLOCK_GAP - TRAILER_H, CONTENT_W, TRAILER_H,
                  SMALL_SIZE, align="right")
        if last:
            _draw_certification(c, cert)
        c.showPage()
    c.save()
    return out.getvalue()
