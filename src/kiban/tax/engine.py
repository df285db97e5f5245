"""The resident-tax engine: one vectorised computation (NumPy) for a whole population; a single
taxpayer is a population of one on the same path. No per-row Python loop in `compute`.

Public interface (used by the calculator and by the annual assessment):

- `Population` — columnar input, one row per taxpayer; `Relatives` — a flat table of the spouse
  excluded relatives (扶養親族の候補) with the row index of their taxpayer (`owner`).
  Build one with `population_from_requests(requests)` from validated standard-API calculation
  requests (`kiban.tax.requests.parse_calculation_request`), or directly with
  `Population.from_columns(n, **columns)` (absent columns are zero / False / no spouse).
- `MunicipalOptions` (kiban.tax.model): 級地, 指定都市, rates and 均等割 by ordinance;
  `kiban.tax.service.TaxSettingsService.options(lgcode, fiscal_year)` gives a municipality's.
- `compute(population, fiscal_year, options) -> Outcome` — every intermediate amount as arrays.
- `outcome_response(outcome, i, *, lgcode=None, options=None)` — the standard calculation
  response (kiban/standard/kit/tax_checks.py) of row i, with its `steps` (ja/en, requirement
  and legal basis).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from kiban.tax.model import MunicipalOptions, fiscal_year_label, format_rate
from kiban.tax.parameters import Parameters, parameters_for

Int = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Dates = npt.NDArray[np.datetime64]

NONE, ORDINARY, SPECIAL = 0, 1, 2  # disability codes
DISABILITY_CODES = {"none": NONE, "ordinary": ORDINARY, "general": ORDINARY, "special": SPECIAL}
NOT_A_DATE = np.datetime64("NaT", "D")
PPM = 1_000_000  # rates are held as integer parts per million: 6% = 60,000


def _ppm(percent: str | int | Decimal) -> int:
    return int(Decimal(str(percent)) * 10_000)


# ------------------------------------------------------------------------------ input
@dataclass
class Relatives:
    """Relatives other than the spouse (扶養親族の候補), one row each; `owner` is the row index
    of their taxpayer in the Population. Ages and income limits are judged by the engine for
    the fiscal year (31 December of the income year, 地方税法 第292条・第314条の2)."""

    owner: Int
    birth_date: Dates
    aggregate_income: Int  # 合計所得金額
    disability: npt.NDArray[np.int8]
    cohabiting: Bool
    lineal_ascendant: Bool  # 直系尊属 (同居老親等)

    @staticmethod
    def from_columns(owner: Any, birth_date: Any, aggregate_income: Any = None,
                     disability: Any = None, cohabiting: Any = None,
                     lineal_ascendant: Any = None) -> Relatives:
        owners = np.asarray(owner, dtype=np.int64)
        m = len(owners)
        return Relatives(
            owner=owners, birth_date=np.asarray(birth_date, dtype="datetime64[D]"),
            aggregate_income=_col(aggregate_income, m, np.int64),
            disability=_col(disability, m, np.int8),
            cohabiting=_col(cohabiting, m, np.bool_, True),
            lineal_ascendant=_col(lineal_ascendant, m, np.bool_))

    @staticmethod
    def empty() -> Relatives:
        return Relatives.from_columns([], [])


def _col(values: Any, n: int, dtype: Any, default: Any = 0) -> Any:
    if values is None:
        return np.full(n, default, dtype=dtype)
    array = np.asarray(values, dtype=dtype)
    if array.shape != (n,):
        raise ValueError(f"column of length {array.shape} where {n} rows were expected")
    return array


@dataclass
class Population:
    """One row per taxpayer. Money in integer yen (int64), dates datetime64[D], codes int8."""

    birth_date: Dates
    female: Bool                       # sex "2": 調整控除 of ひとり親 (母 50,000 / 父 10,000)
    disability: npt.NDArray[np.int8]   # 0 none, 1 障害者, 2 特別障害者
    widow: Bool
    single_parent: Bool
    working_student: Bool
    livelihood_assistance: Bool        # 生活扶助: 非課税
    premises_only: Bool                # 家屋敷課税: 均等割 only
    salary_revenue: Int                # 給与収入
    pension_revenue: Int               # 公的年金等の収入
    business_income: Int               # revenue − expenses (a loss offsets other income)
    real_estate_income: Int
    miscellaneous_income: Int          # 雑所得 (other than public pensions), floored at 0
    interest_income: Int
    dividend_income: Int               # 総合課税の配当所得 (配当控除 applies)
    social_insurance: Int              # amounts PAID below; the engine computes deductions
    small_business_mutual_aid: Int
    life_general_new: Int
    life_general_old: Int
    life_care_medical: Int
    life_pension_new: Int
    life_pension_old: Int
    earthquake_insurance: Int
    medical_paid: Int
    medical_reimbursed: Int
    has_spouse: Bool
    spouse_birth_date: Dates
    spouse_income: Int                 # 配偶者の合計所得金額
    spouse_disability: npt.NDArray[np.int8]
    spouse_cohabiting: Bool
    donation_hometown: Int             # 都道府県・市区町村への寄附金 (ふるさと納税)
    donation_other: Int                # 条例指定等の寄附金
    housing_unused_credit: Int         # 所得税で控除しきれなかった住宅借入金等特別控除額
    housing_income_tax_taxable: Int    # 所得税の課税総所得金額等
    housing_rate7: Bool                # 7% (136,500) limit instead of 5% (97,500)
    relatives: Relatives = field(default_factory=Relatives.empty)

    def __len__(self) -> int:
        return len(self.birth_date)

    @staticmethod
    def from_columns(n: int, *, relatives: Relatives | None = None,
                     **columns: Any) -> Population:
        """A population of n rows; every column not given is zero / False (no spouse)."""
        values: dict[str, Any] = {}
        for f in fields(Population):
            if f.name == "relatives":
                continue
            given = columns.pop(f.name, None)
            if f.name in ("birth_date", "spouse_birth_date"):
                values[f.name] = (np.full(n, NOT_A_DATE) if given is None
                                  else np.asarray(given, dtype="datetime64[D]"))
                if values[f.name].shape != (n,):
                    raise ValueError(f"{f.name}: expected {n} rows")
            elif f.name in ("disability", "spouse_disability"):
                values[f.name] = _col(given, n, np.int8)
            elif f.type in ("Bool",):
                values[f.name] = _col(given, n, np.bool_)
            else:
                values[f.name] = _col(given, n, np.int64)
        if columns:
            raise TypeError(f"unknown columns: {', '.join(sorted(columns))}")
        return Population(**values, relatives=relatives or Relatives.empty())


# ------------------------------------------------------------------------------ output
@dataclass
class Outcome:
    """Every intermediate amount, one array element per taxpayer (int64 yen unless noted)."""

    fiscal_year: int
    options: MunicipalOptions
    age: Int                                  # at 31 December of the income year
    salary_income_before_adjustment: Int
    income_adjustment_deduction: Int          # 所得金額調整控除
    salary_income: Int
    pension_income: Int
    business_income: Int
    real_estate_income: Int
    interest_income: Int
    dividend_income: Int
    miscellaneous_income: Int
    aggregate_income: Int                     # 合計所得金額
    total_income: Int                         # 総所得金額等
    social_insurance: Int
    small_business_mutual_aid: Int
    life_insurance: Int
    earthquake_insurance: Int
    medical_expenses: Int
    basic: Int
    spouse: Int
    spouse_special: Int
    dependants: Int
    specific_relative: Int
    disability: Int
    widow: Int
    single_parent: Int
    working_student: Int
    deductions_total: Int
    dependant_count: Int                      # 扶養親族の数 (16歳未満を含む)
    taxable_income: Int                       # 課税標準額 (千円未満切捨て)
    personal_deduction_difference: Int        # 人的控除額の差
    non_taxable_all: Bool
    non_taxable_income_levy: Bool             # 所得割のみ非課税 (附則第3条の3), not when all
    no_income_levy: Bool                      # no 所得割 at all: non-taxable or 家屋敷のみ
    municipal_computed: Int
    prefectural_computed: Int
    municipal_adjustment_credit: Int
    prefectural_adjustment_credit: Int
    municipal_dividend_credit: Int
    prefectural_dividend_credit: Int
    municipal_housing_loan_credit: Int
    prefectural_housing_loan_credit: Int
    municipal_donation_credit: Int
    prefectural_donation_credit: Int
    municipal_flat_reduction: Int
    prefectural_flat_reduction: Int
    municipal_income_levy: Int
    prefectural_income_levy: Int
    income_levy: Int
    municipal_per_capita: Int
    prefectural_per_capita: Int
    per_capita: Int
    forest_environment_tax: Int
    total: Int
    special_credit_ppm: Int                   # ふるさと特例控除の割合 (ppm; 0 without donation)

    def __len__(self) -> int:
        return len(self.total)


# ------------------------------------------------------------------------------ helpers
SMALL_TABLE = 16  # up to this many bounds, comparisons beat a binary search per element


def _band(x: Int, starts: Int) -> Int:
    """Index of the band [starts[k], starts[k+1]) holding each x (0 below the first)."""
    if len(starts) <= SMALL_TABLE:
        index = np.zeros(len(x), dtype=np.int64)
        for bound in starts[1:]:  # a few table rows, not taxpayers
            index += x >= bound
        return index
    return np.maximum(np.searchsorted(starts, x, side="right") - 1, 0)


def _upto(x: Int, uppers: Int) -> Int:
    """Index of the first inclusive upper bound ≥ x (len(uppers) when above all)."""
    if len(uppers) <= SMALL_TABLE:
        index = np.zeros(len(x), dtype=np.int64)
        for bound in uppers:
            index += x > bound
        return index
    return np.searchsorted(uppers, x, side="left")


def _rate(x: Int, ppm: int | Int) -> Int:
    """x × rate, yen fractions dropped (x ≥ 0)."""
    return x * ppm // PPM


def _ceil_div(x: Int, d: int | Int) -> Int:
    return -(-x // d)


_FIRST_DAY = np.datetime64("1870-01-01", "D")
_LAST_DAY = np.datetime64("2100-12-31", "D")
_FIRST_INDEX = int(_FIRST_DAY.astype(np.int64))              # days since 1970-01-01
_LAST_INDEX = int((_LAST_DAY - _FIRST_DAY).astype(np.int64))


@cache
def _age_table(year: int) -> tuple[Int, Int]:
    """Age at 31 December of `year` and on the 1 January after it, for every day of birth from
    1870 to 2100: the engine then reads ages with one gather instead of calendar arithmetic."""
    days = np.arange(_FIRST_DAY, _LAST_DAY + 1)
    birth_year = days.astype("datetime64[Y]").astype(np.int64) + 1970
    starts = days.astype("datetime64[Y]").astype("datetime64[D]")
    at_year_end = (year - birth_year + (days == starts)).astype(np.int64)
    on_january_1 = at_year_end + (days == starts + 1)
    return at_year_end, on_january_1


@cache
def _age_table16(year: int) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]]:
    """The same tables as int16 (ages lie within ±250): a quarter of the memory to gather from,
    so they stay in the CPU cache."""
    at_year_end, on_january_1 = _age_table(year)
    return at_year_end.astype(np.int16), on_january_1.astype(np.int16)


def _day_index(birth: Dates) -> Int:
    """Row of each date in the age tables: days since 1870-01-01 read from the dates' integer
    representation, clipped (NaT, the smallest int64, and earlier dates give row 0)."""
    index = np.asarray(birth, dtype="datetime64[D]").view(np.int64) - _FIRST_INDEX
    np.clip(index, 0, _LAST_INDEX, out=index)
    return index


def ages_at_year_end(birth: Dates, year: int) -> Int:
    """年齢 at 31 December of `year` (所得税法 第85条; 年齢計算ニ関スル法律: one is a year older
    on the day before the birthday, so those born on 1 January are counted a year older)."""
    return _age_table(year)[0][_day_index(birth)]


def ages_on_january_1(birth: Dates, year: int) -> Int:
    """年齢 on 1 January of `year` + 1 (賦課期日): those born on 2 January are a year older."""
    return _age_table(year)[1][_day_index(birth)]


@dataclass(frozen=True)
class _Tables:
    """The parameters of a fiscal year as NumPy arrays, built once."""

    p: Parameters
    salary: Int
    pension_under: Int
    pension_over: Int
    pension_steps: Int
    basic_uppers: Int
    basic_amounts: Int
    spouse: Int
    spouse_elderly: Int
    spouse_special: Int
    life_new: Int
    life_old: Int
    specific_relative: Int
    special_brackets_upper: Int
    special_brackets_ppm: Int
    spouse_special_diff: Int
    specific_relative_diff: Int
    salary_units: tuple[int, ...]    # the salary table's rounding units other than 1
    salary_unit: Int                 # the salary table's columns, contiguous for np.take
    salary_rate: Int
    salary_constant: Int
    spouse_columns: Int              # the taxpayer's income columns of the spouse tables
    spouse_diff: Int                 # 人的控除差 of the spouse by column (0 past the last)
    spouse_elderly_diff: Int
    disability_amount: Int           # the taxpayer's 障害者控除 by code (none, 障害者, 特別)
    disability_diff: Int


@cache
def _tables(fiscal_year: int) -> _Tables:
    p = parameters_for(fiscal_year)
    basic = np.array(p["basic_deduction"], dtype=np.int64)
    brackets = p["donation"]["special_brackets"]
    spouse_special_diff = p["personal_difference"]["spouse_special"]
    specific_diff = p["personal_difference"]["specific_relative"]
    salary = np.array(p["salary_income_table"], dtype=np.int64)
    low, high = p["specific_dependant_ages"]
    if not int(p["dependant_min_age"]) <= low <= high < int(p["elderly_age"]):
        raise ValueError("the engine's dependant categories assume 16 ≤ 19 ≤ 22 < 70")
    da, dd = p["disability_deduction"], p["personal_difference"]["disability"]
    return _Tables(
        p=p,
        salary=salary,
        pension_under=np.array(p["pension_table_under_65"], dtype=np.int64),
        pension_over=np.array(p["pension_table_65_and_over"], dtype=np.int64),
        pension_steps=np.array([[0, 0], *p["pension_other_income_steps"]], dtype=np.int64),
        basic_uppers=basic[:, 0], basic_amounts=np.append(basic[:, 1], 0),
        spouse=np.array([*p["spouse_deduction"], 0], dtype=np.int64),
        spouse_elderly=np.array([*p["spouse_deduction_elderly"], 0], dtype=np.int64),
        spouse_special=np.array([*p["spouse_special_table"], [2**62, 0, 0, 0]], dtype=np.int64),
        life_new=np.array(p["life_insurance_new"], dtype=np.int64),
        life_old=np.array(p["life_insurance_old"], dtype=np.int64),
        specific_relative=np.array([*p["specific_relative_table"], [2**62, 0]], dtype=np.int64),
        special_brackets_upper=np.array([b[0] for b in brackets], dtype=np.int64),
        special_brackets_ppm=np.array([_ppm(b[1]) for b in brackets], dtype=np.int64),
        spouse_special_diff=np.array(spouse_special_diff or np.zeros((0, 5)), dtype=np.int64
                                     ).reshape(-1, 5),
        specific_relative_diff=np.array([*specific_diff, [2**62, 0]], dtype=np.int64
                                        ).reshape(-1, 2),
        salary_units=tuple(sorted({int(u) for u in salary[:, 1]} - {1})),
        salary_unit=salary[:, 1].copy(), salary_rate=salary[:, 2].copy(),
        salary_constant=salary[:, 3].copy(),
        spouse_columns=np.array(p["spouse_taxpayer_income_columns"], dtype=np.int64),
        spouse_diff=np.array([*p["personal_difference"]["spouse"], 0], dtype=np.int64),
        spouse_elderly_diff=np.array([*p["personal_difference"]["spouse_elderly"], 0],
                                     dtype=np.int64),
        disability_amount=np.array([0, da["ordinary"], da["special"]], dtype=np.int64),
        disability_diff=np.array([0, dd["ordinary"], dd["special"]], dtype=np.int64),
    )


def _life(premium: Int, table: Int) -> Int:
    """生命保険料控除 of one kind of contract (地方税法 第314条の2第7項), yen fractions rounded up.
    Computed only where a premium was paid (most people pay none of a given kind). The
    table's divisors are powers of two (1, 2, 4): ⌈a / 2^s⌉ = (a + 2^s − 1) >> s exactly, for
    any integer a, and much faster than a division by an array."""
    paid = np.flatnonzero(premium)
    amount: Int = np.zeros(len(premium), dtype=np.int64)
    if len(paid) == 0:
        return amount
    x = premium[paid]
    k = _band(x, table[:, 0])
    numerator, denominator, constant = (np.ascontiguousarray(table[:, c]) for c in (1, 2, 3))
    if ((denominator > 0) & ((denominator & (denominator - 1)) == 0)).all():
        value = x * numerator.take(k)
        value += (denominator - 1).take(k)
        value >>= _log2(denominator).take(k)
        value += constant.take(k)
        amount[paid] = value
        return amount
    num, const = numerator.take(k), constant.take(k)
    amount[paid] = np.where(num == 0, const, _ceil_div(x * num, denominator.take(k)) + const)
    return amount


def _log2(powers: Int) -> Int:
    return np.array([int(v).bit_length() - 1 for v in powers], dtype=np.int64)


def _bincount(owner: Int, weights: Any, n: int) -> Int:
    """Sum of `weights` per owner: float64 sums of whole numbers below 2**53 are exact."""
    if len(owner) == 0:
        return np.zeros(n, dtype=np.int64)
    return np.bincount(owner, weights=np.asarray(weights, dtype=np.float64),
                       minlength=n).astype(np.int64)


# ------------------------------------------------------------------------------ the engine
BLOCK = 65_536  # rows per block: every intermediate array of a block stays in the CPU cache


def compute(pop: Population, fiscal_year: int, options: MunicipalOptions) -> Outcome:
    """Assess every row of `pop` for `fiscal_year` (課税年度; income of fiscal_year − 1) in
    the municipality described by `options`. Vectorised: no per-row Python code. A large
    population is taken in blocks of BLOCK rows (whole arrays each), since a chain of NumPy
    operations on arrays that fit in the cache runs several times faster than on arrays that
    do not; each block's amounts are written straight into the outcome's arrays, allocated
    once. The results are the same as in one pass."""
    n = len(pop)
    inputs = {name: getattr(pop, source) for name, source in _PASSED_THROUGH.items()}
    if n <= BLOCK:
        parts = _compute(pop, fiscal_year, options)
        for name in _NARROW:
            parts[name] = parts[name].astype(np.int32)
        return Outcome(fiscal_year=fiscal_year, options=options, **inputs, **parts)
    out = {name: np.empty(n, dtype=_dtype(name)) for name in _COMPUTED}
    rel = pop.relatives
    order = None if _is_sorted(rel.owner) else np.argsort(rel.owner, kind="stable")
    owner = rel.owner if order is None else rel.owner[order]
    starts = list(range(0, n, BLOCK))
    cuts = np.searchsorted(owner, [*starts, n])
    for k, start in enumerate(starts):
        stop = min(start + BLOCK, n)
        lo, hi = int(cuts[k]), int(cuts[k + 1])
        picked = slice(lo, hi) if order is None else order[lo:hi]
        relatives = Relatives(owner[lo:hi] - start, rel.birth_date[picked],
                              rel.aggregate_income[picked], rel.disability[picked],
                              rel.cohabiting[picked], rel.lineal_ascendant[picked])
        block = Population(**{f.name: getattr(pop, f.name)[start:stop]
                              for f in fields(Population) if f.name != "relatives"},
                           relatives=relatives)
        for name, values in _compute(block, fiscal_year, options).items():
            out[name][start:stop] = values
    return Outcome(fiscal_year=fiscal_year, options=options, **inputs, **out)


# Outcome fields that are input columns as given (not copied block by block).
_PASSED_THROUGH = {"business_income": "business_income",
                   "real_estate_income": "real_estate_income",
                   "interest_income": "interest_income", "dividend_income": "dividend_income",
                   "social_insurance": "social_insurance",
                   "small_business_mutual_aid": "small_business_mutual_aid"}
# Amounts the law bounds far below 2**31 yen are kept as int32 (half the memory to write).
_NARROW = ("age", "life_insurance", "earthquake_insurance", "medical_expenses", "basic",
           "spouse", "spouse_special", "dependants", "specific_relative", "disability", "widow",
           "single_parent", "working_student", "dependant_count",
           "personal_deduction_difference", "municipal_adjustment_credit",
           "prefectural_adjustment_credit", "municipal_housing_loan_credit",
           "prefectural_housing_loan_credit", "municipal_flat_reduction",
           "prefectural_flat_reduction", "municipal_per_capita", "prefectural_per_capita",
           "per_capita", "forest_environment_tax", "special_credit_ppm")
_FLAGS = ("non_taxable_all", "non_taxable_income_levy", "no_income_levy")
_COMPUTED = tuple(f.name for f in fields(Outcome)
                  if f.name not in ("fiscal_year", "options", *_PASSED_THROUGH))
_COUNT_BITS = 21  # a packed sum: relatives counted in the low bits, qualifying ones above


def _dtype(name: str) -> Any:
    return np.bool_ if name in _FLAGS else np.int32 if name in _NARROW else np.int64


def _is_sorted(values: Int) -> bool:
    return bool(len(values) < 2 or (values[1:] >= values[:-1]).all())


def _table(*values: Any) -> Int:
    return np.array([int(v) for v in values], dtype=np.int64)


def _compute(pop: Population, fiscal_year: int, options: MunicipalOptions) -> dict[str, Any]:
    """One block: every computed amount of the Outcome by name (int64 unless a flag).
    Rules that concern few taxpayers (pensions, spouses, insurance, medical expenses, the
    credits) are evaluated on their rows only; the rest in place where an array is not kept."""
    t = _tables(fiscal_year)
    p = t.p
    n = len(pop)
    year = fiscal_year - 1  # 所得の年 (地方税法 第32条第1項・第313条第1項: 前年の所得)
    at_year_end, on_january_1 = _age_table16(year)
    day = _day_index(pop.birth_date)
    age = at_year_end.take(day)
    limit = int(p["relative_income_limit"])
    ages = p["specific_dependant_ages"]
    elderly_age = int(p["elderly_age"])
    pdiff = p["personal_difference"]
    da = p["disability_deduction"]
    # disability codes 0 none, 1 障害者, 2 特別障害者, 3 同居特別障害者 -> deduction / 人的控除差
    dis_amount = _table(0, da["ordinary"], da["special"], da["special_cohabiting"])
    dis_diff = _table(0, pdiff["disability"]["ordinary"], pdiff["disability"]["special"],
                      pdiff["disability"]["special_cohabiting"])

    # Relatives (地方税法 第292条第1項第7号〜第9号の2): judged at 31 December of the income year.
    rel = pop.relatives
    owner = rel.owner
    if len(owner):
        r_age = at_year_end.take(_day_index(rel.birth_date))
        r_dep = rel.aggregate_income <= limit                          # 扶養親族
        r_specific_age = (r_age >= ages[0]) & (r_age <= ages[1])
        # 0 none (or under 16: 年少), 1 一般, 2 特定 (19–22), 3 老人 (70+), 4 同居老親等, by
        # sums of comparisons (the age bands follow one another: 16 ≤ 19, 22 < 70, checked
        # in _tables) instead of nested np.where.
        r_elderly = r_age >= elderly_age
        category = (r_age >= int(p["dependant_min_age"])).astype(np.int64)
        category += r_specific_age
        category += r_elderly * 2
        category += r_elderly & rel.lineal_ascendant & rel.cohabiting
        category *= r_dep
        dd, dp = p["dependant_deduction"], pdiff["dependant"]
        dependants = _bincount(owner, _table(
            0, dd["general"], dd["specific"], dd["elderly"], dd["cohabiting_parent"]
        ).take(category), n)
        r_dis = rel.disability
        r_dcode = r_dis.astype(np.int64)  # np.take is slow with int8 indices
        r_dcode += (r_dis == SPECIAL) & rel.cohabiting
        r_dcode *= r_dep
        rel_disability = _bincount(owner, dis_amount.take(r_dcode), n)
        r_diff = _table(0, dp["general"], dp["specific"], dp["elderly"],
                        dp["cohabiting_parent"]).take(category)
        r_diff += dis_diff.take(r_dcode)
        # 特定親族特別控除 (令和8年度から): 19–22, income above the limit (few relatives).
        specific_relative = np.zeros(n, dtype=np.int64)
        sr = np.flatnonzero(~r_dep & r_specific_age)
        if len(sr):
            income = rel.aggregate_income[sr]
            specific_relative = _bincount(owner[sr], t.specific_relative[
                _upto(income, t.specific_relative[:, 0]), 1], n)
            r_diff[sr] += t.specific_relative_diff[_upto(income, t.specific_relative_diff[:, 0]), 1]
        rel_difference = _bincount(owner, r_diff, n)
        qualifying = r_dep & ((r_age < p["income_adjustment"]["relative_age_under"])
                              | (r_dis == SPECIAL))
        packed = _bincount(owner, r_dep + qualifying * (1 << _COUNT_BITS), n)
        dependant_count = packed & ((1 << _COUNT_BITS) - 1)
        adjustment_relative = packed >= (1 << _COUNT_BITS)
    else:
        dependants, rel_disability, specific_relative, rel_difference, dependant_count = (
            np.zeros(n, dtype=np.int64) for _ in range(5))
        adjustment_relative = np.zeros(n, dtype=np.bool_)

    # 給与所得 (所得税法 第28条・別表第五).
    revenue = pop.salary_revenue
    k = _band(revenue, t.salary[:, 0])
    salary_before = revenue.copy()
    for unit in t.salary_units:  # 令和8年度: 収入を4千円単位に切捨て in some bands
        rows = np.flatnonzero(t.salary_unit.take(k) == unit)
        salary_before[rows] = revenue[rows] // unit * unit
    salary_before *= t.salary_rate.take(k)
    salary_before //= 1000
    salary_before += t.salary_constant.take(k)
    np.maximum(salary_before, 0, out=salary_before)
    # 所得金額調整控除 (租税特別措置法 第41条の3の3 第1項).
    ia = p["income_adjustment"]
    adjustment = np.zeros(n, dtype=np.int64)
    salary_income = salary_before.copy()
    rows = np.flatnonzero(revenue > ia["threshold"])  # high salaries only
    if len(rows):
        spouse_special_disabled = (pop.has_spouse[rows] & (pop.spouse_income[rows] <= limit)
                                   & (pop.spouse_disability[rows] == SPECIAL))
        qualifies = ((pop.disability[rows] == SPECIAL) | spouse_special_disabled
                     | adjustment_relative[rows])
        amount = _ceil_div((np.minimum(revenue[rows], ia["ceiling"])
                            - ia["threshold"]) * int(ia["rate_percent"]), 100)
        adjustment[rows] = np.where(qualifies, np.minimum(amount, salary_before[rows]), 0)
        salary_income[rows] -= adjustment[rows]

    # 公的年金等に係る雑所得 (所得税法 第35条第4項; 措置法 第41条の15の3).
    misc = np.maximum(pop.miscellaneous_income, 0)
    other_income = pop.business_income + pop.real_estate_income  # all but salary and pension
    other_income += pop.interest_income
    other_income += pop.dividend_income
    other_income += misc
    pension = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(pop.pension_revenue > 0)  # pensioners only
    if len(rows):
        revenue_p = pop.pension_revenue[rows]
        other = np.maximum(salary_income[rows] + other_income[rows], 0)
        steps = t.pension_steps
        shift = steps[_band(other, steps[:, 0] + 1), 1]  # "超える": above 10,000,000
        ku = _band(revenue_p, t.pension_under[:, 0])
        ko = _band(revenue_p, t.pension_over[:, 0])
        under_income = revenue_p * t.pension_under[ku, 1] // 1000 + t.pension_under[ku, 2]
        over_income = revenue_p * t.pension_over[ko, 1] // 1000 + t.pension_over[ko, 2]
        over = age[rows] >= int(p["pension_age"])
        pension_r = np.maximum(np.where(over, over_income, under_income) + shift, 0)
        pension[rows] = pension_r
        # 所得金額調整控除 for salary and pension together (措置法 第41条の3の3 第2項).
        salary_r = salary_income[rows]
        both = (salary_r > 0) & (pension_r > 0)
        if both.any():
            limit_ = ia["combined_limit"]
            rows2 = rows[both]
            adj2 = np.maximum(np.minimum(salary_r[both], limit_)
                              + np.minimum(pension_r[both], limit_) - limit_, 0)
            salary_income[rows2] -= adj2
            adjustment[rows2] += adj2

    # 合計所得金額・総所得金額等 (地方税法 第292条第1項第13号・第313条).
    aggregate = salary_income + pension
    aggregate += other_income
    np.maximum(aggregate, 0, out=aggregate)
    total_income = aggregate

    # 所得控除 (地方税法 第314条の2).
    caps = p["life_insurance_caps"]
    life = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(pop.life_general_new | pop.life_general_old | pop.life_care_medical
                          | pop.life_pension_new | pop.life_pension_old)
    if len(rows):
        general_old = _life(pop.life_general_old[rows], t.life_old)
        general_new = _life(pop.life_general_new[rows], t.life_new)
        pension_old = _life(pop.life_pension_old[rows], t.life_old)
        pension_new = _life(pop.life_pension_new[rows], t.life_new)
        # Old and new contracts of one kind: together at most 28,000, unless old alone gives more.
        general = np.maximum(general_old, np.minimum(general_new + general_old,
                                                     caps["combined_category"]))
        pension_ins = np.maximum(pension_old, np.minimum(pension_new + pension_old,
                                                         caps["combined_category"]))
        life[rows] = np.minimum(general + pension_ins
                                + _life(pop.life_care_medical[rows], t.life_new), caps["total"])
    eq = p["earthquake_insurance"]
    earthquake = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(pop.earthquake_insurance)
    if len(rows):
        earthquake[rows] = np.minimum(_ceil_div(pop.earthquake_insurance[rows], eq["divisor"]),
                                      eq["cap"])
    med = p["medical_expenses"]
    medical = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(pop.medical_paid)
    if len(rows):
        medical[rows] = np.clip(pop.medical_paid[rows] - pop.medical_reimbursed[rows]
                                - np.minimum(med["floor"], _rate(total_income[rows],
                                                                 _ppm(med["income_percent"]))),
                                0, med["cap"])
    basic = t.basic_amounts.take(_upto(aggregate, t.basic_uppers))
    column = _upto(aggregate, t.spouse_columns)

    # 配偶者控除・配偶者特別控除, the spouse's 障害者控除 and their 人的控除差: spouses' rows only.
    spouse = np.zeros(n, dtype=np.int64)
    spouse_special = np.zeros(n, dtype=np.int64)
    same_livelihood = np.zeros(n, dtype=np.bool_)       # 同一生計配偶者 (income ≤ limit)
    code = pop.disability.astype(np.int64)
    disability = rel_disability + t.disability_amount.take(code)
    difference = rel_difference + t.disability_diff.take(code)
    rows = np.flatnonzero(pop.has_spouse)
    if len(rows):
        s_income = pop.spouse_income[rows]
        s_same = s_income <= limit
        same_livelihood[rows] = s_same
        s_column = column[rows]
        s_elderly = at_year_end.take(_day_index(pop.spouse_birth_date[rows])) >= elderly_age
        s_spouse = np.where(s_same, np.where(s_elderly, t.spouse_elderly[s_column],
                                             t.spouse[s_column]), 0)
        ks = _upto(s_income, t.spouse_special[:, 0])
        s_column2 = np.minimum(s_column, 2)
        s_special = np.where(~s_same & (s_column < 3), t.spouse_special[ks, 1 + s_column2], 0)
        s_dis = pop.spouse_disability[rows]
        s_dcode = s_dis.astype(np.int64)
        s_dcode += (s_dis == SPECIAL) & pop.spouse_cohabiting[rows]
        s_dcode *= s_same
        spouse[rows] = s_spouse
        spouse_special[rows] = s_special
        disability[rows] += dis_amount.take(s_dcode)
        s_diff = np.where(s_spouse > 0, np.where(s_elderly, t.spouse_elderly_diff[s_column],
                                                 t.spouse_diff[s_column]), 0)
        s_diff += dis_diff.take(s_dcode)
        for band in t.spouse_special_diff:  # a handful of parameter bands, not taxpayers
            in_band = (s_special > 0) & (s_income >= band[0]) & (s_income <= band[1])
            s_diff += np.where(in_band, band[2:5][s_column2], 0)
        difference[rows] += s_diff

    # 寡婦・ひとり親・勤労学生 (few rows).
    widow_limit = int(p["widow_income_limit"])
    widow = np.zeros(n, dtype=np.int64)
    single_parent = np.zeros(n, dtype=np.int64)
    working_student = np.zeros(n, dtype=np.int64)
    widow_or_single = np.zeros(n, dtype=np.bool_)
    rows = np.flatnonzero(pop.widow | pop.single_parent | pop.working_student)
    if len(rows):
        agg = aggregate[rows]
        female = pop.female[rows]
        is_single_parent = pop.single_parent[rows] & (agg <= widow_limit)
        is_widow = pop.widow[rows] & female & ~is_single_parent & (agg <= widow_limit)  # a woman
        ws = p["working_student_income_limit"]
        is_student = (pop.working_student[rows] & (agg <= ws["total"])
                      & (agg - salary_income[rows] <= ws["other_than_work"]))
        widow[rows] = is_widow * int(p["widow_deduction"])
        single_parent[rows] = is_single_parent * int(p["single_parent_deduction"])
        working_student[rows] = is_student * int(p["working_student_deduction"])
        widow_or_single[rows] = is_widow | is_single_parent
        difference[rows] += (is_widow * int(pdiff["widow"])
                             + is_single_parent * np.where(female,
                                                           int(pdiff["single_parent_mother"]),
                                                           int(pdiff["single_parent_father"]))
                             + is_student * int(pdiff["working_student"]))

    deductions_total = pop.social_insurance + pop.small_business_mutual_aid
    for amount_ in (life, earthquake, medical, basic, spouse, spouse_special, dependants,
                    specific_relative, disability, widow, single_parent, working_student):
        deductions_total += amount_
    # 課税標準: 千円未満切捨て (地方税法 第20条の4の2第1項).
    taxable = total_income - deductions_total
    np.maximum(taxable, 0, out=taxable)
    taxable //= 1000
    taxable *= 1000

    # 人的控除額の差 (地方税法 第314条の6第1号イ): 基礎控除 here, the rest above.
    difference += (basic > 0) * int(pdiff["basic"])

    # 非課税 (地方税法 第295条, 施行令 第47条の3, 附則第3条の3).
    persons = dependant_count + same_livelihood
    some = persons > 0
    pcn = p["per_capita_non_taxable"]
    base, addition = pcn["grades"][options.grade]
    per_capita_limit = persons * base
    per_capita_limit += base + pcn["constant"]
    per_capita_limit += some * addition
    iln = p["income_levy_non_taxable"]
    levy_limit = persons * iln["base"]
    levy_limit += iln["base"] + iln["constant"]
    levy_limit += some * iln["addition"]
    pn = p["personal_non_taxable"]
    age_on_jan_1 = on_january_1.take(day)
    personal = ((pop.disability != NONE) | (age_on_jan_1 < pn["minor_age"]) | widow_or_single)
    personal &= aggregate <= pn["income_limit"]
    non_taxable_all = pop.livelihood_assistance | personal
    non_taxable_all |= aggregate <= per_capita_limit
    levy_exempt = total_income <= levy_limit
    levy_exempt &= ~non_taxable_all
    no_levy = non_taxable_all | levy_exempt
    no_levy |= pop.premises_only
    taxable *= ~no_levy

    # 算出所得割 (第314条の3・第35条; 条例による税率).
    m_ppm, p_ppm = _ppm(options.municipal_income_rate), _ppm(options.prefectural_income_rate)
    m_computed = _rate(taxable, m_ppm)
    p_computed = _rate(taxable, p_ppm)

    # 調整控除 (第314条の6・第37条): 5% split 3:2 (指定都市 4:1).
    ac = p["adjustment_credit"]
    share = ac["designated_municipal_share"] if options.designated_city else ac["municipal_share"]
    minimum_base = ac["minimum"] * 100 // int(ac["rate_percent"])
    above = difference - (taxable - ac["threshold"])
    np.maximum(above, minimum_base, out=above)
    credit_base = np.minimum(difference, taxable)
    credit_base = np.where(taxable > ac["threshold"], above, credit_base)
    eligible = (aggregate <= ac["income_limit"]) & (taxable > 0)
    credit_base *= eligible
    rate_pct = int(ac["rate_percent"])
    m_adjust = credit_base * (rate_pct * share[0])
    m_adjust //= 100 * share[1]
    np.minimum(m_adjust, m_computed, out=m_adjust)
    p_adjust = credit_base * (rate_pct * (share[1] - share[0]))
    p_adjust //= 100 * share[1]
    np.minimum(p_adjust, p_computed, out=p_adjust)
    m_after_adjust = m_computed - m_adjust
    p_after_adjust = p_computed - p_adjust
    m_left, p_left = m_after_adjust.copy(), p_after_adjust.copy()

    # The credits below concern few taxpayers: each is computed on its rows only.
    # 配当控除 (附則第5条).
    dc = p["dividend_credit"]
    dr = dc["designated"] if options.designated_city else dc["standard"]
    m_div, p_div = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(pop.dividend_income > 0)
    rows = rows[taxable[rows] > 0]
    if len(rows):
        dividend, tx = pop.dividend_income[rows], taxable[rows]
        upper = np.clip(tx - dc["threshold"], 0, dividend)
        lower = dividend - upper
        m_part = np.minimum(_rate(upper, _ppm(dr["municipal_upper"]))
                            + _rate(lower, _ppm(dr["municipal_lower"])), m_left[rows])
        p_part = np.minimum(_rate(upper, _ppm(dr["prefectural_upper"]))
                            + _rate(lower, _ppm(dr["prefectural_lower"])), p_left[rows])
        m_div[rows], p_div[rows] = m_part, p_part
        m_left[rows] -= m_part
        p_left[rows] -= p_part

    # 住宅借入金等特別税額控除 (附則第5条の4の2).
    hl = p["housing_loan"]
    hshare = hl["designated_municipal_share"] if options.designated_city else hl["municipal_share"]
    m_house, p_house = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(pop.housing_unused_credit)
    if len(rows):
        rate7, base_ = pop.housing_rate7[rows], pop.housing_income_tax_taxable[rows]
        rate_limit = np.where(rate7, _rate(base_, 70_000), _rate(base_, 50_000))
        cap = np.where(rate7, hl["caps"]["7"], hl["caps"]["5"])
        housing = np.minimum(np.minimum(pop.housing_unused_credit[rows], rate_limit), cap)
        m_part = np.minimum(housing * hshare[0] // hshare[1], m_left[rows])
        p_part = np.minimum(housing * (hshare[1] - hshare[0]) // hshare[1], p_left[rows])
        m_house[rows], p_house[rows] = m_part, p_part
        m_left[rows] -= m_part
        p_left[rows] -= p_part

    # 寄附金税額控除 (第314条の7・第37条の2): 基本控除 + ふるさと納税の特例控除 (上限 20%).
    dn = p["donation"]
    floor_ = int(dn["floor"])
    m_don, p_don = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    special_ppm = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(pop.donation_hometown | pop.donation_other)
    donations = pop.donation_hometown[rows] + pop.donation_other[rows]
    keep = (donations > floor_) & (taxable[rows] > 0)
    rows, donations = rows[keep], donations[keep]
    if len(rows):
        basic_base = np.maximum(np.minimum(donations, _rate(
            total_income[rows], _ppm(dn["income_cap_percent"]))) - floor_, 0)
        bp = dn["basic_percent"]
        m_basic = _rate(basic_base, _ppm(bp["designated_municipal" if options.designated_city
                                            else "municipal"]))
        p_basic = _rate(basic_base, _ppm(bp["designated_prefectural" if options.designated_city
                                            else "prefectural"]))
        income_tax_base = taxable[rows] - difference[rows]  # 課税総所得金額 − 人的控除差調整額
        kb = np.minimum(_upto(income_tax_base, t.special_brackets_upper),
                        len(t.special_brackets_upper) - 1)
        ratio = np.where(income_tax_base < 0, _ppm(dn["special_no_income_tax_percent"]),
                         t.special_brackets_ppm[kb])
        special_ppm[rows] = ratio
        special_base = np.maximum(pop.donation_hometown[rows] - floor_, 0)
        sshare = dn["designated_special_share"] if options.designated_city else dn["special_share"]
        cap_ppm = _ppm(dn["special_cap_percent"])
        m_special = np.minimum(special_base * ratio * sshare[0] // (PPM * sshare[1]),
                               _rate(m_after_adjust[rows], cap_ppm))
        p_special = np.minimum(special_base * ratio * (sshare[1] - sshare[0])
                               // (PPM * sshare[1]), _rate(p_after_adjust[rows], cap_ppm))
        m_part = np.minimum(m_basic + m_special, m_left[rows])
        p_part = np.minimum(p_basic + p_special, p_left[rows])
        m_don[rows], p_don[rows] = m_part, p_part
        m_left[rows] -= m_part
        p_left[rows] -= p_part

    # 定額減税 (令和6年度分, 附則第5条の8): 10,000 per person, split 3:2 (指定都市 4:1).
    fr = p["flat_reduction"]
    if fr["per_person"]:
        counted = 1 + dependant_count + (same_livelihood & (column < 3))
        reduction = np.where(aggregate <= fr["income_limit"], counted * fr["per_person"], 0)
        m_flat = np.minimum(reduction * hshare[0] // hshare[1], m_left)
        p_flat = np.minimum(reduction * (hshare[1] - hshare[0]) // hshare[1], p_left)
        m_left -= m_flat
        p_left -= p_flat
    else:
        m_flat, p_flat = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)

    # 所得割: 百円未満切捨て (地方税法 第20条の4の2第3項).
    m_levy = m_left
    m_levy //= 100
    m_levy *= 100
    p_levy = p_left
    p_levy //= 100
    p_levy *= 100

    # 均等割 (第310条・第38条) and 森林環境税 (森林環境税法 第4条・第5条).
    taxed = ~non_taxable_all
    m_pc = taxed * int(options.municipal_per_capita)
    p_pc = taxed * int(options.prefectural_per_capita)
    forest = (taxed & ~pop.premises_only) * int(p["forest_environment_tax"])
    income_levy = m_levy + p_levy
    per_capita = m_pc + p_pc
    total = income_levy + per_capita
    total += forest

    return {
        "age": age, "salary_income_before_adjustment": salary_before,
        "income_adjustment_deduction": adjustment, "salary_income": salary_income,
        "pension_income": pension, "miscellaneous_income": misc,
        "aggregate_income": aggregate, "total_income": total_income,
        "life_insurance": life, "earthquake_insurance": earthquake, "medical_expenses": medical,
        "basic": basic, "spouse": spouse, "spouse_special": spouse_special,
        "dependants": dependants, "specific_relative": specific_relative,
        "disability": disability, "widow": widow, "single_parent": single_parent,
        "working_student": working_student, "deductions_total": deductions_total,
        "dependant_count": dependant_count, "taxable_income": taxable,
        "personal_deduction_difference": difference, "non_taxable_all": non_taxable_all,
        "non_taxable_income_levy": levy_exempt, "no_income_levy": no_levy,
        "municipal_computed": m_computed, "prefectural_computed": p_computed,
        "municipal_adjustment_credit": m_adjust, "prefectural_adjustment_credit": p_adjust,
        "municipal_dividend_credit": m_div, "prefectural_dividend_credit": p_div,
        "municipal_housing_loan_credit": m_house, "prefectural_housing_loan_credit": p_house,
        "municipal_donation_credit": m_don, "prefectural_donation_credit": p_don,
        "municipal_flat_reduction": m_flat, "prefectural_flat_reduction": p_flat,
        "municipal_income_levy": m_levy, "prefectural_income_levy": p_levy,
        "income_levy": income_levy, "municipal_per_capita": m_pc,
        "prefectural_per_capita": p_pc, "per_capita": per_capita,
        "forest_environment_tax": forest, "total": total, "special_credit_ppm": special_ppm,
    }


# ------------------------------------------------------------------------------ building
def population_from_requests(requests: list[dict[str, Any]]) -> Population:
    """A population from parsed standard calculation requests
    (`kiban.tax.requests.parse_calculation_request`), one row each, in order."""
    n = len(requests)
    cols: dict[str, list[Any]] = {f.name: [] for f in fields(Population) if f.name != "relatives"}
    owners: list[int] = []
    r_birth: list[Any] = []
    r_income: list[int] = []
    r_dis: list[int] = []
    r_co: list[bool] = []
    r_lineal: list[bool] = []
    for i, req in enumerate(requests):
        tp, inc, ded = req["taxpayer"], req["income"], req["deductions"]
        life, credits = ded["life_insurance"], req["credits"]
        spouse = req.get("spouse")
        row = {
            "birth_date": tp["birth_date"], "female": tp["sex"] == "2",
            "disability": DISABILITY_CODES[tp["disability"]], "widow": tp["widow"],
            "single_parent": tp["single_parent"], "working_student": tp["working_student"],
            "livelihood_assistance": tp["livelihood_assistance"],
            "premises_only": tp["domicile_on_january_1"] == "premises_only",
            "salary_revenue": inc["salary_revenue"], "pension_revenue": inc["pension_revenue"],
            "business_income": inc["business"]["revenue"] - inc["business"]["expenses"],
            "real_estate_income": inc["real_estate"]["revenue"] - inc["real_estate"]["expenses"],
            "miscellaneous_income": (inc["miscellaneous"]["revenue"]
                                     - inc["miscellaneous"]["expenses"]),
            "interest_income": inc["interest"], "dividend_income": inc["dividend"],
            "social_insurance": ded["social_insurance"],
            "small_business_mutual_aid": ded["small_business_mutual_aid"],
            "life_general_new": life["general_new"], "life_general_old": life["general_old"],
            "life_care_medical": life["care_medical"], "life_pension_new": life["pension_new"],
            "life_pension_old": life["pension_old"],
            "earthquake_insurance": ded["earthquake_insurance"],
            "medical_paid": ded["medical_expenses"]["paid"],
            "medical_reimbursed": ded["medical_expenses"]["reimbursed"],
            "has_spouse": spouse is not None,
            "spouse_birth_date": spouse["birth_date"] if spouse else NOT_A_DATE,
            "spouse_income": spouse["aggregate_income"] if spouse else 0,
            "spouse_disability": DISABILITY_CODES[spouse["disability"]] if spouse else 0,
            "spouse_cohabiting": bool(spouse and spouse["cohabiting"]),
            "donation_hometown": credits["donations"]["hometown"],
            "donation_other": credits["donations"]["other_eligible"],
            "housing_unused_credit": credits["housing_loan"]["unused_income_tax_credit"],
            "housing_income_tax_taxable": credits["housing_loan"]["income_tax_taxable_income"],
            "housing_rate7": credits["housing_loan"]["limit_rate"] == 7,
        }
        for key, value in row.items():
            cols[key].append(value)
        for dep in req["dependants"]:
            owners.append(i)
            r_birth.append(dep["birth_date"])
            r_income.append(dep["aggregate_income"])
            r_dis.append(DISABILITY_CODES[dep["disability"]])
            r_co.append(dep["cohabiting"])
            r_lineal.append(dep.get("lineal_ascendant", False))
    relatives = Relatives.from_columns(
        owners, np.array(r_birth, dtype="datetime64[D]"), r_income, r_dis, r_co, r_lineal)
    return Population.from_columns(n, relatives=relatives, **{
        k: np.array(v, dtype="datetime64[D]") if k.endswith("birth_date") else v
        for k, v in cols.items()})


# Amount and flag columns of `population_from_combined`, in the order of `_combined_row`.
_COMBINED_COLUMNS = (
    "salary_revenue", "pension_revenue", "business_income", "real_estate_income",
    "miscellaneous_income", "interest_income", "dividend_income", "social_insurance",
    "small_business_mutual_aid", "life_general_new", "life_general_old", "life_care_medical",
    "life_pension_new", "life_pension_old", "earthquake_insurance", "medical_paid",
    "medical_reimbursed", "donation_hometown", "donation_other", "housing_unused_credit",
    "housing_income_tax_taxable", "spouse_income",
    # flags and codes below
    "female", "disability", "widow", "single_parent", "working_student",
    "livelihood_assistance", "has_spouse", "spouse_disability", "spouse_cohabiting",
    "housing_rate7")
_COMBINED_AMOUNTS = 22
_EMPTY: Mapping[str, Any] = {}


def _combined_row(r: Mapping[str, Any]) -> tuple[int, ...]:
    """One combined request as the integers of _COMBINED_COLUMNS (batch_model.normalise's
    defaults for absent members)."""
    empty = _EMPTY
    tp = r["taxpayer"]
    inc = r.get("income") or empty
    ded = r.get("deductions") or empty
    life = ded.get("life_insurance") or empty
    med = ded.get("medical_expenses") or empty
    credits = r.get("credits") or empty
    don = credits.get("donations") or empty
    house = credits.get("housing_loan") or empty
    spouse = r.get("spouse") or None
    business = inc.get("business") or empty
    real_estate = inc.get("real_estate") or empty
    misc = inc.get("miscellaneous") or empty
    codes = DISABILITY_CODES
    return (
        inc.get("salary_revenue", 0), inc.get("pension_revenue", 0),
        business.get("revenue", 0) - business.get("expenses", 0),
        real_estate.get("revenue", 0) - real_estate.get("expenses", 0),
        misc.get("revenue", 0) - misc.get("expenses", 0),
        inc.get("interest", 0), inc.get("dividend", 0),
        ded.get("social_insurance", 0), ded.get("small_business_mutual_aid", 0),
        life.get("general_new", 0), life.get("general_old", 0), life.get("care_medical", 0),
        life.get("pension_new", 0), life.get("pension_old", 0),
        ded.get("earthquake_insurance", 0), med.get("paid", 0), med.get("reimbursed", 0),
        don.get("hometown", 0), don.get("other_eligible", 0),
        house.get("unused_income_tax_credit", 0), house.get("income_tax_taxable_income", 0),
        spouse.get("aggregate_income", 0) if spouse is not None else 0,
        tp.get("sex", "1") == "2", codes[tp.get("disability", "none")],
        bool(tp.get("widow", False)), bool(tp.get("single_parent", False)),
        bool(tp.get("working_student", False)), bool(tp.get("livelihood_assistance", False)),
        spouse is not None,
        codes[spouse.get("disability", "none")] if spouse is not None else 0,
        bool(spouse.get("cohabiting", True)) if spouse is not None else False,
        house.get("limit_rate", 5) == 7)


def population_from_combined(requests: Sequence[Mapping[str, Any]]) -> Population:
    """A population from the annual assessment's combined requests (kiban.tax.batch_model
    .combine): the standard request's members where present, absent members being zero,
    False, none, living together, limit rate 5, sex "1" (exactly batch_model.normalise's
    defaults, so the same as `population_from_requests([normalise(r) ...])`, tested). Each
    request is read once into a tuple of integers and the tuples become one int64 matrix
    whose columns are the population's: no intermediate per-taxpayer dicts."""
    n = len(requests)
    matrix = np.array([_combined_row(r) for r in requests], dtype=np.int64).reshape(
        n, len(_COMBINED_COLUMNS)).T.copy()  # one contiguous row per column
    columns: dict[str, Any] = {}
    for j, name in enumerate(_COMBINED_COLUMNS):
        column = matrix[j]
        columns[name] = (column if j < _COMBINED_AMOUNTS
                         else column.astype(np.int8) if name.endswith("disability")
                         else column.astype(np.bool_))
    owners: list[int] = []
    dependants: list[Mapping[str, Any]] = []
    for i, r in enumerate(requests):
        listed = r.get("dependants")
        if listed:
            owners.extend([i] * len(listed))
            dependants.extend(listed)
    codes = DISABILITY_CODES
    relatives = Relatives.from_columns(
        owners, np.array([d["birth_date"] for d in dependants], dtype="datetime64[D]"),
        [d.get("aggregate_income", 0) for d in dependants],
        [codes[d.get("disability", "none")] for d in dependants],
        [bool(d.get("cohabiting", True)) for d in dependants],
        [bool(d.get("lineal_ascendant", False)) for d in dependants])
    spouse_birth = [(r.get("spouse") or _EMPTY).get("birth_date", NOT_A_DATE)
                    for r in requests]
    return Population.from_columns(
        n, relatives=relatives,
        birth_date=np.array([r["taxpayer"]["birth_date"] for r in requests],
                            dtype="datetime64[D]"),
        spouse_birth_date=np.array(spouse_birth, dtype="datetime64[D]"), **columns)


