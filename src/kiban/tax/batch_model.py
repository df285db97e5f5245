"""The annual assessment (賦課) of individual resident tax, pure: the income-data CSV layout and
its row checks, how one taxpayer's records combine into a calculation request, the hash of an
assessment's inputs, the collection schedules (普通徴収・特別徴収・年金特別徴収), the standard's
forms F-TAX-01..05 as data, and the histogram of a run.

Only the standard library and ``kiban.core`` are imported: no storage, no engine.

Income data (所得資料) arrive as three kinds of record, one CSV line each (docs/tax-batch.md):

- ``salary``  給与支払報告書 (地方税法 317条の6): from employers, by 31 January;
- ``pension`` 公的年金等支払報告書 (地方税法 317条の6 第4項): from pension payers;
- ``return``  申告 (住民税申告 地方税法 317条の2, or the 確定申告 data 317条の3): the person's own
  declaration, which covers every income and deduction and so replaces the reports.

A line is identified by (record_type, payer_number, record_id): the same key imported again
with other contents is a correction (訂正) of that record, and the person is re-assessed (更正).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from kiban.core.checkdigits import is_valid_juminhyo_code, is_valid_my_number
from kiban.core.errors import FieldError

RECORD_TYPES = ("salary", "pension", "return")
RECORD_LABELS = {"salary": "給与支払報告書", "pension": "公的年金等支払報告書", "return": "申告"}
DISABILITY = ("none", "ordinary", "special")
MAX_YEN = 10_000_000_000  # 100億円: beyond any real income; a bigger figure is a typing error

# Money columns and where each goes in the calculation request (docs/tax-batch.md).
MONEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "salary_revenue": ("income", "salary_revenue"),
    "pension_revenue": ("income", "pension_revenue"),
    "business_revenue": ("income", "business", "revenue"),
    "business_expenses": ("income", "business", "expenses"),
    "real_estate_revenue": ("income", "real_estate", "revenue"),
    "real_estate_expenses": ("income", "real_estate", "expenses"),
    "misc_revenue": ("income", "miscellaneous", "revenue"),
    "misc_expenses": ("income", "miscellaneous", "expenses"),
    "interest": ("income", "interest"),
    "dividend": ("income", "dividend"),
    "social_insurance": ("deductions", "social_insurance"),
    "small_business_mutual_aid": ("deductions", "small_business_mutual_aid"),
    "life_general_new": ("deductions", "life_insurance", "general_new"),
    "life_general_old": ("deductions", "life_insurance", "general_old"),
    "life_care_medical": ("deductions", "life_insurance", "care_medical"),
    "life_pension_new": ("deductions", "life_insurance", "pension_new"),
    "life_pension_old": ("deductions", "life_insurance", "pension_old"),
    "earthquake_insurance": ("deductions", "earthquake_insurance"),
    "medical_paid": ("deductions", "medical_expenses", "paid"),
    "medical_reimbursed": ("deductions", "medical_expenses", "reimbursed"),
    "donation_hometown": ("credits", "donations", "hometown"),
    "donation_other": ("credits", "donations", "other_eligible"),
    "housing_loan_unused": ("credits", "housing_loan", "unused_income_tax_credit"),
    "housing_loan_income_tax_taxable": ("credits", "housing_loan", "income_tax_taxable_income"),
}
FLAG_COLUMNS = ("widow", "single_parent", "working_student", "livelihood_assistance")
IDENTITY_COLUMNS = ("record_type", "record_id", "payer_number", "payer_name", "juminhyo_code",
                    "my_number", "family_name", "given_name", "birth_date")
FAMILY_COLUMNS = ("spouse_birth_date", "spouse_income", "spouse_disability", "spouse_cohabiting",
                  "dependants")
OTHER_COLUMNS = ("disability", "housing_loan_rate", "collection")
COLUMNS = (*IDENTITY_COLUMNS, *MONEY_COLUMNS, *FLAG_COLUMNS, *OTHER_COLUMNS, *FAMILY_COLUMNS)
REQUIRED_COLUMNS = ("record_type", "record_id")
LABELS_JA = {
    "record_type": "資料区分", "record_id": "資料番号", "payer_number": "支払者番号",
    "payer_name": "支払者名", "juminhyo_code": "住民票コード", "my_number": "個人番号",
    "birth_date": "生年月日", "dependants": "扶養親族", "spouse_birth_date": "配偶者の生年月日",
    "spouse_income": "配偶者の合計所得金額", "collection": "徴収区分",
}


@dataclass
class ParsedRow:
    """One good line: its key, the person it names and the request fragment it carries."""
    record_type: str
    record_id: str
    payer_number: str
    payer_name: str
    juminhyo_code: str
    my_number: str
    data: dict[str, Any]


@dataclass
class RowProblem:
    """One bad line: its number in the file (the header is line 1), the fields at fault and
    the line itself, kept so that nothing is lost and it can be corrected and imported again."""
    line: int
    errors: list[FieldError]
    raw: dict[str, str] = field(default_factory=dict)


def header_errors(header: Sequence[str]) -> list[FieldError]:
    """A file whose header names an unknown column, repeats one, or lacks a required one is
    refused whole: a shifted column would put amounts in the wrong place on every line."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, name in enumerate(header):
        if name not in COLUMNS:
            errors.append(FieldError(f"header[{i}]", f"未知の列名です: {name[:40]}",
                                     f"unknown column {name[:40]!r}"))
        elif name in seen:
            errors.append(FieldError(f"header[{i}]", f"列名が重複しています: {name}",
                                     f"column {name!r} repeats"))
        seen.add(name)
    for name in REQUIRED_COLUMNS:
        if name not in seen:
            errors.append(FieldError("header", f"必須の列がありません: {name}",
                                     f"the required column {name!r} is missing"))
    if "juminhyo_code" not in seen and "my_number" not in seen:
        errors.append(FieldError("header", "住民票コードか個人番号の列が必要です。",
                                 "a juminhyo_code or my_number column is required"))
    return errors


