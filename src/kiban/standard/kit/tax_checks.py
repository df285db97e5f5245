"""Conformance checks of the individual resident tax (個人住民税): requirements JT-0001 … JT-0054.

THE STANDARD TAX API
====================
Every path is under ``/api/v1/municipalities/{lgcode}`` (6-digit 地方公共団体コード) and needs a
bearer token of a staff member with the tax role (``tax_officer``). Money is always an integer
number of yen; rates are decimal strings in percent ("6", "4.025"); dates are ISO ``YYYY-MM-DD``;
months are ``YYYY-MM``. Bad input is refused with ``application/problem+json`` (RFC 9457) carrying
``title_ja``, ``title_en`` and the offending field, as ``field`` or in ``errors[].field``, written
as a path: ``income.salary_revenue``, ``dependants[0].birth_date``. Unknown fields are refused the
same way. A missing resource answers 404 with problem type ``…/not-found``.

POST /tax/calculations  — compute one taxpayer's tax; stores nothing. 200.
  Request::

    {
      "fiscal_year": 2025,            # 課税年度: Gregorian year (2025) or "R7"; income year = FY - 1
      "grade": "1",                   # 級地 "1" | "2" | "3"; default: the municipality's setting
      "taxpayer": {
        "birth_date": "1980-04-01",   # required
        "sex": "1",                   # code list `sex` ("1" 男, "2" 女); needed for ひとり親 調整控除
        "domicile_on_january_1": "resident",   # "resident" | "premises_only" (家屋敷) | "none"
        "disability": "none",         # "none" | "ordinary" (障害者) | "special" (特別障害者)
        "widow": false, "single_parent": false, "working_student": false,
        "livelihood_assistance": false,         # receives 生活扶助
        "family_name": "…", "given_name": "…",  # optional here, required for assessments
        "address": {"town_code": "0001001", "banchi": "1番地", "katagaki": null}
      },
      "income": {                     # every member optional, absent = 0
        "salary_revenue": 5000000,    # 給与収入 (before 給与所得控除)
        "pension_revenue": 0,         # 公的年金等の収入
        "business": {"revenue": 0, "expenses": 0},
        "real_estate": {"revenue": 0, "expenses": 0},
        "miscellaneous": {"revenue": 0, "expenses": 0},   # 雑所得 other than public pensions
        "interest": 0,                # 利子所得 taxed with the return (総合課税)
        "dividend": 0                 # 配当所得 taxed with the return (総合課税, 配当控除 applies)
      },
      "deductions": {                 # amounts PAID; the engine computes the deductions
        "social_insurance": 750000, "small_business_mutual_aid": 0,
        "life_insurance": {"general_new": 0, "general_old": 0, "care_medical": 0,
                           "pension_new": 0, "pension_old": 0},
        "earthquake_insurance": 0,
        "medical_expenses": {"paid": 0, "reimbursed": 0}
      },
      "spouse": null | {"birth_date": "…", "aggregate_income": 0, "disability": "none",
                        "cohabiting": true},
      "dependants": [                 # every relative of the same livelihood other than the spouse
        {"birth_date": "…", "aggregate_income": 0, "disability": "none", "cohabiting": true,
         "lineal_ascendant": false}   # 直系尊属 (for 同居老親等)
      ],
      "credits": {
        "donations": {"hometown": 0,  # to prefectures / municipalities (ふるさと納税)
                      "other_eligible": 0},   # 共同募金会・日本赤十字社・条例指定
        "housing_loan": {"unused_income_tax_credit": 0,   # 所得税で控除しきれなかった額
                         "income_tax_taxable_income": 0,  # 所得税の課税総所得金額等
                         "limit_rate": 5}                 # 5 or 7 (%)
      }
    }

  Response::

    {
      "lgcode": "…", "fiscal_year": 2025, "fiscal_year_label": "令和7年度", "income_year": 2024,
      "grade": "1",
      "non_taxable": "none" | "all" | "income_levy",   # income_levy = 所得割のみ非課税
      "income": {"salary_income_before_adjustment", "income_adjustment_deduction",
                 "salary_income", "pension_income", "business_income", "real_estate_income",
                 "interest_income", "dividend_income", "miscellaneous_income",
                 "aggregate_income",          # 合計所得金額
                 "total_income"},             # 総所得金額等
      "deductions": {"social_insurance", "small_business_mutual_aid", "life_insurance",
                     "earthquake_insurance", "medical_expenses", "basic", "spouse",
                     "spouse_special", "dependants", "specific_relative", "disability", "widow",
                     "single_parent", "working_student", "total"},
      "dependant_count": 2,                   # 扶養親族の数 (16歳未満を含む)
      "taxable_income": 2380000,              # 課税標準額, floored to 1,000
      "personal_deduction_difference": 50000, # 人的控除額の差
      "income_levy": {
        "municipal":   {"rate": "6", "computed", "adjustment_credit", "dividend_credit",
                        "housing_loan_credit", "donation_credit", "flat_reduction", "amount"},
        "prefectural": {… same …},
        "total"                               # municipal.amount + prefectural.amount
      },
      "per_capita_levy": {"municipal": 3000, "prefectural": 1000, "total": 4000},
      "forest_environment_tax": 1000,
      "total": 240500,                        # 年税額 = 所得割 + 均等割 + 森林環境税
      "steps": [{"code": "taxable_income", "requirement": "JT-0024", "label_ja": "…",
                 "label_en": "…", "amount": 2380000, "formula": "…"}, …]
    }

  ``computed`` is 算出所得割 (taxable × rate, yen fractions dropped); ``amount`` is the 所得割 after
  every credit, floored to 100 yen, never negative. ``steps`` lists the figures in the order they
  are computed; it contains at least the codes salary_income (when there is salary),
  aggregate_income, total_income, deductions_total, taxable_income, income_levy_computed,
  adjustment_credit, income_levy, per_capita_levy, forest_environment_tax and total.

POST /tax/assessments  — 賦課: the calculation body, with taxpayer.family_name, given_name and
  address required, plus ``"collection": {"method": "special" | "ordinary" | "pension",
  "special_collector": {"number": "…", "name": "…"}}`` (the collector only for "special").
  Accepts Idempotency-Key. 201::

    {"id": "…", "version": 1, "fiscal_year": 2025, "taxpayer_number": "…",
     "calculation": {… the calculation response …},
     "collection": {"method": "special",
                    "instalments": [{"period": "2025-06", "amount": 20500,
                                     "method": "special" | "ordinary" | "pension",
                                     "due_date": "2025-06-30" | null}]},
     "history": [{"version": 1, "total": 240500, "reason": null, "at": "…"}]}

GET  /tax/assessments/{id}  — the current version, as above (200).
POST /tax/assessments/{id}/corrections  — 更正: ``{"reason": "…", "input": {…the assessment
  body without fiscal_year and collection…}}``. 201: the assessment as above plus
  ``"previous_total"``, ``"difference"`` (new − previous, may be negative) and ``"notice"`` (the
  F-TAX-05 form, shaped as below).
GET  /tax/assessments/{id}/notices/special-collection  — 特別徴収税額決定通知書 (F-TAX-01);
  409 when the assessment is not collected by salary withholding.
GET  /tax/assessments/{id}/notices/tax-notice  — 納税通知書 (F-TAX-02); 409 when nothing is
  collected by 普通徴収.
  A form answers ``{"form": "F-TAX-01", "name": "…", "items": [{"item": "tax.annual_tax",
  "value": 240500}, …]}`` with the items in the order the standard lists them (optional items may
  be left out); per-instalment items (tax.instalment_period, tax.instalment_amount) carry lists.
POST /tax/certificates  — ``{"assessment_id": "…", "kind": "taxation" | "non_taxation"}``.
  201: the form (F-TAX-03 所得・課税証明書 or F-TAX-04 非課税証明書). A non-taxation certificate
  for a taxed person is refused with 409.
GET  /tax/settings/{fiscal_year}  — ``{"fiscal_year": 2025, "grade": "1",
  "designated_city": false, "municipal_income_rate": "6", "prefectural_income_rate": "4",
  "municipal_per_capita": 3000, "prefectural_per_capita": 1000, "ordinance": null}``
PUT  /tax/settings/{fiscal_year}  — the same fields (rates and per-capita amounts only with
  ``"ordinance": {"name": "…", "promulgated_on": "YYYY-MM-DD"}``). No other field exists.

The kit's throwaway municipality is no 指定都市 and has no ordinance rates, so every expected
amount below uses the standard rates: 所得割 6% + 4%, 均等割 3,000 + 1,000, 森林環境税 1,000.
Worked examples cite the public page they follow; amounts were recomputed by hand from the law.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kiban.standard.kit.core import Context, Failed, check, expect

ROLE = "tax"
STANDARD_LEVIES = 3000 + 1000 + 1000  # 均等割 municipal + prefectural, 森林環境税


# ------------------------------------------------------------------------------ helpers
def body(fiscal_year: int | str = 2025, *, birth_date: str = "1980-06-01", salary: int = 0,
         social: int = 0, grade: str = "1", **extra: Any) -> dict[str, Any]:
    """A calculation request. `extra` keys replace the top-level members (taxpayer, income, …);
    `taxpayer_extra`, `income_extra`, `deductions_extra` are merged into those members."""
    request: dict[str, Any] = {
        "fiscal_year": fiscal_year, "grade": grade,
        "taxpayer": {"birth_date": birth_date, "sex": "1"},
        "income": {"salary_revenue": salary},
        "deductions": {"social_insurance": social},
        "spouse": None, "dependants": [],
    }
    for member in ("taxpayer", "income", "deductions"):
        request[member].update(extra.pop(f"{member}_extra", {}))
    request.update(extra)
    return request


def calculate(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return ctx.ok(ctx.call("POST", "/tax/calculations", ROLE, json=request), 200)


def pick(data: Any, path: str) -> Any:
    """data["a"]["b"] for "a.b"; Failed when the answer lacks it."""
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            raise Failed(f"the answer has no {path}")
        data = data[part]
    return data


def same(data: dict[str, Any], expected: dict[str, Any], case: str) -> None:
    """Every path in `expected` has exactly that value."""
    for path, value in expected.items():
        got = pick(data, path)
        expect(got == value, f"{case}: {path} should be {value!r}, got {got!r}")


def assessment_request(ctx: Context, request: dict[str, Any], method: str) -> dict[str, Any]:
    """A calculation request made into an assessment: a name, an address, a collection method."""
    taxpayer = {**request["taxpayer"], "family_name": "適合", "given_name": ctx.unique("太郎"),
                "address": {"town_code": "0001001", "banchi": "1番地"}}
    collection: dict[str, Any] = {"method": method}
    if method == "special":
        collection["special_collector"] = {"number": "99000001", "name": "適合検査株式会社"}
    return {**request, "taxpayer": taxpayer, "collection": collection}


def assess(ctx: Context, request: dict[str, Any], method: str) -> dict[str, Any]:
    if "collection" not in request:
        request = assessment_request(ctx, request, method)
    return ctx.ok(ctx.call("POST", "/tax/assessments", ROLE, json=request), 201)


def instalments(assessment: dict[str, Any]) -> list[tuple[str, int]]:
    return [(i["period"], i["amount"]) for i in pick(assessment, "collection.instalments")]


def form_items(form: dict[str, Any], form_id: str, wanted: list[str]) -> dict[str, Any]:
    """The form's items as a dict, after checking its ID and that `wanted` appear in order."""
    expect(form.get("form") == form_id, f"expected form {form_id}, got {form.get('form')!r}")
    order = [entry["item"] for entry in form.get("items", [])]
    positions = []
    for item in wanted:
        expect(item in order, f"{form_id} lacks the item {item}")
        positions.append(order.index(item))
    expect(positions == sorted(positions), f"{form_id}: items out of the standard's order")
    return {entry["item"]: entry.get("value") for entry in form["items"]}