# ------------------------------------------------------------------------------ explaining
# (code, requirement, legal basis, Japanese label, English label, formula)
_STEPS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("salary_income", "JT-0005", "所得税法 第28条・別表第五", "給与所得",
     "Employment income", "給与収入 − 給与所得控除 (660万円未満は別表第五) − 所得金額調整控除"),
    ("income_adjustment_deduction", "JT-0007", "租税特別措置法 第41条の3の3", "所得金額調整控除",
     "Income adjustment deduction", "(給与収入(上限1,000万円) − 850万円) × 10% など"),
    ("pension_income", "JT-0008", "所得税法 第35条第4項・措置法 第41条の15の3",
     "公的年金等に係る雑所得", "Public pension income", "年金収入 − 公的年金等控除 (65歳区分)"),
    ("aggregate_income", "JT-0011", "地方税法 第292条第1項第13号", "合計所得金額",
     "Aggregate income", "各所得の合計"),
    ("total_income", "JT-0011", "地方税法 第313条", "総所得金額等", "Total income",
     "合計所得金額 (繰越控除なし)"),
    ("deductions_total", "JT-0012", "地方税法 第314条の2", "所得控除の合計",
     "Income deductions", "社会保険料 + 生命保険料 + … + 基礎控除"),
    ("taxable_income", "JT-0024", "地方税法 第20条の4の2第1項", "課税標準額",
     "Taxable income", "総所得金額等 − 所得控除, 千円未満切捨て"),
    ("personal_deduction_difference", "JT-0026", "地方税法 第314条の6第1号イ",
     "人的控除額の差", "Difference of personal deductions", "所得税と住民税の人的控除の差の合計"),
    ("income_levy_computed", "JT-0025", "地方税法 第314条の3・第35条", "算出所得割額",
     "Income levy before credits", "課税標準額 × 税率 (市町村 + 道府県)"),
    ("adjustment_credit", "JT-0026", "地方税法 第314条の6・第37条", "調整控除",
     "Adjustment credit", "5% × 人的控除差 (200万円超は差 − (課税標準 − 200万円), 最低2,500円)"),
    ("dividend_credit", "JT-0033", "地方税法 附則第5条", "配当控除", "Dividend credit",
     "配当所得 × 2.8% (課税総所得1,000万円超の部分は1.4%)"),
    ("housing_loan_credit", "JT-0034", "地方税法 附則第5条の4の2", "住宅借入金等特別税額控除",
     "Housing loan credit", "所得税で控除しきれない額 (課税総所得金額等の5%・97,500円 / 7%・136,500円限度)"),
    ("donation_credit", "JT-0036", "地方税法 第314条の7・第37条の2", "寄附金税額控除",
     "Donation credit", "基本控除 (寄附金 − 2,000円) × 10% + 特例控除 (所得割の20%限度)"),
    ("flat_reduction", "JT-0038", "地方税法 附則第5条の8", "定額減税 (令和6年度)",
     "Flat reduction (FY2024)", "10,000円 × (本人 + 同一生計配偶者 + 扶養親族)"),
    ("income_levy", "JT-0027", "地方税法 第20条の4の2第3項", "所得割額",
     "Income levy", "算出所得割 − 税額控除, 市町村・道府県それぞれ百円未満切捨て"),
    ("per_capita_levy", "JT-0028", "地方税法 第310条・第38条", "均等割額", "Per-capita levy",
     "市町村民税 + 道府県民税 (非課税者は0)"),
    ("forest_environment_tax", "JT-0029", "森林環境税法 第4条・第5条", "森林環境税",
     "Forest environment tax", "1,000円 (均等割の非課税者は0)"),
    ("total", "JT-0004", "地方税法 第41条・第319条", "年税額", "Annual tax",
     "所得割 + 均等割 + 森林環境税"),
)
NON_TAXABLE_LABELS = {"none": ("課税", "taxed"), "all": ("均等割・所得割とも非課税",
                                                       "no per-capita or income levy"),
                      "income_levy": ("所得割のみ非課税", "no income levy")}


