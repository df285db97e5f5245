"""Check digits of the codes that identify municipalities and residents.

- 地方公共団体コード: 5 digits + 1 check digit, weights 6..2, modulus 11, last digit of 11 - r
  (総務省「全国地方公共団体コード」仕様).
- 住民票コード: 10 digits + 1 check digit (住民基本台帳法施行規則 第1条).
- 個人番号: 11 digits + 1 check digit (行政手続における特定の個人を識別するための番号の利用等に
  関する法律施行令 第8条, 総務省令第85号 第5条).

The last two share one modulus-11 rule: weights n+1 for the n-th digit from the right (n <= 6),
n-5 beyond; a remainder of 0 or 1 gives 0.
"""

from __future__ import annotations


def _is_digits(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


def lgcode_check_digit(first_five: str) -> int:
    if not _is_digits(first_five, 5):
        raise ValueError("a 地方公共団体コード body is 5 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first_five, (6, 5, 4, 3, 2), strict=True))
    return (11 - total % 11) % 10


def is_valid_lgcode(code: str) -> bool:
    """True for a 6-digit 地方公共団体コード whose last digit is its check digit."""
    return _is_digits(code, 6) and lgcode_check_digit(code[:5]) == int(code[5])


# Weight of each digit counted from the left, for bodies of 10 and 11 digits: n+1 for the
# n-th digit from the right (n <= 6), n-5 beyond.
_WEIGHTS = {length: tuple((n + 1 if n <= 6 else n - 5) for n in range(length, 0, -1))
            for length in (10, 11)}


def _mod11_right_weighted(body: str) -> int:
    total = sum(w * d for w, d in zip(_WEIGHTS[len(body)], body.encode(), strict=True))
    total -= 48 * sum(_WEIGHTS[len(body)])  # ASCII '0' is 48: subtract once, not per digit
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def juminhyo_code_check_digit(first_ten: str) -> int:
    if not _is_digits(first_ten, 10):
        raise ValueError("a 住民票コード body is 10 ASCII digits")
    return _mod11_right_weighted(first_ten)


def is_valid_juminhyo_code(code: str) -> bool:
    return _is_digits(code, 11) and juminhyo_code_check_digit(code[:10]) == int(code[10])


def my_number_check_digit(first_eleven: str) -> int:
    if not _is_digits(first_eleven, 11):
        raise ValueError("a 個人番号 body is 11 ASCII digits")
    return _mod11_right_weighted(first_eleven)


def is_valid_my_number(number: str) -> bool:
    return _is_digits(number, 12) and my_number_check_digit(number[:11]) == int(number[11])


def with_check_digit(body: str, kind: str) -> str:
    """Append the check digit of `kind` ('lgcode', 'juminhyo', 'my_number') to `body`."""
    compute = {
        "lgcode": lgcode_check_digit,
        "juminhyo": juminhyo_code_check_digit,
        "my_number": my_number_check_digit,
    }[kind]
    return f"{body}{compute(body)}"
