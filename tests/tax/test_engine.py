"""The engine against published worked examples (each cites its page and the figures printed
there), the legal tables, and properties: a population gives the same results as its people
one at a time; tax is never negative, rises with salary, and its parts add up."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiban.standard.kit.tax_checks import KASUYA, SINGLE_5M, body
from kiban.tax import engine
from kiban.tax.calculator import calculate_one
from kiban.tax.model import MunicipalOptions
from kiban.tax.parameters import DIRECTORY, parameters_for
from kiban.tax.requests import parse_calculation_request

STANDARD = MunicipalOptions()


def calc(request: dict[str, Any], options: MunicipalOptions = STANDARD) -> dict[str, Any]:
    return calculate_one(parse_calculation_request(request), options)


def pick(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


def test_kasuya_published_example() -> None:
    # https://www.town.kasuya.fukuoka.jp/soshiki/4/1061.html (粕屋町 令和7年度 住民税の計算例):
    # 給与収入 6,650,000 → 給与所得 4,885,000; 所得控除 2,150,300; 課税標準 2,734,000;
    # 所得割 町民税 162,500, 県民税 108,300; 年税額 275,800 (with 森林環境税).
    result = calc(KASUYA)
    assert (result["income"]["salary_income"], result["deductions"]["total"],
            result["taxable_income"]) == (4_885_000, 2_150_300, 2_734_000)
    assert result["income_levy"]["municipal"]["amount"] == 162_500
    assert result["income_levy"]["prefectural"]["amount"] == 108_300
    assert result["total"] == 275_800


def test_saga_published_example() -> None:
    # https://www.city.saga.lg.jp/main/1870.html (佐賀市 令和7年度 計算例): 給与収入 6,000,000,
    # 社会保険料 735,000, 配偶者・特定扶養・同居老親: 給与所得 4,360,000, 課税標準 1,930,000,
    # 調整控除 市 12,300 県 8,200, 所得割 市 103,500 県 69,000.
    request = body(birth_date="1982-06-01", salary=6_000_000, social=735_000,
                   deductions_extra={"life_insurance": {"general_old": 25_000,
                                                        "care_medical": 18_000}},
                   spouse={"birth_date": "1984-06-01", "aggregate_income": 0},
                   dependants=[{"birth_date": "2005-06-01", "aggregate_income": 0},
                               {"birth_date": "2015-06-01", "aggregate_income": 0},
                               {"birth_date": "1952-06-01", "aggregate_income": 0,
                                "cohabiting": True, "lineal_ascendant": True}])
    result = calc(request)
    assert result["income"]["salary_income"] == 4_360_000
    assert result["taxable_income"] == 1_930_000
    assert result["income_levy"]["municipal"]["adjustment_credit"] == 12_300
    assert result["income_levy"]["prefectural"]["adjustment_credit"] == 8_200
    assert result["income_levy"]["municipal"]["amount"] == 103_500
    assert result["income_levy"]["prefectural"]["amount"] == 69_000


@pytest.mark.parametrize(("revenue", "r7", "r8"), [
    # 別表第五 (令和6年分) and 令和7年分 (town.nose.osaka.jp 10759; city.hikone.lg.jp 28791)
    (550_999, 0, 0), (651_000, 101_000, 1_000), (1_619_000, 1_069_000, 969_000),
    (1_700_000, 1_120_000, 1_050_000), (1_900_000, 1_250_000, 1_250_000),
    (4_000_000, 2_760_000, 2_760_000), (7_000_000, 5_200_000, 5_200_000),
    (20_000_000, 18_050_000, 18_050_000),
])
def test_salary_income_tables(revenue: int, r7: int, r8: int) -> None:
    assert calc(body(2025, salary=revenue))["income"]["salary_income"] == r7
    assert calc(body(2026, salary=revenue))["income"]["salary_income"] == r8


def test_designated_city_splits_8_2_and_credits_4_1() -> None:
    # 指定都市: 所得割 8% + 2% (地方税法 第314条の3第2項), 調整控除 4% / 1%.
    designated = MunicipalOptions.standard(designated_city=True)
    result = calc(body(**SINGLE_5M), designated)
    levy = result["income_levy"]
    assert (levy["municipal"]["computed"], levy["prefectural"]["computed"]) == (190_400, 47_600)
    assert (levy["municipal"]["adjustment_credit"],
            levy["prefectural"]["adjustment_credit"]) == (2_000, 500)
    assert (levy["municipal"]["amount"], levy["prefectural"]["amount"]) == (188_400, 47_100)
    assert result["total"] == calc(body(**SINGLE_5M))["total"] == 240_500


def test_ordinance_rates_apply() -> None:
    # 神奈川県の超過課税 (県 4.025%, 均等割 +300) as an ordinance option.
    options = MunicipalOptions(prefectural_income_rate=__import__("decimal").Decimal("4.025"),
                               prefectural_per_capita=1_300)
    result = calc(body(**SINGLE_5M), options)
    assert result["income_levy"]["prefectural"]["computed"] == 95_795  # 2,380,000 × 4.025%
    assert result["per_capita_levy"]["prefectural"] == 1_300


def test_income_adjustment_for_salary_and_pension() -> None:
    # 措置法 第41条の3の3第2項: 給与所得 and 年金所得 both → min(給与,10万) + min(年金,10万) − 10万.
    result = calc(body(birth_date="1958-06-01", salary=2_000_000,
                       income_extra={"pension_revenue": 1_500_000}))
    assert result["income"]["salary_income_before_adjustment"] == 1_320_000
    assert result["income"]["pension_income"] == 400_000  # 65+: 1,500,000 − 1,100,000
    assert result["income"]["income_adjustment_deduction"] == 100_000
    assert result["income"]["salary_income"] == 1_220_000


def test_every_parameter_cites_its_source_and_a_revision_is_a_new_file() -> None:
    assert sorted(p.name for p in DIRECTORY.glob("*.yaml")) == ["2024.yaml", "2025.yaml",
                                                              "2026.yaml"]
    for year in (2024, 2025, 2026):
        p = parameters_for(year)
        assert all(p.sources[k].strip() for k in p.values)
    assert parameters_for(2025).effective_from["relative_income_limit"] == 2024
    assert parameters_for(2026).effective_from["relative_income_limit"] == 2026
    assert parameters_for(2024)["flat_reduction"]["per_person"] == 10_000
    assert parameters_for(2025)["flat_reduction"]["per_person"] == 0


def test_steps_cite_requirement_and_law() -> None:
    steps = calc(body(**SINGLE_5M))["steps"]
    assert all(s["requirement"].startswith("JT-") and s["basis"] and s["label_ja"]
               and s["label_en"] for s in steps)


# ------------------------------------------------------------------------------ properties
def random_requests(rng: np.random.Generator, n: int, year: int) -> list[dict[str, Any]]:
    requests = []
    for _ in range(n):
        birth = date(int(rng.integers(1930, 2006)), int(rng.integers(1, 13)),
                     int(rng.integers(1, 29)))
        dependants = [{"birth_date": date(int(rng.integers(1940, 2024)), 1 + int(rng.integers(0, 12)),
                                          1 + int(rng.integers(0, 28))).isoformat(),
                       "aggregate_income": int(rng.choice([0, 0, 500_000, 900_000])),
                       "disability": str(rng.choice(["none", "none", "ordinary", "special"])),
                       "cohabiting": bool(rng.integers(0, 2)),
                       "lineal_ascendant": bool(rng.integers(0, 2))}
                      for _ in range(int(rng.integers(0, 4)))]
        spouse = None if rng.integers(0, 2) else {
            "birth_date": date(int(rng.integers(1930, 2000)), 5, 5).isoformat(),
            "aggregate_income": int(rng.choice([0, 400_000, 1_000_000, 1_300_000, 2_000_000])),
            "disability": str(rng.choice(["none", "special"]))}
        requests.append(body(
            year, birth_date=birth.isoformat(), salary=int(rng.integers(0, 15_000_000)),
            social=int(rng.integers(0, 1_500_000)), grade=str(rng.integers(1, 4)),
            taxpayer_extra={"sex": str(rng.choice(["1", "2"])),
                            "disability": str(rng.choice(["none", "none", "ordinary"])),
                            "single_parent": bool(rng.integers(0, 4) == 0),
                            "widow": bool(rng.integers(0, 6) == 0)},
            income_extra={"pension_revenue": int(rng.choice([0, 0, 1_200_000, 3_000_000])),
                          "dividend": int(rng.choice([0, 0, 300_000])),
                          "real_estate": {"revenue": int(rng.choice([0, 2_000_000])),
                                          "expenses": int(rng.choice([0, 500_000]))}},
            deductions_extra={"life_insurance": {"general_new": int(rng.integers(0, 100_000)),
                                                 "general_old": int(rng.integers(0, 100_000))},
                              "earthquake_insurance": int(rng.integers(0, 60_000)),
                              "medical_expenses": {"paid": int(rng.choice([0, 300_000])),
                                                   "reimbursed": 0}},
            spouse=spouse, dependants=dependants,
            credits={"donations": {"hometown": int(rng.choice([0, 0, 30_000, 200_000]))},
                     "housing_loan": {"unused_income_tax_credit": int(rng.choice([0, 150_000])),
                                      "income_tax_taxable_income": int(rng.integers(0, 5_000_000)),
                                      "limit_rate": int(rng.choice([5, 7]))}}))
    return requests


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_a_population_equals_its_people_one_at_a_time(year: int) -> None:
    rng = np.random.default_rng(year)
    parsed = [parse_calculation_request(r) for r in random_requests(rng, 300, year)]
    together = engine.compute(engine.population_from_requests(parsed), year, STANDARD)
    batch = [engine.outcome_response(together, i) for i in range(len(parsed))]
    alone = [engine.outcome_response(engine.compute(engine.population_from_requests([p]), year,
                                                    STANDARD), 0) for p in parsed]
    assert batch == alone
    assert (together.total >= 0).all() and len({r["non_taxable"] for r in batch}) >= 2


def test_population_from_columns_matches_requests() -> None:
    parsed = [parse_calculation_request(body(**SINGLE_5M)), parse_calculation_request(KASUYA)]
    from_requests = engine.compute(engine.population_from_requests(parsed), 2025, STANDARD)
    relatives = engine.Relatives.from_columns(
        owner=[1, 1], birth_date=np.array(["2005-06-01", "2008-06-01"], dtype="datetime64[D]"))
    pop = engine.Population.from_columns(
        2, relatives=relatives,
        birth_date=np.array(["1980-06-01", "1975-06-01"], dtype="datetime64[D]"),
        salary_revenue=[5_000_000, 6_650_000], social_insurance=[750_000, 535_300],
        life_general_old=[0, 30_000], life_general_new=[0, 30_000],
        life_pension_old=[0, 110_000], life_care_medical=[0, 80_000],
        earthquake_insurance=[0, 10_000], has_spouse=[False, True],
        spouse_birth_date=np.array(["NaT", "1975-03-01"], dtype="datetime64[D]"),
        spouse_income=[0, 250_000], spouse_cohabiting=[False, True])
    from_columns = engine.compute(pop, 2025, STANDARD)
    assert from_columns.total.tolist() == from_requests.total.tolist() == [240_500, 275_800]
    with pytest.raises(TypeError):
        engine.Population.from_columns(1, salary=[1])


household = st.fixed_dictionaries({
    "year": st.sampled_from([2024, 2025, 2026]),
    "birth_year": st.integers(1930, 2005),
    "social": st.integers(0, 2_000_000),
    "spouse_income": st.one_of(st.none(), st.integers(0, 3_000_000)),
    "children": st.lists(st.integers(1990, 2023), max_size=3),
    "grade": st.sampled_from(["1", "2", "3"]),
    "designated": st.booleans(),
})


def _household(h: dict[str, Any], salary: int) -> dict[str, Any]:
    return body(h["year"], birth_date=f"{h['birth_year']}-07-01", salary=salary, social=h["social"],
                grade=h["grade"],
                spouse=None if h["spouse_income"] is None else {
                    "birth_date": "1980-01-05", "aggregate_income": h["spouse_income"]},
                dependants=[{"birth_date": f"{y}-03-03", "aggregate_income": 0}
                            for y in h["children"]])


@settings(max_examples=30, deadline=None)
@given(h=household, salaries=st.lists(st.integers(0, 30_000_000), min_size=2, max_size=6))
def test_tax_rises_with_salary_never_negative_and_parts_add_up(
        h: dict[str, Any], salaries: list[int]) -> None:
    options = MunicipalOptions.standard(designated_city=h["designated"])
    parsed = [parse_calculation_request(_household(h, s)) for s in sorted(salaries)]
    outcome = engine.compute(engine.population_from_requests(parsed), h["year"], options)
    totals = outcome.total.tolist()
    assert totals == sorted(totals)  # monotone in salary
    for name in ("total", "income_levy", "municipal_income_levy", "prefectural_income_levy",
                 "per_capita", "taxable_income", "deductions_total"):
        assert (getattr(outcome, name) >= 0).all(), name
    assert (outcome.municipal_income_levy + outcome.prefectural_income_levy
            == outcome.income_levy).all()
    assert (outcome.income_levy + outcome.per_capita + outcome.forest_environment_tax
            == outcome.total).all()
    assert (outcome.municipal_income_levy % 100 == 0).all()
    assert (outcome.taxable_income % 1000 == 0).all()


def test_blocks_give_the_same_results_as_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    # A large population is computed in blocks (for the CPU cache); relatives out of order too.
    rng = np.random.default_rng(7)
    parsed = [parse_calculation_request(r) for r in random_requests(rng, 200, 2026)]
    pop = engine.population_from_requests(parsed)
    whole = engine.compute(pop, 2026, STANDARD)
    shuffled = rng.permutation(len(pop.relatives.owner))
    r = pop.relatives
    pop.relatives = engine.Relatives(r.owner[shuffled], r.birth_date[shuffled],
                                     r.aggregate_income[shuffled], r.disability[shuffled],
                                     r.cohabiting[shuffled], r.lineal_ascendant[shuffled])
    monkeypatch.setattr(engine, "BLOCK", 37)
    blocked = engine.compute(pop, 2026, STANDARD)
    assert [engine.outcome_response(blocked, i) for i in range(200)] == \
        [engine.outcome_response(whole, i) for i in range(200)]
