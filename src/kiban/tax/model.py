"""Pure part of the resident tax: municipal options (市町村の税率・級地・条例) and their legal
bounds, fiscal-year labels. Standard library and kiban.core only.

Legal bases:
- 所得割 standard rates: 地方税法 第314条の3 (市町村民税 6%) and 第35条 (道府県民税 4%);
  指定都市: 第314条の3 第2項 (8%) and 第37条の2 … 第35条 第2項 (2%). No 制限税率 exists for
  所得割 since 平成16年; a rate other than the standard one needs an ordinance (条例).
- 均等割 standard amounts: 第310条 (市町村 3,000) and 第38条 (道府県 1,000); other amounts by
  ordinance only.
- 級地 (生活保護法による級地) sets the 均等割 非課税限度額: 地方税法施行令 第47条の3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, InvalidOperation

from kiban.core.errors import FieldError, ValidationFailed, invalid

SUPPORTED_FISCAL_YEARS = (2024, 2025, 2026)  # 令和6年度 … 令和8年度
GRADES = ("1", "2", "3")
# The 20 指定都市 (地方自治法 第252条の19) by 地方公共団体コード: their default is designated.
DESIGNATED_CITIES = frozenset({
    "011002", "041009", "111007", "121002", "141003", "141305", "141500", "151009", "221007",
    "221309", "231002", "261009", "271004", "271403", "281000", "331007", "341002", "401005",
    "401307", "431001"})
_RATE = re.compile(r"^\d{1,2}(\.\d{1,3})?$")
_REIWA = re.compile(r"^R(\d{1,2})$")


@dataclass(frozen=True)
class Ordinance:
    """The 条例 that lays down a non-standard rate or amount."""

    name: str
    promulgated_on: date


@dataclass(frozen=True)
class MunicipalOptions:
    """What a municipality may set (and nothing else): 級地, 指定都市, and by ordinance the
    所得割 rates (percent, up to 3 decimals: "4.025") and the 均等割 amounts (yen)."""

    grade: str = "1"
    designated_city: bool = False
    municipal_income_rate: Decimal = Decimal("6")
    prefectural_income_rate: Decimal = Decimal("4")
    municipal_per_capita: int = 3000
    prefectural_per_capita: int = 1000
    ordinance: Ordinance | None = None

    @staticmethod
    def standard(designated_city: bool = False, grade: str = "1") -> MunicipalOptions:
        """The statutory rates for this kind of municipality (no ordinance)."""
        municipal, prefectural = standard_income_rates(designated_city)
        return MunicipalOptions(grade=grade, designated_city=designated_city,
                                municipal_income_rate=municipal,
                                prefectural_income_rate=prefectural)

    def with_grade(self, grade: str) -> MunicipalOptions:
        return replace(self, grade=grade)

    def as_json(self, fiscal_year: int) -> dict[str, object]:
        return {"fiscal_year": fiscal_year, "grade": self.grade,
                "designated_city": self.designated_city,
                "municipal_income_rate": format_rate(self.municipal_income_rate),
                "prefectural_income_rate": format_rate(self.prefectural_income_rate),
                "municipal_per_capita": self.municipal_per_capita,
                "prefectural_per_capita": self.prefectural_per_capita,
                "ordinance": None if self.ordinance is None else {
                    "name": self.ordinance.name,
                    "promulgated_on": self.ordinance.promulgated_on.isoformat()}}


def standard_income_rates(designated_city: bool) -> tuple[Decimal, Decimal]:
    """地方税法 第314条の3 / 第35条: 6% + 4%; in a 指定都市 8% + 2%."""
    return (Decimal("8"), Decimal("2")) if designated_city else (Decimal("6"), Decimal("4"))


def format_rate(rate: Decimal) -> str:
    text = format(rate.normalize(), "f")
    return text


def default_options(lgcode: str) -> MunicipalOptions:
    return MunicipalOptions.standard(designated_city=lgcode in DESIGNATED_CITIES)


def fiscal_year_label(fiscal_year: int) -> str:
    return f"令和{fiscal_year - 2018}年度"


def parse_fiscal_year(value: object, field_name: str = "fiscal_year") -> int:
    """2025 or "R7" (令和7年度) or "2025"; only the supported years."""
    year: int | None = None
    if isinstance(value, bool):
        year = None
    elif isinstance(value, int):
        year = value
    elif isinstance(value, str):
        if value.isdigit() and len(value) == 4:
            year = int(value)
        elif match := _REIWA.match(value):
            year = 2018 + int(match.group(1))
    if year not in SUPPORTED_FISCAL_YEARS:
        supported = ", ".join(f"{y} (R{y - 2018})" for y in SUPPORTED_FISCAL_YEARS)
        raise invalid(field_name, f"課税年度は {supported} のいずれかです。",
                      f"fiscal_year must be one of {supported}.")
    assert year is not None
    return year


def parse_grade(value: object, field_name: str = "grade") -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value not in GRADES:
        raise invalid(field_name, "級地は 1, 2, 3 のいずれかです。", "grade must be 1, 2 or 3.")
    assert isinstance(value, str)
    return value


def parse_rate(value: object, field_name: str) -> Decimal:
    """A percentage as a decimal string (or number): 0 ≤ rate < 100, at most 3 decimals."""
    text = str(value) if isinstance(value, (int, float, Decimal, str)) and not isinstance(
        value, bool) else ""
    if not _RATE.match(text):
        raise invalid(field_name, "税率は 0 以上 100 未満の百分率(小数点以下3桁まで)です。",
                      f"{field_name} must be a percentage 0 ≤ r < 100 with ≤ 3 decimals.")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        raise invalid(field_name, "税率が不正です。", f"{field_name} is not a number.") from None


def parse_per_capita(value: object, field_name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100_000:
        raise invalid(field_name, "均等割額は 0 以上 100,000 以下の整数(円)です。",
                      f"{field_name} must be whole yen from 0 to 100,000.")
    return value


SETTINGS_FIELDS = ("fiscal_year", "grade", "designated_city", "municipal_income_rate",
                   "prefectural_income_rate", "municipal_per_capita", "prefectural_per_capita",
                   "ordinance")


def apply_settings(current: MunicipalOptions, changes: dict[str, object],
                   fiscal_year: int) -> MunicipalOptions:
    """The settings after a PUT: unknown fields are refused (rounding, 非課税限度額 … are the
    law's, not a municipality's); rates and amounts other than the statutory ones need an
    ordinance naming its 条例 and promulgation date."""
    errors: list[FieldError] = []
    for key in changes:
        if key not in SETTINGS_FIELDS:
            errors.append(FieldError(key, f"設定できない項目です: {key}",
                                     f"{key} is not a municipal setting."))
    if errors:
        raise ValidationFailed(errors)
    if "fiscal_year" in changes and parse_fiscal_year(changes["fiscal_year"]) != fiscal_year:
        raise invalid("fiscal_year", "URL の課税年度と一致しません。",
                      "fiscal_year differs from the one in the path.")
    grade = parse_grade(changes["grade"]) if "grade" in changes else current.grade
    designated = current.designated_city
    if "designated_city" in changes:
        if not isinstance(changes["designated_city"], bool):
            raise invalid("designated_city", "指定都市は true か false です。",
                          "designated_city must be true or false.")
        designated = changes["designated_city"]
    ordinance = current.ordinance
    if "ordinance" in changes:
        ordinance = _parse_ordinance(changes["ordinance"])
    std_municipal, std_prefectural = standard_income_rates(designated)
    municipal = (parse_rate(changes["municipal_income_rate"], "municipal_income_rate")
                 if "municipal_income_rate" in changes else
                 current.municipal_income_rate if current.ordinance else std_municipal)
    prefectural = (parse_rate(changes["prefectural_income_rate"], "prefectural_income_rate")
                   if "prefectural_income_rate" in changes else
                   current.prefectural_income_rate if current.ordinance else std_prefectural)
    muni_pc = (parse_per_capita(changes["municipal_per_capita"], "municipal_per_capita")
               if "municipal_per_capita" in changes else current.municipal_per_capita)
    pref_pc = (parse_per_capita(changes["prefectural_per_capita"], "prefectural_per_capita")
               if "prefectural_per_capita" in changes else current.prefectural_per_capita)
    non_standard = (municipal != std_municipal or prefectural != std_prefectural
                    or muni_pc != 3000 or pref_pc != 1000)
    if non_standard and ordinance is None:
        raise invalid("ordinance", "標準税率以外の税率・均等割額には条例(名称と公布日)が必要です。",
                      "A non-standard rate or amount needs an ordinance (name and date).")
    return MunicipalOptions(grade=grade, designated_city=designated,
                            municipal_income_rate=municipal, prefectural_income_rate=prefectural,
                            municipal_per_capita=muni_pc, prefectural_per_capita=pref_pc,
                            ordinance=ordinance)


def _parse_ordinance(value: object) -> Ordinance | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"name", "promulgated_on"}:
        raise invalid("ordinance", "条例は {name, promulgated_on} で指定します。",
                      "ordinance must be {name, promulgated_on}.")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise invalid("ordinance.name", "条例の名称を入力してください。",
                      "ordinance.name is required.")
    try:
        promulgated = date.fromisoformat(str(value.get("promulgated_on")))
    except ValueError:
        raise invalid("ordinance.promulgated_on", "公布日は YYYY-MM-DD です。",
                      "ordinance.promulgated_on must be YYYY-MM-DD.") from None
    return Ordinance(name.strip(), promulgated)
