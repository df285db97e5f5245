"""The annual assessment's columnar path: the engine's columns built straight from combined
requests (`engine.population_from_combined`) equal those of the per-taxpayer path
(`batch_model.normalise` then `engine.population_from_requests`), and so do the amounts, on
random combined requests with any member absent (Hypothesis)."""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kiban.tax import batch_model, engine
from kiban.tax.model import MunicipalOptions

YEARS = (2024, 2025, 2026)
yen = st.integers(min_value=0, max_value=30_000_000)
small = st.integers(min_value=0, max_value=300_000)
dates = st.dates(min_value=date(1920, 1, 1), max_value=date(2025, 12, 31)).map(date.isoformat)
disability = st.sampled_from(["none", "ordinary", "special"])


def sparse(members: dict[str, Any]) -> Any:
    """A dict with any subset of `members` (absent members take the batch's defaults)."""
    return st.fixed_dictionaries({}, optional=members)


pair = sparse({"revenue": yen, "expenses": yen})
taxpayer = st.fixed_dictionaries({"birth_date": dates}, optional={
    "sex": st.sampled_from(["1", "2"]), "disability": disability, "widow": st.booleans(),
    "single_parent": st.booleans(), "working_student": st.booleans(),
    "livelihood_assistance": st.booleans(), "family_name": st.just("試験"),
    "given_name": st.just("花子"), "domicile_on_january_1": st.just("resident")})
relative = st.fixed_dictionaries({"birth_date": dates}, optional={
    "aggregate_income": st.integers(0, 2_000_000), "disability": disability,
    "cohabiting": st.booleans(), "lineal_ascendant": st.booleans()})
request = st.fixed_dictionaries({"taxpayer": taxpayer}, optional={
    "income": sparse({"salary_revenue": yen, "pension_revenue": small.map(lambda x: x * 20),
                      "interest": small, "dividend": yen, "business": pair,
                      "real_estate": pair, "miscellaneous": pair}),
    "deductions": sparse({
        "social_insurance": yen, "small_business_mutual_aid": small,
        "earthquake_insurance": small,
        "life_insurance": sparse({k: small for k in ("general_new", "general_old",
                                                     "care_medical", "pension_new",
                                                     "pension_old")}),
        "medical_expenses": sparse({"paid": yen, "reimbursed": small})}),
    "spouse": st.none() | relative,
    "dependants": st.lists(relative, max_size=4),
    "credits": sparse({"donations": sparse({"hometown": yen, "other_eligible": small}),
                       "housing_loan": sparse({"unused_income_tax_credit": small,
                                               "income_tax_taxable_income": yen,
                                               "limit_rate": st.sampled_from([5, 7])})}),
})


def _same(a: Any, b: Any) -> None:
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "relatives":
            _same(x, y)
        elif not isinstance(x, np.ndarray):
            assert x == y, f.name
        else:  # dates compared as their integers, so that NaT (no spouse) equals NaT
            assert x.dtype == y.dtype, f.name
            assert np.array_equal(x.view(np.int64) if x.dtype.kind == "M" else x,
                                  y.view(np.int64) if y.dtype.kind == "M" else y), f.name


@settings(max_examples=150, deadline=None)
@given(st.lists(request, max_size=12), st.sampled_from(YEARS), st.booleans())
def test_columns_from_combined_requests_equal_the_per_taxpayer_path(
        requests: list[dict[str, Any]], fiscal_year: int, designated: bool) -> None:
    direct = engine.population_from_combined(requests)
    via_dicts = engine.population_from_requests(
        [batch_model.normalise(r, fiscal_year) for r in requests])
    _same(direct, via_dicts)
    options = MunicipalOptions.standard(designated_city=designated)
    a = engine.compute(direct, fiscal_year, options)
    b = engine.compute(via_dicts, fiscal_year, options)
    for f in fields(a):
        if f.name not in ("fiscal_year", "options"):
            assert np.array_equal(getattr(a, f.name), getattr(b, f.name)), f.name


def test_an_empty_job_and_people_without_income_data() -> None:
    assert len(engine.population_from_combined([])) == 0
    nobody: list[dict[str, Any]] = [{"taxpayer": {"birth_date": "1980-05-05"}, "income": {}, "deductions": {},
               "spouse": None, "dependants": []}]
    outcome = engine.compute(engine.population_from_combined(nobody), 2026, MunicipalOptions())
    assert int(outcome.total[0]) == 0 and bool(outcome.non_taxable_all[0])


class _TruthyEmpty(list[dict[str, Any]]):
    """No records, yet taken through combine's general path (which tests `if not records`)."""

    def __bool__(self) -> bool:
        return True


def test_combine_without_records_takes_a_short_path_to_the_same_request() -> None:
    import json
    for katagaki in ("", "2階"):
        person = batch_model.Person("r1", "山田", "花子", "1950-01-02", "2", "001", "1-2-3",
                                    katagaki)
        short = batch_model.combine(person, [], 2026)
        general = batch_model.combine(person, _TruthyEmpty(), 2026)
        assert json.dumps(short, ensure_ascii=False) == json.dumps(general, ensure_ascii=False)
