"""Japanese text normalisation: names are stored NFC with variation selectors kept;
kana searches compare a folded form."""

from __future__ import annotations

import re
import unicodedata

import jaconv

_SPACES = str.maketrans({"\u3000": " ", "\t": " "})


def to_nfc(text: str) -> str:
    """NFC keeps ideographic variation selectors (U+E0100..) that distinguish 異体字."""
    return unicodedata.normalize("NFC", text)


def clean_name(text: str) -> str:
    """A name as stored: NFC, full-width spaces folded, outer space trimmed, runs collapsed."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.translate(_SPACES).split())


def fold_kana(text: str) -> str:
    """The search key of a reading: full-width katakana, no spaces, small kana and
    voicing kept (ヨシダ and ヨシタ stay distinct), so a query and a stored name meet."""
    folded = unicodedata.normalize("NFKC", text)  # half-width kana -> full-width
    folded = jaconv.hira2kata(folded)
    return "".join(folded.split())


def fold_kanji(text: str) -> str:
    """The search key of a kanji name: NFKC, no spaces, variation selectors dropped so a
    query typed without them still finds 髙橋󠄀 by 髙橋."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(
        ch for ch in folded if not ("\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef")
    ).replace(" ", "")


_KATAKANA_LINE = re.compile(r"[\u30a0-\u30ff\u3000 ]+")


def is_kana_reading(text: str) -> bool:
    """Readings (フリガナ) are katakana or hiragana, with spaces and the long-vowel mark."""
    if _KATAKANA_LINE.fullmatch(text):  # the common case, stored form: no folding needed
        return bool(text.strip(" \u3000"))
    folded = fold_kana(text)
    return bool(folded) and all(
        "\u30a0" <= ch <= "\u30ff" or ch in "ー・" for ch in folded
    )
