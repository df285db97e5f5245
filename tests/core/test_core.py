"""Pure helpers: check digits (property-based), 和暦, kana folding."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from kiban.core.checkdigits import (
    is_valid_juminhyo_code,
    is_valid_lgcode,
    is_valid_my_number,
    with_check_digit,
)
from kiban.core.text import clean_name, fold_kana, fold_kanji, is_kana_reading
from kiban.core.wareki import to_wareki

digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def test_known_lgcodes() -> None:
    for code in ("011002", "131016", "141003", "271004", "472018"):
        assert is_valid_lgcode(code), code
    assert not is_valid_lgcode("131015")
    assert not is_valid_lgcode("13101")
    assert not is_valid_lgcode("１３１０１６")  # full-width digits are not a code


def test_known_my_number() -> None:
    assert is_valid_my_number("123456789018")
    assert not is_valid_my_number("123456789012")


@given(st.text(alphabet="0123456789", min_size=5, max_size=5))
def test_lgcode_check_digit_round_trip(body: str) -> None:
    assert is_valid_lgcode(with_check_digit(body, "lgcode"))


@given(st.text(alphabet="0123456789", min_size=10, max_size=10), st.integers(0, 10),
       st.integers(1, 9))
def test_juminhyo_code_detects_single_digit_errors(body: str, pos: int, delta: int) -> None:
    code = with_check_digit(body, "juminhyo")
    assert is_valid_juminhyo_code(code)
    wrong = code[:pos] + str((int(code[pos]) + delta) % 10) + code[pos + 1:]
    # Weights 2..7 are prime to 11, so a changed body digit always changes the remainder;
    # only remainders 0 and 1 share the check digit 0, so that case may go unseen.
    if pos == 10 or code[-1] != "0":
        assert not is_valid_juminhyo_code(wrong)


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_my_number_round_trip(body: str) -> None:
    assert is_valid_my_number(with_check_digit(body, "my_number"))


def test_wareki() -> None:
    assert to_wareki(date(2019, 5, 1)) == "令和元年5月1日"
    assert to_wareki(date(2019, 4, 30)) == "平成31年4月30日"
    assert to_wareki(date(1989, 1, 7)) == "昭和64年1月7日"
    assert to_wareki(date(2026, 11, 26)) == "令和8年11月26日"


def test_kana_folding_meets_queries_and_stored_names() -> None:
    assert fold_kana("やまだ たろう") == fold_kana("ヤマダ　タロウ") == fold_kana("ﾔﾏﾀﾞ ﾀﾛｳ")
    assert fold_kana("ヨシダ") != fold_kana("ヨシタ")
    assert is_kana_reading("ヤマダ ハナコ") and not is_kana_reading("Yamada")


def test_names_keep_variation_selectors_but_search_ignores_them() -> None:
    name = "葛\U000e0100飾"
    assert clean_name(name) == name
    assert fold_kanji(name) == "葛飾"
    assert clean_name("  山田\u3000 太郎 ") == "山田 太郎"