# A single employee with 給与収入 5,000,000 and social insurance 750,000 (令和7年度), reused below.
#   給与所得 (別表第五): A = 5,000,000 ÷ 4 = 1,250,000; 1,250,000 × 3.2 − 440,000 = 3,560,000
#   所得控除: 社会保険料 750,000 + 基礎 430,000 = 1,180,000
#   課税標準: 3,560,000 − 1,180,000 = 2,380,000
#   算出所得割: 2,380,000 × 6% = 142,800 (市); × 4% = 95,200 (県)
#   調整控除: 人的控除差 50,000 (基礎); taxable > 2,000,000: 50,000 − 380,000 < 50,000 → 50,000;
#             × 3% = 1,500 (市), × 2% = 1,000 (県)
#   所得割: 141,300 (市) + 94,200 (県) = 235,500; + 均等割 4,000 + 森林環境税 1,000 = 240,500
SINGLE_5M: dict[str, Any] = {"salary": 5_000_000, "social": 750_000}
SINGLE_5M_EXPECTED = {
    "income.salary_income": 3_560_000, "deductions.social_insurance": 750_000,
    "deductions.basic": 430_000, "deductions.total": 1_180_000, "taxable_income": 2_380_000,
    "personal_deduction_difference": 50_000,
    "income_levy.municipal.computed": 142_800, "income_levy.prefectural.computed": 95_200,
    "income_levy.municipal.adjustment_credit": 1_500,
    "income_levy.prefectural.adjustment_credit": 1_000,
    "income_levy.municipal.amount": 141_300, "income_levy.prefectural.amount": 94_200,
    "income_levy.total": 235_500, "per_capita_levy.municipal": 3_000,
    "per_capita_levy.prefectural": 1_000, "forest_environment_tax": 1_000, "total": 240_500,
    "non_taxable": "none",
}


# ------------------------------------------------------------------------------ 1 taxpayers
@check("CT-TAX-001", "JT-0001", "JT-0002",
       title="賦課期日に住所のない者は拒否し、家屋敷のみの者には均等割だけを課す")
def taxpayer_on_january_1(ctx: Context) -> None:
    request = body(**SINGLE_5M, taxpayer_extra={"domicile_on_january_1": "none"})
    ctx.refused(ctx.call("POST", "/tax/calculations", ROLE, json=request),
                field_name="taxpayer.domicile_on_january_1")
    # 家屋敷課税: no 所得割, 均等割 3,000 + 1,000 only (the 森林環境税 is levied where he lives).
    result = calculate(ctx, body(**SINGLE_5M, taxpayer_extra={
        "domicile_on_january_1": "premises_only"}))
    same(result, {"income_levy.total": 0, "income_levy.municipal.amount": 0,
                  "income_levy.prefectural.amount": 0, "per_capita_levy.municipal": 3_000,
                  "per_capita_levy.prefectural": 1_000}, "家屋敷課税")
    resident = calculate(ctx, body(**SINGLE_5M, taxpayer_extra={"domicile_on_january_1": "resident"}))
    same(resident, {"total": 240_500}, "住所を有する者")


@check("CT-TAX-002", "JT-0003",
       title="課税年度は 2025 と R7 のどちらでも同じ結果になり、誤った入力は項目名つきで拒否される")
def fiscal_year_and_input_validation(ctx: Context) -> None:
    gregorian = calculate(ctx, body(2025, **SINGLE_5M))
    japanese = calculate(ctx, body("R7", **SINGLE_5M))
    same(gregorian, {"fiscal_year": 2025, "income_year": 2024, "total": 240_500}, "2025")
    same(japanese, {"fiscal_year": 2025, "income_year": 2024, "total": 240_500}, "R7")
    for year in (1990, "X7", "R99", "2025年"):
        ctx.refused(ctx.call("POST", "/tax/calculations", ROLE, json=body(year, **SINGLE_5M)),
                    field_name="fiscal_year")
    bad: list[tuple[dict[str, Any], str]] = [
        (body(salary=-1), "income.salary_revenue"),
        (body(salary=1_000_000, social=-5), "deductions.social_insurance"),
        (body(income_extra={"pension_revenue": 1.5}), "income.pension_revenue"),
        (body(salary=3_000_000, dependants=[{"birth_date": "2015-02-30", "aggregate_income": 0}]),
         "dependants[0].birth_date"),
        (body(salary=3_000_000, income_extra={"bonus": 100}), "income.bonus"),
        (body(salary=3_000_000, grade="4"), "grade"),
    ]
    for request, field in bad:
        ctx.refused(ctx.call("POST", "/tax/calculations", ROLE, json=request), field_name=field)


# ------------------------------------------------------------------------------ 2 income
@check("CT-TAX-003", "JT-0005", "JT-0007",
       title="給与所得は別表第五(660万円未満)と算式で求め、所得金額調整控除を差し引く(令和7年度)")