def _yen(raw: str, name: str, errors: list[FieldError]) -> int:
    text = raw.strip().replace(",", "")
    if not text:
        return 0
    if not re.fullmatch(r"\d{1,11}", text):
        errors.append(FieldError(name, "金額は0以上の整数(円)で記入してください。",
                                 f"{name} must be a whole number of yen, 0 or more"))
        return 0
    value = int(text)
    if value > MAX_YEN:
        errors.append(FieldError(name, "金額が大きすぎます。", f"{name} is too large"))
    return value


def _flag(raw: str, name: str, errors: list[FieldError]) -> bool:
    text = raw.strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    errors.append(FieldError(name, "0か1で記入してください。", f"{name} must be 0 or 1"))
    return False


def _date(raw: str, name: str, errors: list[FieldError], *, required: bool = False) -> str | None:
    text = raw.strip()
    if not text:
        if required:
            errors.append(FieldError(name, "日付を記入してください。", f"{name} is required"))
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        errors.append(FieldError(name, "日付はYYYY-MM-DDで記入してください。",
                                 f"{name} must be a date YYYY-MM-DD"))
        return None
    if not 1880 <= day.year <= 2100:
        errors.append(FieldError(name, "日付が範囲外です。", f"{name} is out of range"))
        return None
    return day.isoformat()