def _i(array: Any, i: int) -> int:
    return int(array[i])


def non_taxable_code(outcome: Outcome, i: int) -> str:
    if outcome.non_taxable_all[i]:
        return "all"
    return "income_levy" if outcome.non_taxable_income_levy[i] else "none"


def _levy(o: Outcome, i: int, side: str) -> dict[str, Any]:
    rate = (o.options.municipal_income_rate if side == "municipal"
            else o.options.prefectural_income_rate)
    return {"rate": format_rate(rate), "computed": _i(getattr(o, f"{side}_computed"), i),
            "adjustment_credit": _i(getattr(o, f"{side}_adjustment_credit"), i),
            "dividend_credit": _i(getattr(o, f"{side}_dividend_credit"), i),
            "housing_loan_credit": _i(getattr(o, f"{side}_housing_loan_credit"), i),
            "donation_credit": _i(getattr(o, f"{side}_donation_credit"), i),
            "flat_reduction": _i(getattr(o, f"{side}_flat_reduction"), i),
            "amount": _i(getattr(o, f"{side}_income_levy"), i)}


def outcome_response(outcome: Outcome, i: int, *, lgcode: str | None = None) -> dict[str, Any]:
    """Row i as the standard calculation response, with its explained steps."""
    o = outcome
    deductions = {key: _i(getattr(o, key), i) for key in (
        "social_insurance", "small_business_mutual_aid", "life_insurance",
        "earthquake_insurance", "medical_expenses", "basic", "spouse", "spouse_special",
        "dependants", "specific_relative", "disability", "widow", "single_parent",
        "working_student")}
    deductions["total"] = _i(o.deductions_total, i)
    response: dict[str, Any] = {
        "lgcode": lgcode, "fiscal_year": o.fiscal_year,
        "fiscal_year_label": fiscal_year_label(o.fiscal_year),
        "income_year": o.fiscal_year - 1, "grade": o.options.grade,
        "designated_city": o.options.designated_city,
        "non_taxable": non_taxable_code(o, i),
        "income": {key: _i(getattr(o, key), i) for key in (
            "salary_income_before_adjustment", "income_adjustment_deduction", "salary_income",
            "pension_income", "business_income", "real_estate_income", "interest_income",
            "dividend_income", "miscellaneous_income", "aggregate_income", "total_income")},
        "deductions": deductions,
        "dependant_count": _i(o.dependant_count, i),
        "taxable_income": _i(o.taxable_income, i),
        "personal_deduction_difference": _i(o.personal_deduction_difference, i),
        "income_levy": {"municipal": _levy(o, i, "municipal"),
                        "prefectural": _levy(o, i, "prefectural"),
                        "total": _i(o.income_levy, i)},
        "per_capita_levy": {"municipal": _i(o.municipal_per_capita, i),
                            "prefectural": _i(o.prefectural_per_capita, i),
                            "total": _i(o.per_capita, i)},
        "forest_environment_tax": _i(o.forest_environment_tax, i),
        "total": _i(o.total, i),
    }
    response["steps"] = explain(o, i)
    return response