def salary_income_r7(ctx: Context) -> None:
    # 給与収入 → 給与所得 (令和7年度). A = 収入 ÷ 4, 千円未満切捨て. Sources: city.hikone.lg.jp 28791,
    # city.noshiro.lg.jp 8186 (the same 別表第五 bands).
    table = [
        (550_999, 0),
        (551_000, 1_000),                # − 550,000
        (1_618_999, 1_068_999),          # − 550,000
        (1_619_500, 1_069_000),          # fixed band
        (1_621_000, 1_070_000),          # fixed band
        (1_623_999, 1_072_000),          # fixed band
        (1_627_999, 1_074_000),          # fixed band
        (1_799_999, 1_177_600),          # A = 449,000; × 2.4 + 100,000
        (1_800_000, 1_180_000),          # A = 450,000; × 2.8 − 80,000
        (3_599_999, 2_437_200),          # A = 899,000; × 2.8 − 80,000
        (5_000_000, 3_560_000),          # A = 1,250,000; × 3.2 − 440,000
        (6_599_999, 4_836_800),          # A = 1,649,000; × 3.2 − 440,000
        (6_600_000, 4_840_000),          # × 0.9 − 1,100,000
        (8_500_000, 6_550_000),          # − 1,950,000
        (10_000_000, 8_050_000),         # − 1,950,000
    ]
    for revenue, income in table:
        result = calculate(ctx, body(salary=revenue))
        same(result, {"income.salary_income": income}, f"給与収入 {revenue:,}")
    # 所得金額調整控除: 給与収入 9,000,000 with a dependant of 15 (under 23):
    #   9,000,000 − 1,950,000 = 7,050,000; (9,000,000 − 8,500,000) × 10% = 50,000 → 7,000,000
    result = calculate(ctx, body(salary=9_000_000, dependants=[
        {"birth_date": "2009-06-01", "aggregate_income": 0, "cohabiting": True}]))
    same(result, {"income.salary_income_before_adjustment": 7_050_000,
                  "income.income_adjustment_deduction": 50_000,
                  "income.salary_income": 7_000_000}, "所得金額調整控除")
    # Without a qualifying relative there is none.
    same(calculate(ctx, body(salary=9_000_000)), {"income.income_adjustment_deduction": 0,
                                                 "income.salary_income": 7_050_000}, "対象外")


@check("CT-TAX-004", "JT-0006", "JT-0016",
       title="令和8年度は給与所得控除の最低額65万円と特定親族特別控除を適用し、令和7年度は従前のまま")
def reform_r8(ctx: Context) -> None:
    # 令和8年度 (2025 income): ≤ 1,899,999 → − 650,000; from 1,900,000 B = 収入を4千円単位に
    # 切捨て, B × 70% − 80,000 (city.hikone.lg.jp 28791; town.nose.osaka.jp 10759).
    table = [
        (650_999, 0), (1_000_000, 350_000), (1_899_999, 1_249_999),
        (1_900_000, 1_250_000),          # 1,900,000 × 0.7 − 80,000
        (1_903_999, 1_250_000),          # B = 1,900,000
        (2_000_000, 1_320_000),          # 2,000,000 × 0.7 − 80,000
        (5_000_000, 3_560_000),          # from 3,600,000 unchanged: A = 1,250,000; × 3.2 − 440,000
    ]
    for revenue, income in table:
        same(calculate(ctx, body(2026, salary=revenue)), {"income.salary_income": income},
             f"令和8年度 給与収入 {revenue:,}")
    # 給与収入 1,800,000, single, no other deduction:
    #   令和7年度: 1,180,000 − 430,000 = 750,000 → 45,000 / 30,000; 調整控除 min(50,000, 750,000)
    #             × 3% / 2% = 1,500 / 1,000 → 43,500 + 29,000 + 5,000 = 77,500
    #   令和8年度: 1,150,000 − 430,000 = 720,000 → 43,200 / 28,800 − 1,500 / 1,000
    #             → 41,700 + 27,800 + 5,000 = 74,500
    same(calculate(ctx, body(2025, salary=1_800_000)),
         {"income.salary_income": 1_180_000, "taxable_income": 750_000, "total": 77_500}, "R7")
    same(calculate(ctx, body(2026, salary=1_800_000)),
         {"income.salary_income": 1_150_000, "taxable_income": 720_000,
          "income_levy.municipal.amount": 41_700, "income_levy.prefectural.amount": 27_800,
          "total": 74_500}, "R8")
    # 特定親族特別控除 (city.tsugaru.aomori.jp 10578): a child of 20 with income 900,000
    # (over the 580,000 limit, ≤ 950,000) gives 450,000; a child of 17 with income 550,000 is a
    # 扶養親族 under the 令和8年度 limit of 580,000 (it was not under 480,000 in 令和7年度).
    relatives = [{"birth_date": "2005-06-01", "aggregate_income": 900_000, "cohabiting": True},
                 {"birth_date": "2008-06-01", "aggregate_income": 550_000, "cohabiting": True}]
    same(calculate(ctx, body(2026, **SINGLE_5M, dependants=relatives)),
         {"deductions.specific_relative": 450_000, "deductions.dependants": 330_000}, "R8 親族")
    older = [{"birth_date": "2004-06-01", "aggregate_income": 900_000, "cohabiting": True},
             {"birth_date": "2007-06-01", "aggregate_income": 550_000, "cohabiting": True}]
    same(calculate(ctx, body(2025, **SINGLE_5M, dependants=older)),
         {"deductions.specific_relative": 0, "deductions.dependants": 0}, "R7 親族")


@check("CT-TAX-005", "JT-0008", "JT-0010",
       title="公的年金等控除は12月31日現在の年齢(65歳)で区分する")
def pension_income(ctx: Context) -> None:
    # 令和7年度 (2024 income). 65 or over on 2024-12-31 = born on or before 1960-01-01.
    cases = [
        ("1960-01-01", 1_000_000, 0),        # 65+: ≤ 1,100,000 → 0
        ("1960-01-02", 1_000_000, 400_000),  # under 65: 1,000,000 − 600,000
        ("1963-06-01", 1_500_000, 850_000),  # under 65: 1,500,000 × 75% − 275,000
        ("1949-06-01", 2_000_000, 900_000),  # 65+: 2,000,000 − 1,100,000
        ("1949-06-01", 5_000_000, 3_565_000),  # 65+: 5,000,000 × 85% − 685,000
    ]
    for birth, revenue, income in cases:
        result = calculate(ctx, body(birth_date=birth, income_extra={"pension_revenue": revenue}))
        same(result, {"income.pension_income": income}, f"{birth} 年金 {revenue:,}")


@check("CT-TAX-006", "JT-0008", "JT-0009", "JT-0011", "JT-0023",
       title="年金と不動産所得のある75歳(医療費控除あり)の年税額")
def pensioner_with_rent(ctx: Context) -> None:
    # After city.konan.lg.jp 1004773 例2 (75歳, 厚生年金 3,000,000, 不動産収入 3,000,000 − 経費
    # 2,000,000), computed exactly (the page rounds and omits 調整控除):
    #   年金所得 3,000,000 − 1,100,000 = 1,900,000; 不動産所得 1,000,000; 合計 2,900,000
    #   医療費控除 150,000 − min(100,000, 2,900,000 × 5% = 145,000) = 50,000
    #   控除 300,000 + 50,000 + 430,000 = 780,000; 課税標準 2,120,000
    #   127,200 / 84,800; 調整控除 base max(50,000 − 120,000, 50,000) = 50,000 → 1,500 / 1,000
    #   125,700 + 83,800 + 5,000 = 214,500
    result = calculate(ctx, PENSIONER)
    same(result, {
        "income.pension_income": 1_900_000, "income.real_estate_income": 1_000_000,
        "income.aggregate_income": 2_900_000, "income.total_income": 2_900_000,
        "deductions.medical_expenses": 50_000, "deductions.total": 780_000,
        "taxable_income": 2_120_000, "income_levy.municipal.amount": 125_700,
        "income_levy.prefectural.amount": 83_800, "total": 214_500}, "年金・不動産")


PENSIONER = body(birth_date="1949-05-05", social=300_000,
                 income_extra={"pension_revenue": 3_000_000,
                               "real_estate": {"revenue": 3_000_000, "expenses": 2_000_000}},
                 deductions_extra={"medical_expenses": {"paid": 150_000, "reimbursed": 0}})


