"""Validation of calculation input, pure: the standard API's request (kiban/standard/kit/
tax_checks.py) and the calculator contract of `kiban tax calc` (issue 4). Every error names its
field as a path (``dependants[0].birth_date``); unknown fields are refused (JT-0052: no
deduction or override that the law does not have)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from kiban.core.errors import FieldError, ValidationFailed
from kiban.tax.model import (
    MunicipalOptions,
    parse_fiscal_year,
    parse_grade,
    parse_per_capita,
    parse_rate,
    standard_income_rates,
)

MAX_YEN = 10**12  # one trillion yen: beyond any person's income, well inside int64 arithmetic
MAX_RELATIVES = 50
DISABILITIES = ("none", "ordinary", "special")


class _Errors:
    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, path: str, ja: str, en: str) -> None:
        self.items.append(FieldError(path, ja, en))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def _object(value: Any, path: str, allowed: tuple[str, ...], errors: _Errors,
            *, nullable: bool = False) -> dict[str, Any] | None:
    if value is None and nullable:
        return None
    if value is None:
        return {}
    if not isinstance(value, dict):
        name = path or "body"
        errors.add(name, f"{name} はオブジェクトです。", f"{name} must be an object.")
        return {}
    for key in value:
        if key not in allowed:
            text = str(key) or '""'  # an empty key is still named
            name = f"{path}.{text}" if path else text
            errors.add(name, f"この項目は受け付けません: {name}", f"Unknown field: {name}.")
    return value


def _amount(obj: dict[str, Any], key: str, path: str, errors: _Errors) -> int:
    value = obj.get(key, 0)
    name = f"{path}.{key}" if path else key
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_YEN:
        errors.add(name, f"{name} は 0 以上の整数(円)です。",
                   f"{name} must be a whole number of yen, 0 or more.")
        return 0
    return value


def _flag(obj: dict[str, Any], key: str, path: str, errors: _Errors,
          default: bool = False) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        errors.add(f"{path}.{key}", f"{path}.{key} は true か false です。",
                   f"{path}.{key} must be true or false.")
        return default
    return value


def _date(obj: dict[str, Any], key: str, path: str, errors: _Errors, latest: date,
          required: bool = True) -> date | None:
    name = f"{path}.{key}"
    value = obj.get(key)
    if value is None and not required:
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        parsed = date.fromisoformat(value)
    except ValueError:
        errors.add(name, f"{name} は YYYY-MM-DD の正しい日付です。",
                   f"{name} must be a real date YYYY-MM-DD.")
        return None
    if parsed.year < 1880 or parsed > latest:
        errors.add(name, f"{name} は {latest.isoformat()} 以前の日付です。",
                   f"{name} must be on or before {latest.isoformat()}.")
        return None
    return parsed


def _choice(obj: dict[str, Any], key: str, path: str, choices: tuple[str, ...],
            errors: _Errors, default: str) -> str:
    value = obj.get(key, default)
    if value not in choices:
        errors.add(f"{path}.{key}", f"{path}.{key} は {' / '.join(choices)} のいずれかです。",
                   f"{path}.{key} must be one of {', '.join(choices)}.")
        return default
    assert isinstance(value, str)
    return value


def _person(raw: Any, path: str, errors: _Errors, latest: date, *,
            income_key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    obj = _object(raw, path, allowed, errors) or {}
    if raw is not None and not isinstance(raw, dict):
        return {}
    disability = obj.get("disability", "none")
    if disability == "general":
        disability = "ordinary"
    person = {
        "birth_date": _date(obj, "birth_date", path, errors, latest),
        "aggregate_income": _amount(obj, income_key, path, errors),
        "disability": _choice({"disability": disability}, "disability", path, DISABILITIES,
                              errors, "none"),
        "cohabiting": _flag(obj, "cohabiting", path, errors, True),
        "lineal_ascendant": _flag(obj, "lineal_ascendant", path, errors)
        if "lineal_ascendant" in allowed else False,
    }
    return person


def parse_calculation_request(body: Any, *, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The standard API's calculation request, validated and normalised: every member present,
    amounts int, dates `date`, `fiscal_year` an int, `grade` a str or None (the municipality's).
    `extra` names further top-level members the caller validates itself (e.g. collection)."""
    errors = _Errors()
    top = _object(body, "", ("fiscal_year", "grade", "taxpayer", "income", "deductions",
                             "spouse", "dependants", "credits", *extra), errors) or {}
    if not isinstance(body, dict):
        errors.raise_if_any()
    try:
        fiscal_year = parse_fiscal_year(top.get("fiscal_year"))
    except ValidationFailed as exc:
        errors.items += exc.errors
        fiscal_year = 2025
    latest = date(fiscal_year - 1, 12, 31)
    grade = None
    if top.get("grade") is not None:
        try:
            grade = parse_grade(top["grade"])
        except ValidationFailed as exc:
            errors.items += exc.errors
    tp_raw = top.get("taxpayer")
    if not isinstance(tp_raw, dict):
        errors.add("taxpayer", "taxpayer は必須です。", "taxpayer is required.")
        tp_raw = {}
    tp = _object(tp_raw, "taxpayer", (
        "birth_date", "sex", "domicile_on_january_1", "disability", "widow", "single_parent",
        "working_student", "livelihood_assistance", "family_name", "given_name", "address"),
        errors) or {}
    domicile = _choice(tp, "domicile_on_january_1", "taxpayer",
                       ("resident", "premises_only", "none"), errors, "resident")
    if domicile == "none":
        errors.add("taxpayer.domicile_on_january_1",
                   "賦課期日(1月1日)に住所も家屋敷もない者には課税しません。",
                   "A person with neither domicile nor premises on 1 January is not taxed here.")
    for name_key in ("family_name", "given_name"):
        value = tp.get(name_key)
        if value is not None and (not isinstance(value, str) or len(value) > 100):
            errors.add(f"taxpayer.{name_key}", "氏名は100文字以内の文字列です。",
                       f"taxpayer.{name_key} must be text of at most 100 characters.")
    address = tp.get("address")
    if address is not None:
        _object(address, "taxpayer.address", ("town_code", "banchi", "katagaki"), errors)
    taxpayer = {
        "birth_date": _date(tp, "birth_date", "taxpayer", errors, latest),
        "sex": _choice(tp, "sex", "taxpayer", ("1", "2"), errors, "1"),
        "domicile_on_january_1": domicile,
        "disability": _choice(tp, "disability", "taxpayer", DISABILITIES, errors, "none"),
        "widow": _flag(tp, "widow", "taxpayer", errors),
        "single_parent": _flag(tp, "single_parent", "taxpayer", errors),
        "working_student": _flag(tp, "working_student", "taxpayer", errors),
        "livelihood_assistance": _flag(tp, "livelihood_assistance", "taxpayer", errors),
        "family_name": tp.get("family_name"), "given_name": tp.get("given_name"),
        "address": address,
    }
    inc = _object(top.get("income"), "income", (
        "salary_revenue", "pension_revenue", "business", "real_estate", "miscellaneous",
        "interest", "dividend"), errors) or {}
    income: dict[str, Any] = {k: _amount(inc, k, "income", errors)
                              for k in ("salary_revenue", "pension_revenue", "interest",
                                        "dividend")}
    for kind in ("business", "real_estate", "miscellaneous"):
        part = _object(inc.get(kind), f"income.{kind}", ("revenue", "expenses"), errors) or {}
        income[kind] = {k: _amount(part, k, f"income.{kind}", errors)
                        for k in ("revenue", "expenses")}
    ded = _object(top.get("deductions"), "deductions", (
        "social_insurance", "small_business_mutual_aid", "life_insurance",
        "earthquake_insurance", "medical_expenses"), errors) or {}
    life = _object(ded.get("life_insurance"), "deductions.life_insurance", (
        "general_new", "general_old", "care_medical", "pension_new", "pension_old"),
        errors) or {}
    medical = _object(ded.get("medical_expenses"), "deductions.medical_expenses",
                      ("paid", "reimbursed"), errors) or {}
    deductions = {
        "social_insurance": _amount(ded, "social_insurance", "deductions", errors),
        "small_business_mutual_aid": _amount(ded, "small_business_mutual_aid", "deductions",
                                             errors),
        "earthquake_insurance": _amount(ded, "earthquake_insurance", "deductions", errors),
        "life_insurance": {k: _amount(life, k, "deductions.life_insurance", errors)
                           for k in ("general_new", "general_old", "care_medical",
                                     "pension_new", "pension_old")},
        "medical_expenses": {k: _amount(medical, k, "deductions.medical_expenses", errors)
                             for k in ("paid", "reimbursed")},
    }
    person_fields = ("birth_date", "aggregate_income", "disability", "cohabiting")
    spouse = None
    if top.get("spouse") is not None:
        spouse = _person(top["spouse"], "spouse", errors, latest,
                         income_key="aggregate_income", allowed=person_fields)
    raw_dependants = top.get("dependants") or []
    dependants = []
    if not isinstance(raw_dependants, list) or len(raw_dependants) > MAX_RELATIVES:
        errors.add("dependants", f"dependants は{MAX_RELATIVES}人までの配列です。",
                   f"dependants must be a list of at most {MAX_RELATIVES}.")
    else:
        for i, raw in enumerate(raw_dependants):
            dependants.append(_person(raw, f"dependants[{i}]", errors, latest,
                                      income_key="aggregate_income",
                                      allowed=(*person_fields, "lineal_ascendant")))
    cr = _object(top.get("credits"), "credits", ("donations", "housing_loan"), errors) or {}
    don = _object(cr.get("donations"), "credits.donations", ("hometown", "other_eligible"),
                  errors) or {}
    house = _object(cr.get("housing_loan"), "credits.housing_loan", (
        "unused_income_tax_credit", "income_tax_taxable_income", "limit_rate"), errors) or {}
    limit_rate = house.get("limit_rate", 5)
    if limit_rate not in (5, 7) or isinstance(limit_rate, bool):
        errors.add("credits.housing_loan.limit_rate", "限度率は 5 か 7 (%) です。",
                   "credits.housing_loan.limit_rate must be 5 or 7.")
        limit_rate = 5
    credits = {
        "donations": {k: _amount(don, k, "credits.donations", errors)
                      for k in ("hometown", "other_eligible")},
        "housing_loan": {
            "unused_income_tax_credit": _amount(house, "unused_income_tax_credit",
                                                "credits.housing_loan", errors),
            "income_tax_taxable_income": _amount(house, "income_tax_taxable_income",
                                                 "credits.housing_loan", errors),
            "limit_rate": limit_rate},
    }
    errors.raise_if_any()
    return {"fiscal_year": fiscal_year, "grade": grade, "taxpayer": taxpayer, "income": income,
            "deductions": deductions, "spouse": spouse, "dependants": dependants,
            "credits": credits, **{k: top[k] for k in extra if k in top}}


