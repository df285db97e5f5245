"""和暦 (Japanese era) dates, for documents and pages only: storage is ISO."""

from __future__ import annotations

from datetime import date

# (first day, kanji name, initial) — newest first.
_ERAS: tuple[tuple[date, str, str], ...] = (
    (date(2019, 5, 1), "令和", "R"),
    (date(1989, 1, 8), "平成", "H"),
    (date(1926, 12, 25), "昭和", "S"),
    (date(1912, 7, 30), "大正", "T"),
    (date(1873, 1, 1), "明治", "M"),
)


def era_of(day: date) -> tuple[str, int]:
    """The era name and year within it (元年 is 1)."""
    for start, name, _ in _ERAS:
        if day >= start:
            return name, day.year - start.year + 1
    raise ValueError("dates before 1873 have no supported 和暦 form")


def to_wareki(day: date) -> str:
    """e.g. date(2019, 5, 1) -> '令和元年5月1日'."""
    name, year = era_of(day)
    year_text = "元" if year == 1 else str(year)
    return f"{name}{year_text}年{day.month}月{day.day}日"