def _disability(raw: str, name: str, errors: list[FieldError]) -> str:
    text = raw.strip() or "none"
    if text not in DISABILITY:
        errors.append(FieldError(name, "none・ordinary・special のいずれかです。",
                                 f"{name} must be none, ordinary or special"))
        return "none"
    return text


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def parse_dependants(raw: str, errors: list[FieldError]) -> list[dict[str, Any]]:
    """``birth_date/aggregate_income/disability/cohabiting/lineal_ascendant`` per relative,
    separated by ``;`` (e.g. ``2010-04-01/0/none/1/0;1950-02-03/800000/none/1/1``); the last
    three parts may be left out (none, living together, not a lineal ascendant)."""
    relatives: list[dict[str, Any]] = []
    text = raw.strip()
    if not text:
        return relatives
    for i, part in enumerate(text.split(";")):
        name = f"dependants[{i}]"
        bits = [b.strip() for b in part.split("/")]
        if not 1 <= len(bits) <= 5:
            errors.append(FieldError(name, "扶養親族は 生年月日/所得/障害/同居/直系尊属 の形です。",
                                     f"{name} must be birth_date/income/disability/cohabiting/lineal"))
            continue
        bits += [""] * (5 - len(bits))
        relatives.append({
            "birth_date": _date(bits[0], f"{name}.birth_date", errors, required=True),
            "aggregate_income": _yen(bits[1], f"{name}.aggregate_income", errors),
            "disability": _disability(bits[2], f"{name}.disability", errors),
            "cohabiting": True if bits[3] == "" else _flag(bits[3], f"{name}.cohabiting", errors),
            "lineal_ascendant": _flag(bits[4], f"{name}.lineal_ascendant", errors),
        })
    if len(relatives) > 20:
        errors.append(FieldError("dependants", "扶養親族が多すぎます(20人まで)。",
                                 "at most 20 dependants"))
    return relatives


def parse_row(row: Mapping[str, str]) -> tuple[ParsedRow | None, list[FieldError]]:
    """Checks one line; every bad field is named (not only the first)."""
    errors: list[FieldError] = []

    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    record_type = cell("record_type")
    if record_type not in RECORD_TYPES:
        errors.append(FieldError("record_type", "資料区分は salary・pension・return のいずれかです。",
                                 "record_type must be salary, pension or return"))
    record_id = cell("record_id")
    if not record_id or len(record_id) > 40:
        errors.append(FieldError("record_id", "資料番号(40文字以内)を記入してください。",
                                 "record_id is required (at most 40 characters)"))
    payer_number = cell("payer_number")
    if record_type in ("salary", "pension") and not payer_number:
        errors.append(FieldError("payer_number", "支払者番号を記入してください。",
                                 "payer_number is required for a salary or pension report"))
    if len(payer_number) > 20 or len(cell("payer_name")) > 200:
        errors.append(FieldError("payer_number", "支払者番号または名称が長すぎます。",
                                 "payer_number or payer_name is too long"))
    code, number = cell("juminhyo_code"), cell("my_number")
    if not code and not number:
        errors.append(FieldError("juminhyo_code", "住民票コードか個人番号を記入してください。",
                                 "juminhyo_code or my_number is required"))
    if code and not is_valid_juminhyo_code(code):
        errors.append(FieldError("juminhyo_code", "住民票コードが不正です(11桁、検査数字)。",
                                 "juminhyo_code is not a valid 11-digit code"))
    if number and not is_valid_my_number(number):
        errors.append(FieldError("my_number", "個人番号が不正です(12桁、検査数字)。",
                                 "my_number is not a valid 12-digit number"))
    birth = _date(cell("birth_date"), "birth_date", errors)
    data: dict[str, Any] = {}
    for name, path in MONEY_COLUMNS.items():
        value = _yen(cell(name), name, errors)
        if value:
            _put(data, path, value)
    if record_type == "salary" and not data.get("income", {}).get("salary_revenue"):
        if "salary_revenue" not in {e.field for e in errors}:
            errors.append(FieldError("salary_revenue", "給与支払報告書に支払金額がありません。",
                                     "a salary report needs salary_revenue"))
    if record_type == "pension" and not data.get("income", {}).get("pension_revenue"):
        if "pension_revenue" not in {e.field for e in errors}:
            errors.append(FieldError("pension_revenue", "公的年金等支払報告書に支払金額がありません。",
                                     "a pension report needs pension_revenue"))
    taxpayer: dict[str, Any] = {}
    for flag in FLAG_COLUMNS:
        if _flag(cell(flag), flag, errors):
            taxpayer[flag] = True
    disability = _disability(cell("disability"), "disability", errors)
    if disability != "none":
        taxpayer["disability"] = disability
    if birth:
        taxpayer["declared_birth_date"] = birth
    if taxpayer:
        data["taxpayer"] = taxpayer
    rate = cell("housing_loan_rate")
    if rate:
        if rate not in ("5", "7"):
            errors.append(FieldError("housing_loan_rate", "控除限度率は5か7です。",
                                     "housing_loan_rate must be 5 or 7"))
        else:
            _put(data, ("credits", "housing_loan", "limit_rate"), int(rate))
    collection = cell("collection")
    if collection and (record_type != "salary" or collection not in ("special", "ordinary")):
        errors.append(FieldError("collection", "徴収区分は給与支払報告書の special か ordinary です。",
                                 "collection is special or ordinary, on a salary report only"))
    if record_type == "salary":
        data["collection"] = collection or "special"
    spouse_birth = _date(cell("spouse_birth_date"), "spouse_birth_date", errors)
    if spouse_birth:
        data["spouse"] = {
            "birth_date": spouse_birth,
            "aggregate_income": _yen(cell("spouse_income"), "spouse_income", errors),
            "disability": _disability(cell("spouse_disability"), "spouse_disability", errors),
            "cohabiting": True if not cell("spouse_cohabiting")
            else _flag(cell("spouse_cohabiting"), "spouse_cohabiting", errors)}
    elif cell("spouse_income") or cell("spouse_disability"):
        errors.append(FieldError("spouse_birth_date", "配偶者の生年月日を記入してください。",
                                 "spouse_birth_date is required with other spouse columns"))
    dependants = parse_dependants(cell("dependants"), errors)
    if dependants:
        data["dependants"] = dependants
    if errors:
        return None, errors
    return ParsedRow(record_type, record_id, payer_number, cell("payer_name"), code, number,
                     data), []