# ------------------------------------------------------------------------------ 3 deductions
@check("CT-TAX-007", "JT-0012", "JT-0020", "JT-0021", "JT-0022", "JT-0024", "JT-0027",
       title="生命保険料・地震保険料控除と端数処理(粕屋町の計算例、令和7年度)")
def kasuya_example(ctx: Context) -> None:
    # town.kasuya.fukuoka.jp 20191225211358 (令和7年度): 本人49歳 給与収入 6,650,000, 社会保険料
    # 535,300; 生命保険 一般旧 30,000 + 一般新 30,000, 個人年金旧 110,000, 介護医療 80,000;
    # 地震保険料 10,000; 配偶者 給与収入 800,000 (所得 250,000); 長女19歳, 長男16歳.
    #   給与所得 6,650,000 × 0.9 − 1,100,000 = 4,885,000
    #   生命保険 一般: 旧 30,000/2 + 7,500 = 22,500, 新 30,000/2 + 6,000 = 21,000, together capped
    #     28,000 (better than 22,500) → 28,000; 年金 旧 > 70,000 → 35,000; 介護医療 > 56,000 →
    #     28,000; 91,000 → capped 70,000
    #   地震 10,000 / 2 = 5,000; 配偶者 330,000; 扶養 450,000 + 330,000; 基礎 430,000
    #   控除計 535,300 + 70,000 + 5,000 + 330,000 + 780,000 + 430,000 = 2,150,300
    #   課税標準 4,885,000 − 2,150,300 = 2,734,700 → 2,734,000 (千円未満切捨て)
    #   算出 164,040 / 109,360; 人的控除差 50,000×2 + 180,000 + 50,000 = 330,000;
    #   330,000 − 734,000 < 50,000 → 50,000 → 1,500 / 1,000
    #   162,540 → 162,500; 108,360 → 108,300 (百円未満切捨て); + 5,000 = 275,800
    result = calculate(ctx, KASUYA)
    same(result, {
        "income.salary_income": 4_885_000, "deductions.social_insurance": 535_300,
        "deductions.life_insurance": 70_000, "deductions.earthquake_insurance": 5_000,
        "deductions.spouse": 330_000, "deductions.dependants": 780_000,
        "deductions.basic": 430_000, "deductions.total": 2_150_300,
        "taxable_income": 2_734_000, "personal_deduction_difference": 330_000,
        "income_levy.municipal.computed": 164_040, "income_levy.prefectural.computed": 109_360,
        "income_levy.municipal.amount": 162_500, "income_levy.prefectural.amount": 108_300,
        "total": 275_800}, "粕屋町の例")
    # Life insurance alone, one category each (new contracts): 20,000 → 20,000/2 + 6,000 = 16,000;
    # 40,000 → 40,000/4 + 14,000 = 24,000; 10,000 → 10,000. Total 50,000.
    alone = calculate(ctx, body(salary=5_000_000, deductions_extra={"life_insurance": {
        "general_new": 20_000, "care_medical": 40_000, "pension_new": 10_000},
        "earthquake_insurance": 60_000}))
    same(alone, {"deductions.life_insurance": 50_000,
                 "deductions.earthquake_insurance": 25_000}, "生命保険・地震保険(上限)")


KASUYA = body(birth_date="1975-06-01", salary=6_650_000, social=535_300,
              deductions_extra={"life_insurance": {"general_old": 30_000, "general_new": 30_000,
                                                   "pension_old": 110_000, "care_medical": 80_000},
                                "earthquake_insurance": 10_000},
              spouse={"birth_date": "1975-03-01", "aggregate_income": 250_000, "cohabiting": True},
              dependants=[{"birth_date": "2005-06-01", "aggregate_income": 0, "cohabiting": True},
                          {"birth_date": "2008-06-01", "aggregate_income": 0, "cohabiting": True}])


@check("CT-TAX-008", "JT-0013", "JT-0014",
       title="配偶者控除(老人配偶者を含む)と配偶者特別控除の区分")
def spouse_deductions(ctx: Context) -> None:
    # 本人 給与収入 5,000,000 (合計所得 3,560,000: the ≤ 9,000,000 column), 令和7年度.
    cases = [
        ("1984-06-01", 0, 330_000, 0),           # 配偶者控除
        ("1952-06-01", 0, 380_000, 0),           # 老人控除対象配偶者 (72 on 2024-12-31)
        ("1984-06-01", 480_000, 330_000, 0),     # at the 480,000 limit: still 配偶者控除
        ("1984-06-01", 1_000_000, 0, 330_000),   # 配偶者特別控除 ≤ 1,000,000
        ("1984-06-01", 1_200_000, 0, 160_000),   # ≤ 1,200,000
        ("1984-06-01", 1_330_000, 0, 30_000),    # ≤ 1,330,000
        ("1984-06-01", 1_400_000, 0, 0),         # over 1,330,000
    ]
    for birth, income, spouse, special in cases:
        result = calculate(ctx, body(**SINGLE_5M, spouse={
            "birth_date": birth, "aggregate_income": income, "cohabiting": True}))
        same(result, {"deductions.spouse": spouse, "deductions.spouse_special": special},
             f"配偶者 {birth} 所得 {income:,}")


@check("CT-TAX-009", "JT-0015", "JT-0017",
       title="扶養控除(一般・特定・老人・同居老親・16歳未満)と同居特別障害者の障害者控除")
def dependant_deductions(ctx: Context) -> None:
    # Ages on 2024-12-31 (令和7年度): 17 一般 330,000; 20 特定 450,000; 75 老人 (別居) 380,000;
    # 80 同居老親 450,000; 10 年少 0 but 同居特別障害者 530,000; 30 with income 500,000 is over the
    # 480,000 limit and is no 扶養親族. 扶養 1,610,000; 扶養親族の数 5 (16歳未満を含む).
    dependants = [
        {"birth_date": "2007-06-01", "aggregate_income": 0, "cohabiting": True},
        {"birth_date": "2004-06-01", "aggregate_income": 0, "cohabiting": True},
        {"birth_date": "1949-06-01", "aggregate_income": 0, "cohabiting": False,
         "lineal_ascendant": True},
        {"birth_date": "1944-06-01", "aggregate_income": 0, "cohabiting": True,
         "lineal_ascendant": True},
        {"birth_date": "2014-06-01", "aggregate_income": 0, "cohabiting": True,
         "disability": "special"},
        {"birth_date": "1994-06-01", "aggregate_income": 500_000, "cohabiting": True},
    ]
    result = calculate(ctx, body(salary=8_000_000, social=1_000_000, dependants=dependants))
    same(result, {"deductions.dependants": 1_610_000, "deductions.disability": 530_000,
                  "dependant_count": 5}, "扶養控除")
    # The taxpayer himself: 障害者 260,000, 特別障害者 300,000.
    for kind, amount in (("ordinary", 260_000), ("special", 300_000)):
        same(calculate(ctx, body(**SINGLE_5M, taxpayer_extra={"disability": kind})),
             {"deductions.disability": amount}, f"本人 {kind}")


@check("CT-TAX-010", "JT-0018", "JT-0026",
       title="ひとり親控除と寡婦控除、ひとり親(母)の調整控除")
def single_parent(ctx: Context) -> None:
    # Mother, 給与収入 3,000,000, 社会保険料 450,000, one child of 10 (令和7年度):
    #   給与所得 A = 750,000; × 2.8 − 80,000 = 2,020,000
    #   控除 450,000 + ひとり親 300,000 + 基礎 430,000 = 1,180,000; 課税標準 840,000
    #   50,400 / 33,600; 人的控除差 基礎 50,000 + ひとり親(母) 50,000 = 100,000;
    #   min(100,000, 840,000) × 3% / 2% = 3,000 / 2,000 → 47,400 + 31,600 + 5,000 = 84,000
    request = body(salary=3_000_000, social=450_000,
                   taxpayer_extra={"sex": "2", "single_parent": True},
                   dependants=[{"birth_date": "2014-06-01", "aggregate_income": 0,
                                "cohabiting": True}])
    same(calculate(ctx, request), {
        "deductions.single_parent": 300_000, "deductions.widow": 0,
        "deductions.dependants": 0, "taxable_income": 840_000,
        "personal_deduction_difference": 100_000,
        "income_levy.municipal.adjustment_credit": 3_000,
        "income_levy.prefectural.adjustment_credit": 2_000, "total": 84_000}, "ひとり親")
    widow = body(salary=3_000_000, social=450_000, taxpayer_extra={"sex": "2", "widow": True})
    same(calculate(ctx, widow), {"deductions.widow": 260_000,
                                 "deductions.single_parent": 0}, "寡婦")
    # Over 5,000,000 of 合計所得金額 neither applies (給与収入 7,000,000 → 5,200,000).
    rich = body(salary=7_000_000, taxpayer_extra={"sex": "2", "widow": True})
    same(calculate(ctx, rich), {"deductions.widow": 0}, "寡婦 所得超過")