def explain(o: Outcome, i: int) -> list[dict[str, Any]]:
    """The computation of row i, step by step, each with its requirement and legal basis."""
    both = {
        "income_levy_computed": _i(o.municipal_computed, i) + _i(o.prefectural_computed, i),
        "adjustment_credit": (_i(o.municipal_adjustment_credit, i)
                              + _i(o.prefectural_adjustment_credit, i)),
        "dividend_credit": _i(o.municipal_dividend_credit, i) + _i(o.prefectural_dividend_credit, i),
        "housing_loan_credit": (_i(o.municipal_housing_loan_credit, i)
                                + _i(o.prefectural_housing_loan_credit, i)),
        "donation_credit": _i(o.municipal_donation_credit, i) + _i(o.prefectural_donation_credit, i),
        "flat_reduction": _i(o.municipal_flat_reduction, i) + _i(o.prefectural_flat_reduction, i),
        "income_levy": _i(o.income_levy, i), "per_capita_levy": _i(o.per_capita, i),
        "deductions_total": _i(o.deductions_total, i),
    }
    optional = {"salary_income": _i(o.salary_income_before_adjustment, i) > 0
                or _i(o.salary_income, i) > 0,
                "income_adjustment_deduction": _i(o.income_adjustment_deduction, i) > 0,
                "pension_income": _i(o.pension_income, i) > 0}
    steps = []
    for code, requirement, basis, ja, en, formula in _STEPS:
        if code in optional and not optional[code]:
            continue
        if code in ("dividend_credit", "housing_loan_credit", "donation_credit",
                    "flat_reduction") and both[code] == 0:
            continue
        amount = both[code] if code in both else _i(getattr(o, code), i)
        steps.append({"code": code, "requirement": requirement, "basis": basis,
                      "label_ja": ja, "label_en": en, "amount": amount, "formula": formula})
    code = non_taxable_code(o, i)
    if code != "none":
        ja, en = NON_TAXABLE_LABELS[code]
        steps.insert(0, {"code": "non_taxable", "requirement": "JT-0030" if code == "all"
                         else "JT-0032", "basis": "地方税法 第295条・附則第3条の3",
                         "label_ja": ja, "label_en": en, "amount": 0,
                         "formula": "非課税限度額以下 (級地・扶養人数による)"})
    return steps