def record_key(lgcode: str, fiscal_year: int, record_type: str, payer_number: str,
               record_id: str) -> str:
    """The stored id of a record: the same line, imported again, lands on the same row."""
    raw = "\x1f".join((lgcode, str(fiscal_year), record_type, payer_number, record_id))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False,
                                     separators=(",", ":")).encode()).hexdigest()


# --- combining one taxpayer's records ---------------------------------------------------------

@dataclass(frozen=True)
class Person:
    """What the registry says about a taxpayer on 1 January (the 賦課期日)."""
    resident_id: str
    family_name: str
    given_name: str
    birth_date: str
    sex: str
    town_code: str
    banchi: str
    katagaki: str


def _add(total: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        kind = type(value)  # exact types first: isinstance against an ABC is slow
        if kind is int:
            total[key] = total.get(key, 0) + value
        elif kind is dict or isinstance(value, Mapping):
            _add(total.setdefault(key, {}), value)
        elif isinstance(value, int) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


def _age_on(birth_date: str, day: date) -> int:
    born = date.fromisoformat(birth_date)
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def combine(person: Person, records: Sequence[Mapping[str, Any]], fiscal_year: int
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """One taxpayer's calculation request (the standard body, without fiscal_year) and
    collection, from the registry's facts and the income records, each record a dict with
    record_type, payer_number, payer_name and data.

    A 申告 supersedes the reports for income and deductions (it declares all of them); without
    one the reports add up (two employers' salaries are one 給与収入). Spouse and dependants
    come from the first record that lists any, 申告 first. Tax on salary is withheld by the
    employer paying the largest salary (特別徴収, 地方税法 321条の3) unless the report says
    普通徴収; a pensioner of 65 or more on 1 April has it taken from the pension (321条の7の2);
    everybody else pays by 普通徴収."""
    if not records:  # no income data (about 40 % of residents): 非課税 unless the rules say
        return {"taxpayer": {"birth_date": person.birth_date, "sex": person.sex,
                             "domicile_on_january_1": "resident",
                             "family_name": person.family_name, "given_name": person.given_name,
                             "address": {"town_code": person.town_code, "banchi": person.banchi,
                                         "katagaki": person.katagaki or None}},
                "income": {}, "deductions": {}, "spouse": None, "dependants": []}, {
            "method": "ordinary"}
    ordered = sorted(records, key=lambda r: (RECORD_TYPES.index(r["record_type"]) * -1,
                                             str(r.get("payer_number", "")),
                                             str(r.get("record_id", ""))))
    returns = [r for r in ordered if r["record_type"] == "return"]
    sources = returns or [r for r in ordered if r["record_type"] != "return"]
    amounts: dict[str, Any] = {}
    flags: dict[str, Any] = {}
    for record in sources:
        data = record["data"]
        _add(amounts, {k: data[k] for k in ("income", "deductions", "credits") if k in data})
        for key, value in data.get("taxpayer", {}).items():
            if key != "declared_birth_date":
                flags[key] = value
        rate = data.get("credits", {}).get("housing_loan", {}).get("limit_rate")
        if rate:
            amounts.setdefault("credits", {}).setdefault("housing_loan", {})["limit_rate"] = rate
    family: Mapping[str, Any] = next((r["data"] for r in ordered if r["data"].get("spouse") or
                   r["data"].get("dependants")), {})
    request: dict[str, Any] = {
        "taxpayer": {"birth_date": person.birth_date, "sex": person.sex,
                     "domicile_on_january_1": "resident", **flags,
                     "family_name": person.family_name, "given_name": person.given_name,
                     "address": {"town_code": person.town_code, "banchi": person.banchi,
                                 "katagaki": person.katagaki or None}},
        "income": amounts.get("income", {}),
        "deductions": amounts.get("deductions", {}),
        "spouse": family.get("spouse"),
        "dependants": list(family.get("dependants", [])),
    }
    if "credits" in amounts:
        request["credits"] = amounts["credits"]
    salaries = [r for r in ordered if r["record_type"] == "salary"
                and r["data"].get("collection", "special") == "special"]
    collection: dict[str, Any] = {"method": "ordinary"}
    if salaries:
        main = max(salaries, key=lambda r: r["data"].get("income", {}).get("salary_revenue", 0))
        collection = {"method": "special", "special_collector": {
            "number": main["payer_number"], "name": main.get("payer_name") or ""}}
    elif any(r["record_type"] == "pension" for r in ordered) and \
            _age_on(person.birth_date, date(fiscal_year, 4, 1)) >= 65:
        collection = {"method": "pension"}
    return request, collection


def input_hash(request: Mapping[str, Any], collection: Mapping[str, Any], fiscal_year: int,
               options: Any) -> str:
    """What an assessment depends on: the request, the collection, the year and the
    municipality's tax settings. The same hash means the same result: nothing to store."""
    return digest({"fy": fiscal_year, "request": request, "collection": collection,
                   "options": options})


# --- collection schedules (地方税法 320条, 321条の5, 321条の7の5) ---------------------------------

def _floor(amount: int, unit: int) -> int:
    return amount // unit * unit


def _month_end(year: int, month: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def instalments(total: int, method: str, fiscal_year: int) -> list[dict[str, Any]]:
    """The periods and amounts in which the annual tax is collected.

    - ordinary (普通徴収): June, August, October, January; each 期 the quarter floored to
      1,000 yen, the remainder in the first (地方税法 320条; 端数 by 各団体の条例, as common);
      due at the end of the month.
    - special (特別徴収): twelve months June to May; each the twelfth floored to 100 yen, the
      remainder in June (321条の5). In 令和6年度 (定額減税) June is not collected and July
      takes the remainder of eleven months (附則 5条の8).
    - pension (年金特別徴収, first year): June and August by 普通徴収, a quarter each; October,
      December and February from the pension, the remaining half in three, the remainder in
      October (321条の7の2, の7の5)."""
    if total <= 0:
        return []
    fy = fiscal_year
    if method == "ordinary":
        each = _floor(total // 4, 1000)
        periods = [(fy, 6), (fy, 8), (fy, 10), (fy + 1, 1)]
        amounts = [total - 3 * each, each, each, each]
        return [{"period": f"{y}-{m:02d}", "amount": a, "method": "ordinary",
                 "due_date": _month_end(y, m).isoformat()}
                for (y, m), a in zip(periods, amounts, strict=True)]
    if method == "special":
        months = [(fy, m) for m in range(6, 13)] + [(fy + 1, m) for m in range(1, 6)]
        if fy == 2024:
            each = _floor(total // 11, 100)
            amounts = [0, total - 10 * each] + [each] * 10
        else:
            each = _floor(total // 12, 100)
            amounts = [total - 11 * each] + [each] * 11
        return [{"period": f"{y}-{m:02d}", "amount": a, "method": "special", "due_date": None}
                for (y, m), a in zip(months, amounts, strict=True)]
    if method == "pension":
        quarter = _floor(total // 4, 100)
        rest = total - 2 * quarter
        each = _floor(rest // 3, 100)
        entries = [{"period": f"{fy}-06", "amount": quarter, "method": "ordinary",
                    "due_date": _month_end(fy, 6).isoformat()},
                   {"period": f"{fy}-08", "amount": quarter, "method": "ordinary",
                    "due_date": _month_end(fy, 8).isoformat()}]
        for (y, m), a in zip([(fy, 10), (fy, 12), (fy + 1, 2)], [rest - 2 * each, each, each],
                             strict=True):
            entries.append({"period": f"{y}-{m:02d}", "amount": a, "method": "pension",
                            "due_date": None})
        return entries
    raise ValueError(f"unknown collection method {method!r}")


# --- forms F-TAX-01..05 ---------------------------------------------------------------------------

APPEAL_NOTICE = (
    "この処分に不服がある場合は、この通知を受けた日の翌日から起算して3か月以内に、{issuer}に対して"
    "審査請求をすることができます(行政不服審査法第2条・第4条、地方税法第19条)。この処分の取消しの訴えは、"
    "審査請求に対する裁決の送達を受けた日の翌日から起算して6か月以内に、{body}を被告として提起することが"
    "できます(行政事件訴訟法第8条・第14条、地方税法第19条の12)。")


def _pick(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


# form item -> where it is in the calculation response
_CALCULATION_ITEMS = {
    "tax.fiscal_year": "fiscal_year", "tax.income_year": "income_year",
    "tax.salary_income": "income.salary_income",
    "tax.income_adjustment_deduction": "income.income_adjustment_deduction",
    "tax.pension_income": "income.pension_income", "tax.business_income": "income.business_income",
    "tax.real_estate_income": "income.real_estate_income",
    "tax.interest_income": "income.interest_income", "tax.dividend_income": "income.dividend_income",
    "tax.miscellaneous_income": "income.miscellaneous_income",
    "tax.total_income": "income.total_income", "tax.aggregate_income": "income.aggregate_income",
    "tax.deduction_social_insurance": "deductions.social_insurance",
    "tax.deduction_small_business_mutual_aid": "deductions.small_business_mutual_aid",
    "tax.deduction_life_insurance": "deductions.life_insurance",
    "tax.deduction_earthquake_insurance": "deductions.earthquake_insurance",
    "tax.deduction_medical_expenses": "deductions.medical_expenses",
    "tax.deduction_basic": "deductions.basic", "tax.deduction_spouse": "deductions.spouse",
    "tax.deduction_spouse_special": "deductions.spouse_special",
    "tax.deduction_dependants": "deductions.dependants",
    "tax.deduction_specific_relative": "deductions.specific_relative",
    "tax.deduction_disability": "deductions.disability", "tax.deduction_widow": "deductions.widow",
    "tax.deduction_single_parent": "deductions.single_parent",
    "tax.deduction_working_student": "deductions.working_student",
    "tax.deduction_total": "deductions.total", "tax.dependant_count": "dependant_count",
    "tax.taxable_income": "taxable_income",
    "tax.personal_deduction_difference": "personal_deduction_difference",
    "tax.non_taxable": "non_taxable", "tax.grade": "grade",
    "tax.per_capita_levy_municipal": "per_capita_levy.municipal",
    "tax.per_capita_levy_prefectural": "per_capita_levy.prefectural",
    "tax.forest_environment_tax": "forest_environment_tax", "tax.annual_tax": "total",
}
for _side in ("municipal", "prefectural"):
    _CALCULATION_ITEMS.update({
        f"tax.income_levy_computed_{_side}": f"income_levy.{_side}.computed",
        f"tax.adjustment_credit_{_side}": f"income_levy.{_side}.adjustment_credit",
        f"tax.dividend_credit_{_side}": f"income_levy.{_side}.dividend_credit",
        f"tax.housing_loan_credit_{_side}": f"income_levy.{_side}.housing_loan_credit",
        f"tax.donation_credit_{_side}": f"income_levy.{_side}.donation_credit",
        f"tax.flat_reduction_{_side}": f"income_levy.{_side}.flat_reduction",
        f"tax.income_levy_{_side}": f"income_levy.{_side}.amount",
    })


def form_values(assessment: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Every form item's value for an assessment (the API shape: calculation, collection,
    taxpayer_number, input) plus `extra` (notice_date, serial, issuer, correction items)."""
    calc = assessment["calculation"]
    request = assessment.get("input", {})
    taxpayer = request.get("taxpayer", {})
    address = taxpayer.get("address") or {}
    collection = assessment.get("collection", {})
    entries = collection.get("instalments", [])
    values: dict[str, Any] = {item: _pick(calc, path) for item, path in _CALCULATION_ITEMS.items()}
    collector = collection.get("special_collector") or {}
    values.update({
        "tax.taxpayer_number": assessment.get("taxpayer_number"),
        "person.family_name": taxpayer.get("family_name"),
        "person.given_name": taxpayer.get("given_name"),
        "person.birth_date": taxpayer.get("birth_date"),
        "address.town_code": address.get("town_code"), "address.banchi": address.get("banchi"),
        "address.katagaki": address.get("katagaki"),
        "tax.salary_revenue": _pick(request, "income.salary_revenue") or 0,
        "tax.pension_revenue": _pick(request, "income.pension_revenue") or 0,
        "tax.collection_method": collection.get("method"),
        "tax.special_collector_number": collector.get("number"),
        "tax.special_collector_name": collector.get("name"),
        "tax.instalment_period": [e["period"] for e in entries],
        "tax.instalment_amount": [e["amount"] for e in entries],
        "tax.due_date": [e.get("due_date") for e in entries],
        "tax.assessment_version": assessment.get("version"),
    })
    values.update(extra)
    return values


def build_form(definition: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The standard's form shape: items in the standard's order; an optional item without a
    value (or zero) is left out, a required one is always present."""
    items = []
    for entry in definition["items"]:
        value = values.get(entry["item"])
        if entry.get("optional") and (value is None or value == 0):
            continue
        items.append({"item": entry["item"], "value": value})
    return {"form": definition["id"], "name": definition["name"], "items": items}


# --- run summary ---------------------------------------------------------------------------

# Bands of annual tax for the histogram of a run (yen, lower bounds).
HISTOGRAM_BOUNDS = (0, 1, 10_000, 50_000, 100_000, 200_000, 300_000, 500_000, 1_000_000,
                    2_000_000)


def histogram(totals: Iterable[int], counts: list[int] | None = None) -> list[int]:
    """How many assessments fall in each band of HISTOGRAM_BOUNDS (added to `counts`)."""
    counts = counts if counts is not None else [0] * len(HISTOGRAM_BOUNDS)
    bounds = HISTOGRAM_BOUNDS
    for total in totals:
        i = len(bounds) - 1
        while total < bounds[i]:
            i -= 1
        counts[i] += 1
    return counts


def band_label(i: int) -> str:
    low = HISTOGRAM_BOUNDS[i]
    if i == 0:
        return "0円"
    if i + 1 < len(HISTOGRAM_BOUNDS):
        return f"{low:,}〜{HISTOGRAM_BOUNDS[i + 1] - 1:,}円"
    return f"{low:,}円〜"


# --- the batch's fast path ----------------------------------------------------------------------

def _pair(part: Mapping[str, Any] | None) -> dict[str, int]:
    part = part or {}
    return {"revenue": part.get("revenue", 0), "expenses": part.get("expenses", 0)}


def normalise(request: Mapping[str, Any], fiscal_year: int) -> dict[str, Any]:
    """A combined request in the shape `kiban.tax.requests.parse_calculation_request` returns
    (every member present, defaults filled), without its checks: the batch's inputs were
    checked line by line when imported. The API path parses; both feed the same engine."""
    tp = request["taxpayer"]
    inc = request.get("income") or {}
    ded = request.get("deductions") or {}
    life = ded.get("life_insurance") or {}
    medical = ded.get("medical_expenses") or {}
    credits = request.get("credits") or {}
    donations = credits.get("donations") or {}
    house = credits.get("housing_loan") or {}
    spouse = request.get("spouse")
    return {
        "fiscal_year": fiscal_year, "grade": None,
        "taxpayer": {"birth_date": tp["birth_date"], "sex": tp.get("sex", "1"),
                     "domicile_on_january_1": "resident",
                     "disability": tp.get("disability", "none"),
                     "widow": tp.get("widow", False), "single_parent": tp.get("single_parent", False),
                     "working_student": tp.get("working_student", False),
                     "livelihood_assistance": tp.get("livelihood_assistance", False),
                     "family_name": tp.get("family_name"), "given_name": tp.get("given_name"),
                     "address": tp.get("address")},
        "income": {"salary_revenue": inc.get("salary_revenue", 0),
                   "pension_revenue": inc.get("pension_revenue", 0),
                   "interest": inc.get("interest", 0), "dividend": inc.get("dividend", 0),
                   "business": _pair(inc.get("business")),
                   "real_estate": _pair(inc.get("real_estate")),
                   "miscellaneous": _pair(inc.get("miscellaneous"))},
        "deductions": {"social_insurance": ded.get("social_insurance", 0),
                       "small_business_mutual_aid": ded.get("small_business_mutual_aid", 0),
                       "earthquake_insurance": ded.get("earthquake_insurance", 0),
                       "life_insurance": {k: life.get(k, 0) for k in (
                           "general_new", "general_old", "care_medical", "pension_new",
                           "pension_old")},
                       "medical_expenses": {"paid": medical.get("paid", 0),
                                            "reimbursed": medical.get("reimbursed", 0)}},
        "spouse": None if not spouse else {
            "birth_date": spouse["birth_date"], "aggregate_income": spouse.get("aggregate_income", 0),
            "disability": spouse.get("disability", "none"),
            "cohabiting": spouse.get("cohabiting", True), "lineal_ascendant": False},
        "dependants": [{"birth_date": d["birth_date"],
                        "aggregate_income": d.get("aggregate_income", 0),
                        "disability": d.get("disability", "none"),
                        "cohabiting": d.get("cohabiting", True),
                        "lineal_ascendant": d.get("lineal_ascendant", False)}
                       for d in request.get("dependants") or []],
        "credits": {"donations": {"hometown": donations.get("hometown", 0),
                                  "other_eligible": donations.get("other_eligible", 0)},
                    "housing_loan": {
                        "unused_income_tax_credit": house.get("unused_income_tax_credit", 0),
                        "income_tax_taxable_income": house.get("income_tax_taxable_income", 0),
                        "limit_rate": house.get("limit_rate", 5)}},
    }


def batch_hash(person: Sequence[Any], record_hashes: Iterable[str], options_key: str,
               fiscal_year: int) -> str:
    """The batch's input hash: the registry's facts of 1 January, the content hashes of the
    person's income records and the option set. The request and the collection follow from
    exactly these, so the same hash means the same result."""
    raw = "\x1f".join((str(fiscal_year), options_key, *map(str, person), "\x1e",
                       *sorted(record_hashes)))
    return hashlib.sha256(raw.encode()).hexdigest()