@check("CT-TAX-011", "JT-0019",
       title="勤労学生控除(給与収入130万円の学生)")
def working_student(ctx: Context) -> None:
    # 20歳の学生, 給与収入 1,300,000 (令和7年度): 給与所得 750,000 (≤ 750,000 limit)
    #   控除 勤労学生 260,000 + 基礎 430,000 = 690,000; 課税標準 60,000 → 3,600 / 2,400
    #   人的控除差 50,000 + 10,000 = 60,000; min(60,000, 60,000) × 3% / 2% = 1,800 / 1,200
    #   1,800 + 1,200 + 均等割等 5,000 = 8,000 (勤労学生 is not among the 135万円 非課税 groups)
    request = body(birth_date="2004-06-01", salary=1_300_000,
                   taxpayer_extra={"working_student": True})
    same(calculate(ctx, request), {"deductions.working_student": 260_000,
                                   "taxable_income": 60_000,
                                   "income_levy.municipal.amount": 1_800,
                                   "income_levy.prefectural.amount": 1_200,
                                   "non_taxable": "none", "total": 8_000}, "勤労学生")


# ------------------------------------------------------------------------------ 5 non-taxable
@check("CT-TAX-012", "JT-0029", "JT-0030", "JT-0031", "JT-0032", "JT-0017",
       title="非課税限度額(級地・135万円・所得割)と森林環境税の扱い")
def non_taxable(ctx: Context) -> None:
    # Thresholds as city.moka.lg.jp 21005 explains them (there with 3級地 figures).
    # 給与収入 1,000,000 → 給与所得 450,000, single:
    #   1級地: 均等割 350,000 × 1 + 100,000 = 450,000 → 450,000 ≤ 450,000: 非課税; 所得割 also.
    one = calculate(ctx, body(salary=1_000_000, grade="1"))
    same(one, {"non_taxable": "all", "income_levy.total": 0, "per_capita_levy.total": 0,
               "forest_environment_tax": 0, "total": 0}, "1級地 100万円")
    #   3級地: 均等割 280,000 + 100,000 = 380,000 < 450,000 → 均等割 課税; 所得割 threshold
    #   450,000 (no 級地) → 非課税. Tax: 3,000 + 1,000 + 森林環境税 1,000 = 5,000.
    three = calculate(ctx, body(salary=1_000_000, grade="3"))
    same(three, {"non_taxable": "income_levy", "income_levy.total": 0,
                 "per_capita_levy.municipal": 3_000, "per_capita_levy.prefectural": 1_000,
                 "forest_environment_tax": 1_000, "total": 5_000}, "3級地 100万円")
    #   2級地 with a spouse and one child (3 persons): 315,000 × 3 + 100,000 + 189,000 =
    #   1,234,000. 給与収入 1,800,000 → 1,180,000 ≤ 1,234,000 → 均等割 非課税; 所得割:
    #   350,000 × 3 + 100,000 + 320,000 = 1,470,000 → 非課税 too.
    family = calculate(ctx, body(salary=1_800_000, grade="2", spouse={
        "birth_date": "1984-06-01", "aggregate_income": 0, "cohabiting": True},
        dependants=[{"birth_date": "2016-06-01", "aggregate_income": 0, "cohabiting": True}]))
    same(family, {"non_taxable": "all", "total": 0}, "2級地 3人")
    # 障害者 with 合計所得金額 ≤ 1,350,000: 給与収入 2,043,999 → A = 510,000 → 1,348,000: 非課税.
    disabled = {"disability": "ordinary"}
    same(calculate(ctx, body(salary=2_043_999, taxpayer_extra=disabled)),
         {"income.salary_income": 1_348_000, "non_taxable": "all", "total": 0}, "障害者 135万円以下")
    # 給与収入 2,044,000 → 1,350,800 > 1,350,000: taxed. 控除 260,000 + 430,000; 課税標準
    # 660,000; 39,600 / 26,400; 差 60,000 → 1,800 / 1,200; 37,800 + 25,200 + 5,000 = 68,000.
    same(calculate(ctx, body(salary=2_044_000, taxpayer_extra=disabled)),
         {"income.salary_income": 1_350_800, "deductions.disability": 260_000,
          "non_taxable": "none", "total": 68_000}, "障害者 135万円超")
    # 生活扶助: nothing at all, whatever the income.
    same(calculate(ctx, body(**SINGLE_5M, taxpayer_extra={"livelihood_assistance": True})),
         {"non_taxable": "all", "total": 0}, "生活扶助")


# ------------------------------------------------------------------------------ 4 rates
@check("CT-TAX-013", "JT-0004", "JT-0012", "JT-0020", "JT-0025", "JT-0026", "JT-0028", "JT-0029", "JT-0039",
       title="給与収入500万円の単身者: 所得割6%/4%、調整控除、均等割、森林環境税と計算過程")
def single_five_million(ctx: Context) -> None:
    result = calculate(ctx, body(**SINGLE_5M))
    same(result, SINGLE_5M_EXPECTED, "給与収入500万円 単身")
    expect(Decimal(str(pick(result, "income_levy.municipal.rate"))) == Decimal(6),
           "the municipal 所得割 rate should be 6%")
    expect(Decimal(str(pick(result, "income_levy.prefectural.rate"))) == Decimal(4),
           "the prefectural 所得割 rate should be 4%")
    steps = result.get("steps")
    expect(isinstance(steps, list) and bool(steps), "the answer explains its steps")
    assert isinstance(steps, list)
    codes = [s.get("code") for s in steps]
    wanted = ["salary_income", "aggregate_income", "total_income", "deductions_total",
              "taxable_income", "income_levy_computed", "adjustment_credit", "income_levy",
              "per_capita_levy", "forest_environment_tax", "total"]
    for code in wanted:
        expect(code in codes, f"steps lack {code}")
    expect([codes.index(c) for c in wanted] == sorted(codes.index(c) for c in wanted),
           "steps are not in the order of computation")
    for step in steps:
        expect(str(step.get("requirement", "")).startswith("JT-") and bool(step.get("label_ja"))
               and isinstance(step.get("amount"), int), f"a step lacks its basis: {step}")
    by_code = {s["code"]: s["amount"] for s in steps}
    same(by_code, {"salary_income": 3_560_000, "taxable_income": 2_380_000, "total": 240_500},
         "steps")


@check("CT-TAX-014", "JT-0015", "JT-0026",
       title="佐賀市の令和7年度計算例: 配偶者・特定扶養・同居老親と調整控除(課税標準200万円以下)")
def saga_example(ctx: Context) -> None:
    # city.saga.lg.jp/main/1870.html (令和7年度): 42歳 給与収入 6,000,000, 社会保険料 735,000,
    # 旧生命保険 25,000, 介護医療 18,000; 妻40歳 無収入, 子19歳, 子9歳, 母72歳 同居.
    #   給与所得 A = 1,500,000 × 3.2 − 440,000 = 4,360,000
    #   生命保険 25,000/2 + 7,500 = 20,000; 18,000/2 + 6,000 = 15,000 → 35,000
    #   控除 735,000 + 35,000 + 配偶者 330,000 + 特定 450,000 + 同居老親 450,000 + 基礎 430,000
    #        = 2,430,000; 課税標準 1,930,000 → 115,800 / 77,200
    #   人的控除差 配偶者 50,000 + 特定 180,000 + 同居老親 130,000 + 基礎 50,000 = 410,000;
    #   ≤ 2,000,000: min(410,000, 1,930,000) × 3% / 2% = 12,300 / 8,200
    #   所得割 103,500 + 69,000 (as the page); 均等割 at the standard 4,000 (佐賀県 adds 500 for its
    #   own 森林環境税, which the kit's municipality does not) + 森林環境税 1,000 → 177,500
    request = body(birth_date="1982-06-01", salary=6_000_000, social=735_000,
                   deductions_extra={"life_insurance": {"general_old": 25_000,
                                                        "care_medical": 18_000}},
                   spouse={"birth_date": "1984-06-01", "aggregate_income": 0, "cohabiting": True},
                   dependants=[
                       {"birth_date": "2005-06-01", "aggregate_income": 0, "cohabiting": True},
                       {"birth_date": "2015-06-01", "aggregate_income": 0, "cohabiting": True},
                       {"birth_date": "1952-06-01", "aggregate_income": 0, "cohabiting": True,
                        "lineal_ascendant": True}])
    same(calculate(ctx, request), {
        "income.salary_income": 4_360_000, "deductions.life_insurance": 35_000,
        "deductions.dependants": 900_000, "deductions.total": 2_430_000,
        "taxable_income": 1_930_000, "personal_deduction_difference": 410_000,
        "income_levy.municipal.adjustment_credit": 12_300,
        "income_levy.prefectural.adjustment_credit": 8_200,
        "income_levy.municipal.amount": 103_500, "income_levy.prefectural.amount": 69_000,
        "total": 177_500}, "佐賀市の例")