def parse_calculator_input(body: Any) -> tuple[dict[str, Any], MunicipalOptions]:
    """The `kiban tax calc` contract of issue 4, validated with its own field names, mapped onto
    the standard request (same engine, same path) and the municipality's options (null rates
    and amounts = the statutory ones for that kind of municipality)."""
    errors = _Errors()
    top = _object(body, "", ("fiscal_year", "municipality", "taxpayer", "income", "deductions",
                             "spouse", "dependents", "donations"), errors) or {}
    if not isinstance(body, dict):
        errors.raise_if_any()
    try:
        parse_fiscal_year(top.get("fiscal_year"))
    except ValidationFailed as exc:
        errors.items += exc.errors
    muni = _object(top.get("municipality"), "municipality", (
        "designated_city", "grade", "municipal_income_rate", "prefectural_income_rate",
        "municipal_per_capita", "prefectural_per_capita"), errors) or {}
    designated = _flag(muni, "designated_city", "municipality", errors)
    grade = "1"
    try:
        grade = parse_grade(muni.get("grade", 1), "municipality.grade")
    except ValidationFailed as exc:
        errors.items += exc.errors
    std_m, std_p = standard_income_rates(designated)
    rates: dict[str, Decimal | int] = {}
    for key, default in (("municipal_income_rate", std_m), ("prefectural_income_rate", std_p)):
        try:
            rates[key] = (default if muni.get(key) is None
                          else parse_rate(muni[key], f"municipality.{key}"))
        except ValidationFailed as exc:
            errors.items += exc.errors
            rates[key] = default
    for key, default_pc in (("municipal_per_capita", 3000), ("prefectural_per_capita", 1000)):
        try:
            rates[key] = (default_pc if muni.get(key) is None
                          else parse_per_capita(muni[key], f"municipality.{key}"))
        except ValidationFailed as exc:
            errors.items += exc.errors
            rates[key] = default_pc
    tp = _object(top.get("taxpayer"), "taxpayer", (
        "birth_date", "sex", "disability", "widow", "single_parent", "working_student",
        "public_assistance"), errors) or {}
    sex = tp.get("sex", "M")
    if sex not in ("M", "F"):
        errors.add("taxpayer.sex", "性別は M か F です。", "taxpayer.sex must be M or F.")
    disability = tp.get("disability", "none")
    if disability not in ("none", "general", "special"):
        errors.add("taxpayer.disability", "障害は none / general / special です。",
                   "taxpayer.disability must be none, general or special.")
        disability = "none"
    taxpayer = {"birth_date": tp.get("birth_date"), "sex": "2" if sex == "F" else "1",
                "disability": "ordinary" if disability == "general" else disability}
    for key in ("widow", "single_parent", "working_student"):
        taxpayer[key] = _flag(tp, key, "taxpayer", errors)
    taxpayer["livelihood_assistance"] = _flag(tp, "public_assistance", "taxpayer", errors)
    inc = _object(top.get("income"), "income", ("salary", "public_pension", "other",
                                                "dividends"), errors) or {}
    income = {"salary_revenue": _amount(inc, "salary", "income", errors),
              "pension_revenue": _amount(inc, "public_pension", "income", errors),
              "miscellaneous": {"revenue": _amount(inc, "other", "income", errors),
                                "expenses": 0},
              "dividend": _amount(inc, "dividends", "income", errors)}
    ded = _object(top.get("deductions"), "deductions", (
        "social_insurance", "life_insurance_premiums", "earthquake_insurance_premiums",
        "medical_expenses", "medical_reimbursed"), errors) or {}
    life = _object(ded.get("life_insurance_premiums"), "deductions.life_insurance_premiums", (
        "new_general", "new_care_medical", "new_pension", "old_general", "old_pension"),
        errors) or {}
    lp = "deductions.life_insurance_premiums"
    deductions = {
        "social_insurance": _amount(ded, "social_insurance", "deductions", errors),
        "life_insurance": {"general_new": _amount(life, "new_general", lp, errors),
                           "care_medical": _amount(life, "new_care_medical", lp, errors),
                           "pension_new": _amount(life, "new_pension", lp, errors),
                           "general_old": _amount(life, "old_general", lp, errors),
                           "pension_old": _amount(life, "old_pension", lp, errors)},
        "earthquake_insurance": _amount(ded, "earthquake_insurance_premiums", "deductions",
                                        errors),
        "medical_expenses": {"paid": _amount(ded, "medical_expenses", "deductions", errors),
                             "reimbursed": _amount(ded, "medical_reimbursed", "deductions",
                                                   errors)},
    }

    def relative(raw: Any, path: str) -> dict[str, Any]:
        obj = _object(raw, path, ("birth_date", "total_income", "disability", "cohabiting"),
                      errors) or {}
        kind = obj.get("disability", "none")
        if kind not in ("none", "general", "special"):
            errors.add(f"{path}.disability", "障害は none / general / special です。",
                       f"{path}.disability must be none, general or special.")
            kind = "none"
        return {"birth_date": obj.get("birth_date"),
                "aggregate_income": _amount(obj, "total_income", path, errors),
                "disability": "ordinary" if kind == "general" else kind,
                "cohabiting": _flag(obj, "cohabiting", path, errors, True)}

    spouse = None if top.get("spouse") is None else relative(top["spouse"], "spouse")
    raw_dependents = top.get("dependents") or []
    dependants = []
    if not isinstance(raw_dependents, list) or len(raw_dependents) > MAX_RELATIVES:
        errors.add("dependents", f"dependents は{MAX_RELATIVES}人までの配列です。",
                   f"dependents must be a list of at most {MAX_RELATIVES}.")
    else:
        dependants = [relative(raw, f"dependents[{i}]") for i, raw in enumerate(raw_dependents)]
    don = _object(top.get("donations"), "donations", ("hometown", "other"), errors) or {}
    credits = {"donations": {"hometown": _amount(don, "hometown", "donations", errors),
                             "other_eligible": _amount(don, "other", "donations", errors)}}
    errors.raise_if_any()
    standard = {"fiscal_year": top.get("fiscal_year"), "grade": grade, "taxpayer": taxpayer,
                "income": income, "deductions": deductions, "spouse": spouse,
                "dependants": dependants, "credits": credits}
    try:
        parsed = parse_calculation_request(standard)
    except ValidationFailed as exc:  # dates and the year: name them as the contract does
        raise ValidationFailed([FieldError(e.field.replace("dependants[", "dependents["),
                                           e.ja, e.en) for e in exc.errors]) from None
    options = MunicipalOptions(
        grade=grade, designated_city=designated,
        municipal_income_rate=Decimal(rates["municipal_income_rate"]),
        prefectural_income_rate=Decimal(rates["prefectural_income_rate"]),
        municipal_per_capita=int(rates["municipal_per_capita"]),
        prefectural_per_capita=int(rates["prefectural_per_capita"]))
    return parsed, options