# ------------------------------------------------------------------------------ 6 credits
@check("CT-TAX-015", "JT-0009", "JT-0033",
       title="配当控除: 課税総所得金額1,000万円超の部分と以下の部分(新潟市の例を標準税率で)")
def dividend_credit(ctx: Context) -> None:
    # After the 計算例 of city.niigata.jp (FAQ A0269706): 雑所得 6,000,000 + 配当所得 6,000,000,
    # 社会保険料 50,000. The page uses 指定都市 rates; here the standard ones.
    #   控除 50,000 + 430,000 = 480,000; 課税総所得 11,520,000 → 691,200 / 460,800
    #   調整控除 50,000 base → 1,500 / 1,000
    #   1,000万円超の部分 1,520,000: × 0.8% = 12,160 (市), × 0.6% = 9,120 (県)
    #   残りの配当 6,000,000 − 1,520,000 = 4,480,000: × 1.6% = 71,680, × 1.2% = 53,760
    #   配当控除 83,840 / 62,880
    #   所得割 691,200 − 1,500 − 83,840 = 605,860 → 605,800; 460,800 − 1,000 − 62,880 = 396,920
    #   → 396,900; total 1,002,700 + 5,000 = 1,007,700
    request = body(birth_date="1970-06-01", social=50_000, income_extra={
        "miscellaneous": {"revenue": 6_000_000, "expenses": 0}, "dividend": 6_000_000})
    same(calculate(ctx, request), {
        "income.dividend_income": 6_000_000, "income.miscellaneous_income": 6_000_000,
        "taxable_income": 11_520_000,
        "income_levy.municipal.dividend_credit": 83_840,
        "income_levy.prefectural.dividend_credit": 62_880,
        "income_levy.municipal.amount": 605_800, "income_levy.prefectural.amount": 396_900,
        "total": 1_007_700}, "配当控除")


@check("CT-TAX-016", "JT-0034",
       title="住宅借入金等特別税額控除: 控除しきれなかった額、5%(97,500円)・7%(136,500円)の限度")
def housing_loan_credit(ctx: Context) -> None:
    # The single 5M employee: 所得税の課税総所得金額 3,560,000 − 750,000 − 480,000 = 2,330,000.
    # Split 3/5 市, 2/5 県 (city.onomichi.hiroshima.jp 2252; city.utsunomiya.lg.jp 1003624).
    cases = [
        # unused 64,500 < 5% cap (min(116,500, 97,500)) → 64,500 → 38,700 / 25,800
        # → 141,300 − 38,700 = 102,600; 94,200 − 25,800 = 68,400; + 5,000 = 176,000
        (64_500, 5, 38_700, 25_800, 176_000),
        # unused 150,000, 5%: cap 97,500 → 58,500 / 39,000 → 82,800 + 55,200 + 5,000 = 143,000
        (150_000, 5, 58_500, 39_000, 143_000),
        # unused 150,000, 7%: 2,330,000 × 7% = 163,100 → cap 136,500 → 81,900 / 54,600
        # → 59,400 + 39,600 + 5,000 = 104,000
        (150_000, 7, 81_900, 54_600, 104_000),
    ]
    for unused, rate, municipal, prefectural, total in cases:
        request = body(**SINGLE_5M, credits={"housing_loan": {
            "unused_income_tax_credit": unused, "income_tax_taxable_income": 2_330_000,
            "limit_rate": rate}})
        same(calculate(ctx, request), {
            "income_levy.municipal.housing_loan_credit": municipal,
            "income_levy.prefectural.housing_loan_credit": prefectural, "total": total},
            f"住宅ローン {unused:,} {rate}%")


@check("CT-TAX-017", "JT-0035", "JT-0036", "JT-0027",
       title="ふるさと納税: 基本控除と特例控除、特例控除が所得割の20%で頭打ちになる場合")
def hometown_donation(ctx: Context) -> None:
    # The single 5M employee (所得割 after 調整控除 141,300 / 94,200). 所得税の限界税率: 住民税の
    # 課税総所得 2,380,000 − 人的控除差 50,000 = 2,330,000 → 10% bracket → 90% − 10% × 1.021 = 79.79%.
    # 100,000 yen (city.tonami.toyama.jp gives the formulas):
    #   基本 (100,000 − 2,000) × 6% = 5,880 (市), × 4% = 3,920 (県)
    #   特例 98,000 × 79.79% = 78,194.2 → × 3/5 = 46,916.52 > cap 141,300 × 20% = 28,260;
    #        × 2/5 = 31,277.68 > cap 94,200 × 20% = 18,840 → 28,260 / 18,840
    #   控除 34,140 / 22,760 → 141,300 − 34,140 = 107,160 → 107,100; 94,200 − 22,760 = 71,440
    #   → 71,400; total 178,500 + 5,000 = 183,500
    capped = calculate(ctx, body(**SINGLE_5M, credits={"donations": {"hometown": 100_000}}))
    same(capped, {"income_levy.municipal.donation_credit": 34_140,
                  "income_levy.prefectural.donation_credit": 22_760,
                  "income_levy.municipal.amount": 107_100,
                  "income_levy.prefectural.amount": 71_400, "total": 183_500}, "寄附 100,000")
    # 30,000 yen, under the cap: 基本 28,000 × 6% = 1,680, × 4% = 1,120; 特例 28,000 × 79.79% =
    # 22,341.2 → 13,404.72 / 8,936.48. 141,300 − 15,084.72 = 126,215.28 → 126,200;
    # 94,200 − 10,056.48 = 84,143.52 → 84,100 (whichever way the yen fractions of the credit
    # are rounded). Total 210,300 + 5,000 = 215,300.
    under = calculate(ctx, body(**SINGLE_5M, credits={"donations": {"hometown": 30_000}}))
    same(under, {"income_levy.municipal.amount": 126_200,
                 "income_levy.prefectural.amount": 84_100, "total": 215_300}, "寄附 30,000")
    # A donation of 2,000 yen or less gives nothing.
    same(calculate(ctx, body(**SINGLE_5M, credits={"donations": {"hometown": 2_000}})),
         {"income_levy.municipal.donation_credit": 0, "total": 240_500}, "寄附 2,000")


@check("CT-TAX-018", "JT-0037",
       title="税額控除は所得割を限度とし、均等割・森林環境税を減らさない")
def credits_never_exceed_income_levy(ctx: Context) -> None:
    # The student of CT-TAX-011 (所得割 after 調整控除 1,800 / 1,200) gives 50,000 to a municipality:
    # 基本控除 alone (48,000 × 6% = 2,880; × 4% = 1,920) exceeds the 所得割 → 所得割 0, not below;
    # 均等割 3,000 + 1,000 and 森林環境税 1,000 stay → 5,000.
    request = body(birth_date="2004-06-01", salary=1_300_000,
                   taxpayer_extra={"working_student": True},
                   credits={"donations": {"hometown": 50_000}})
    same(calculate(ctx, request), {
        "income_levy.municipal.amount": 0, "income_levy.prefectural.amount": 0,
        "income_levy.total": 0, "per_capita_levy.total": 4_000, "forest_environment_tax": 1_000,
        "total": 5_000}, "控除しきれない寄附金")


@check("CT-TAX-019", "JT-0038", "JT-0041",
       title="令和6年度の定額減税(本人・配偶者・16歳未満の子で3万円)と6月分を徴収しない特別徴収")
def flat_reduction_r6(ctx: Context) -> None:
    # 令和6年度 (2023 income), employee 給与収入 5,000,000, 社会保険料 750,000, 妻 (所得なし),
    # 子 10歳. town.sekigahara.gifu.jp 5594 / town.hashikami.lg.jp: 1人1万円, 16歳未満も数える,
    # June not collected, the rest in 11 months from July.
    #   控除 750,000 + 配偶者 330,000 + 基礎 430,000 = 1,510,000; 課税標準 2,050,000
    #   123,000 / 82,000; 差 100,000 − 50,000 = 50,000 → 1,500 / 1,000 → 121,500 + 81,000 = 202,500
    #   定額減税 3 × 10,000 = 30,000 → 所得割 172,500; + 5,000 = 177,500
    family: dict[str, Any] = {"spouse": {"birth_date": "1984-06-01", "aggregate_income": 0, "cohabiting": True},
              "dependants": [{"birth_date": "2013-06-01", "aggregate_income": 0,
                              "cohabiting": True}]}
    r6 = body(2024, **SINGLE_5M, **family)
    result = calculate(ctx, r6)
    reduction = pick(result, "income_levy.municipal.flat_reduction") + \
        pick(result, "income_levy.prefectural.flat_reduction")
    expect(reduction == 30_000, f"定額減税 should total 30,000, got {reduction}")
    same(result, {"income_levy.total": 172_500, "total": 177_500}, "令和6年度 定額減税")
    # The same household in 令和7年度 has no 定額減税: 202,500 + 5,000 = 207,500.
    r7 = calculate(ctx, body(2025, **SINGLE_5M, **family))
    same(r7, {"income_levy.municipal.flat_reduction": 0,
              "income_levy.prefectural.flat_reduction": 0, "total": 207_500}, "令和7年度")
    # 特別徴収 in 令和6年度: nothing in June; 177,500 ÷ 11 = 16,136 → 16,100 × 10 = 161,000 for
    # August to May; July 177,500 − 161,000 = 16,500.
    assessment = assess(ctx, r6, "special")
    months = instalments(assessment)
    expect(sum(amount for _, amount in months) == 177_500, "the instalments add up to the tax")
    amounts = dict(months)
    expect(amounts.get("2024-06", 0) == 0, "June is not collected in 令和6年度")
    expect(amounts.get("2024-07") == 16_500, f"July should be 16,500, got {amounts.get('2024-07')}")
    later = [f"2024-{m:02d}" for m in range(8, 13)] + [f"2025-{m:02d}" for m in range(1, 6)]
    for month in later:
        expect(amounts.get(month) == 16_100, f"{month} should be 16,100, got {amounts.get(month)}")


# ------------------------------------------------------------------------------ 7 collection
F01_ITEMS = ["tax.fiscal_year", "tax.special_collector_name", "person.family_name",
             "tax.salary_revenue", "tax.salary_income", "tax.total_income",
             "tax.deduction_social_insurance", "tax.deduction_basic", "tax.deduction_total",
             "tax.taxable_income", "tax.income_levy_municipal", "tax.income_levy_prefectural",
             "tax.per_capita_levy_municipal", "tax.per_capita_levy_prefectural",
             "tax.forest_environment_tax", "tax.annual_tax", "tax.instalment_period",
             "tax.instalment_amount", "tax.appeal_notice"]


@check("CT-TAX-020", "JT-0041", "JT-0042",
       title="特別徴収: 12か月の税額(端数は6月)と特別徴収税額決定通知書")
def special_collection(ctx: Context) -> None:
    # 240,500 ÷ 12 = 20,041 → 20,000 for July to May (11 × 20,000 = 220,000); June 20,500.
    assessment = assess(ctx, body(**SINGLE_5M), "special")
    same(assessment, {"calculation.total": 240_500, "collection.method": "special"}, "賦課")
    amounts = dict(instalments(assessment))
    expect(amounts.get("2025-06") == 20_500, f"June should be 20,500, got {amounts.get('2025-06')}")
    later = [f"2025-{m:02d}" for m in range(7, 13)] + [f"2026-{m:02d}" for m in range(1, 6)]
    for month in later:
        expect(amounts.get(month) == 20_000, f"{month} should be 20,000, got {amounts.get(month)}")
    expect(len(amounts) == 12, f"12 monthly amounts, got {len(amounts)}")
    notice = ctx.ok(ctx.call("GET", f"/tax/assessments/{assessment['id']}/notices/special-collection",
                             ROLE), 200)
    values = form_items(notice, "F-TAX-01", F01_ITEMS)
    same(values, {"tax.annual_tax": 240_500, "tax.taxable_income": 2_380_000,
                  "tax.salary_income": 3_560_000, "tax.income_levy_municipal": 141_300,
                  "tax.income_levy_prefectural": 94_200,
                  "tax.special_collector_name": "適合検査株式会社"}, "F-TAX-01")
    expect(bool(values.get("tax.appeal_notice")), "the notice tells how to appeal")
    # An employee's notice is no 納税通知書 for 普通徴収.
    ctx.refused(ctx.call("GET", f"/tax/assessments/{assessment['id']}/notices/tax-notice", ROLE),
                status=409)


@check("CT-TAX-021", "JT-0043", "JT-0044",
       title="普通徴収: 4期(6・8・10・1月)、千円未満の端数は第1期、納税通知書")
def ordinary_collection(ctx: Context) -> None:
    # The pensioner of CT-TAX-006: 214,500 ÷ 4 = 53,625 → 53,000 for 期 2-4 (159,000);
    # 第1期 214,500 − 159,000 = 55,500.
    assessment = assess(ctx, PENSIONER, "ordinary")
    months = instalments(assessment)
    expect(months == [("2025-06", 55_500), ("2025-08", 53_000), ("2025-10", 53_000),
                      ("2026-01", 53_000)], f"普通徴収の各期: got {months}")
    for entry in pick(assessment, "collection.instalments"):
        due = str(entry.get("due_date") or "")
        expect(due.startswith(entry["period"]), f"納期限 {due!r} should fall in {entry['period']}")
    notice = ctx.ok(ctx.call("GET", f"/tax/assessments/{assessment['id']}/notices/tax-notice",
                             ROLE), 200)
    values = form_items(notice, "F-TAX-02", [
        "tax.fiscal_year", "person.family_name", "tax.total_income", "tax.taxable_income",
        "tax.income_levy_municipal", "tax.per_capita_levy_municipal",
        "tax.forest_environment_tax", "tax.annual_tax", "tax.instalment_period",
        "tax.instalment_amount", "tax.due_date", "tax.appeal_notice"])
    same(values, {"tax.annual_tax": 214_500, "tax.taxable_income": 2_120_000,
                  "tax.instalment_amount": [55_500, 53_000, 53_000, 53_000]}, "F-TAX-02")


@check("CT-TAX-022", "JT-0045",
       title="公的年金からの特別徴収(初年度): 6・8月は普通徴収、10・12・2月は年金から")
def pension_collection(ctx: Context) -> None:
    # 75歳, 年金 3,000,000 only, 社会保険料 300,000: 所得 1,900,000; 課税標準 1,170,000;
    # 70,200 / 46,800 − 1,500 / 1,000 → 68,700 + 45,800 + 5,000 = 119,500.
    request = body(birth_date="1949-05-05", social=300_000,
                   income_extra={"pension_revenue": 3_000_000})
    assessment = assess(ctx, request, "pension")
    same(assessment, {"calculation.total": 119_500}, "年金所得者")
    entries = pick(assessment, "collection.instalments")
    expect(sum(e["amount"] for e in entries) == 119_500, "the instalments add up to the tax")
    methods = {e["period"]: e["method"] for e in entries}
    expect(methods.get("2025-06") == "ordinary" and methods.get("2025-08") == "ordinary",
           f"June and August are 普通徴収 in the first year: {methods}")
    for month in ("2025-10", "2025-12", "2026-02"):
        expect(methods.get(month) == "pension", f"{month} is taken from the pension: {methods}")
    pension = [e["amount"] for e in entries if e["method"] == "pension"]
    expect(len(set(pension[1:])) <= 1, f"the pension instalments are equal: {pension}")


# ------------------------------------------------------------------------------ settings
@check("CT-TAX-024", "JT-0025", "JT-0028", "JT-0040",
       title="条例の登録がない団体の税率は標準税率")
def standard_settings(ctx: Context) -> None:
    settings = ctx.ok(ctx.call("GET", "/tax/settings/2025", ROLE), 200)
    expect(Decimal(str(settings.get("municipal_income_rate"))) == Decimal(6), "市町村民税 6%")
    expect(Decimal(str(settings.get("prefectural_income_rate"))) == Decimal(4), "道府県民税 4%")
    same(settings, {"municipal_per_capita": 3_000, "prefectural_per_capita": 1_000,
                    "ordinance": None}, "標準税率")


# ------------------------------------------------------------------------------ 8 certificates
@check("CT-TAX-023", "JT-0048", "JT-0049",
       title="所得・課税証明書と非課税証明書(課税されている者には交付しない)")
def certificates(ctx: Context) -> None:
    taxed = assess(ctx, KASUYA, "special")
    made = ctx.ok(ctx.call("POST", "/tax/certificates", ROLE,
                           json={"assessment_id": taxed["id"], "kind": "taxation"}), 201)
    values = form_items(made, "F-TAX-03", [
        "tax.fiscal_year", "person.family_name", "person.birth_date", "tax.salary_revenue",
        "tax.salary_income", "tax.total_income", "tax.deduction_total", "tax.dependant_count",
        "tax.taxable_income", "tax.income_levy_municipal", "tax.annual_tax",
        "certificate.issued_on"])
    same(values, {"tax.fiscal_year": 2025, "tax.salary_revenue": 6_650_000,
                  "tax.salary_income": 4_885_000, "tax.total_income": 4_885_000,
                  "tax.deduction_total": 2_150_300, "tax.dependant_count": 2,
                  "tax.taxable_income": 2_734_000, "tax.annual_tax": 275_800}, "F-TAX-03")
    ctx.refused(ctx.call("POST", "/tax/certificates", ROLE,
                         json={"assessment_id": taxed["id"], "kind": "non_taxation"}), status=409)
    exempt = assess(ctx, body(salary=1_000_000, grade="1"), "ordinary")
    same(exempt, {"calculation.non_taxable": "all", "calculation.total": 0}, "非課税者")
    made = ctx.ok(ctx.call("POST", "/tax/certificates", ROLE,
                           json={"assessment_id": exempt["id"], "kind": "non_taxation"}), 201)
    values = form_items(made, "F-TAX-04", ["tax.fiscal_year", "person.family_name",
                                           "tax.aggregate_income", "tax.non_taxable"])
    same(values, {"tax.aggregate_income": 450_000, "tax.non_taxable": "all"}, "F-TAX-04")
    ctx.refused(ctx.call("POST", "/tax/certificates", ROLE,
                         json={"assessment_id": exempt["id"], "kind": "residence"}),
                field_name="kind")


@check("CT-TAX-025", "JT-0050",
       title="他の団体の職員は課税情報を読めず、証明書も出せない")
def isolation(ctx: Context) -> None:
    mine = assess(ctx, body(**SINGLE_5M), "ordinary")
    path = f"{ctx.base()}/tax/assessments/{mine['id']}"
    response = ctx.call("GET", path, ROLE, tenant=ctx.other)
    expect(response.status_code in (403, 404),
           f"another municipality read an assessment: {response.status_code}")
    response = ctx.call("GET", f"/tax/assessments/{mine['id']}", ROLE, tenant=ctx.other)
    expect(response.status_code == 404, f"the id leaks into another municipality: "
           f"{response.status_code}")
    response = ctx.call("POST", "/tax/certificates", ROLE, tenant=ctx.other,
                        json={"assessment_id": mine["id"], "kind": "taxation"})
    expect(response.status_code in (404, 422), f"another municipality certified an assessment: "
           f"{response.status_code}")
    ctx.ok(ctx.call("GET", f"/tax/assessments/{mine['id']}", ROLE), 200)


# ------------------------------------------------------------------------------ 9 corrections
@check("CT-TAX-026", "JT-0051", "JT-0023",
       title="更正: 理由が必須、新しい版と増減額を記録し、従前の版を残す")
def correction(ctx: Context) -> None:
    request = assessment_request(ctx, body(**SINGLE_5M), "ordinary")
    assessment = assess(ctx, request, "ordinary")
    path = f"/tax/assessments/{assessment['id']}/corrections"
    # Medical expenses found later: 300,000 − min(100,000, 3,560,000 × 5% = 178,000) = 200,000.
    # 課税標準 2,380,000 − 200,000 = 2,180,000 → 130,800 / 87,200 − 1,500 / 1,000
    # → 129,300 + 86,200 + 5,000 = 220,500; difference −20,000.
    corrected_input = {k: v for k, v in request.items() if k not in ("fiscal_year", "collection")}
    corrected_input["deductions"] = {**request["deductions"],
                                     "medical_expenses": {"paid": 300_000, "reimbursed": 0}}
    ctx.refused(ctx.call("POST", path, ROLE, json={"input": corrected_input}), field_name="reason")
    unchanged = ctx.ok(ctx.call("GET", f"/tax/assessments/{assessment['id']}", ROLE), 200)
    same(unchanged, {"version": 1, "calculation.total": 240_500}, "a refused correction")
    made = ctx.ok(ctx.call("POST", path, ROLE, json={"reason": "医療費控除の申告", "input": corrected_input}),
                  201)
    same(made, {"version": 2, "previous_total": 240_500, "difference": -20_000,
                "calculation.deductions.medical_expenses": 200_000,
                "calculation.taxable_income": 2_180_000, "calculation.total": 220_500}, "更正")
    expect(sum(amount for _, amount in instalments(made)) == 220_500,
           "the instalments follow the corrected tax")
    expect(pick(made, "notice.form") == "F-TAX-05", "a 税額変更通知書 accompanies the correction")
    current = ctx.ok(ctx.call("GET", f"/tax/assessments/{assessment['id']}", ROLE), 200)
    history = current.get("history", [])
    expect([h.get("version") for h in history] == [1, 2] and history[0].get("total") == 240_500
           and history[1].get("total") == 220_500, f"both versions are kept: {history}")


# ------------------------------------------------------------------------------ 10 not allowed
@check("CT-TAX-027", "JT-0052",
       title="法令にない控除項目や税額の上書きは入力として受け付けない")
def no_custom_deductions(ctx: Context) -> None:
    attempts: list[tuple[dict[str, Any], str]] = [
        (body(**SINGLE_5M, deductions_extra={"municipal_special": 100_000}),
         "deductions.municipal_special"),
        (body(**SINGLE_5M, credits={"municipal_rebate": 5_000}), "credits.municipal_rebate"),
        (body(**SINGLE_5M, override_total=0), "override_total"),
    ]
    for request, field in attempts:
        ctx.refused(ctx.call("POST", "/tax/calculations", ROLE, json=request), field_name=field)
    same(calculate(ctx, body(**SINGLE_5M)), {"total": 240_500}, "after the refusals")


@check("CT-TAX-028", "JT-0053", "JT-0054",
       title="端数処理の変更、条例の根拠のない税率、独自の非課税限度額は設定できない")
def no_unlawful_settings(ctx: Context) -> None:
    ordinance = {"name": "適合町税条例", "promulgated_on": "2025-03-01"}
    attempts: list[tuple[dict[str, Any], str]] = [
        ({"rounding": "half_up", "ordinance": ordinance}, "rounding"),
        ({"taxable_income_rounding": 100, "ordinance": ordinance}, "taxable_income_rounding"),
        ({"municipal_income_rate": "7"}, "ordinance"),
        ({"municipal_per_capita": 3_500}, "ordinance"),
        ({"municipal_income_rate": "-1", "ordinance": ordinance}, "municipal_income_rate"),
        ({"per_capita_exemption_base": 500_000, "ordinance": ordinance},
         "per_capita_exemption_base"),
    ]
    for request, field in attempts:
        ctx.refused(ctx.call("PUT", "/tax/settings/2025", ROLE, json=request), field_name=field)
    settings = ctx.ok(ctx.call("GET", "/tax/settings/2025", ROLE), 200)
    expect(Decimal(str(settings.get("municipal_income_rate"))) == Decimal(6),
           "a refused setting changed the rate")
    same(calculate(ctx, body(**SINGLE_5M)), {"total": 240_500}, "after the refusals")
