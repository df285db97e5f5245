"""Synthetic income data (所得資料) for the residents of a synthetic registry: demos, tests and
the assessment benchmark. Fictional, deterministic for a seed and shaped roughly like Japan's:
most working-age people have a 給与支払報告書 from one of a few hundred employers, most people
of 65 and over a 公的年金等支払報告書, some self-employed people a 申告; some salaried people
declare a spouse and children. Written in the CSV layout of docs/tax-batch.md.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from kiban.tax.batch_model import COLUMNS

EMPLOYERS = 400


def _age(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _birth(rng: random.Random, year_end: date, low: int, high: int) -> str:
    age = rng.randint(low, high)
    return (date(year_end.year - age, 1, 1) + timedelta(days=rng.randint(0, 364))).isoformat()


def _employer(rng: random.Random) -> tuple[str, str]:
    n = int(rng.paretovariate(1.2)) % EMPLOYERS
    return f"E{n:07d}", f"株式会社サンプル{n:03d}"


def records_for(taxpayer: Sequence[Any], fiscal_year: int, seed: int = 0
                ) -> list[dict[str, str]]:
    """The CSV rows (column -> text) for one taxpayer tuple of Registry.taxpayers_on."""
    resident_id, code, number, _family, _given, birth = taxpayer[:6]
    rng = random.Random(f"{seed}:{resident_id}")  # noqa: S311 - fictional data, not security
    year_end = date(fiscal_year - 1, 12, 31)
    age = _age(birth, year_end)
    rows: list[dict[str, str]] = []
    key = {"juminhyo_code": code} if rng.random() < 0.7 or not number else {"my_number": number}

    def row(kind: str, suffix: str, **values: Any) -> dict[str, str]:
        return {"record_type": kind, "record_id": f"{resident_id[:16]}-{suffix}", **key,
                **{k: str(v) for k, v in values.items()}}

    if 15 <= age < 23 and rng.random() < 0.25:
        payer, name = _employer(rng)
        rows.append(row("salary", "s", payer_number=payer, payer_name=name,
                        salary_revenue=rng.randrange(200_000, 1_300_000, 1000)))
    elif 23 <= age < 65:
        draw = rng.random()
        if draw < 0.78:
            payer, name = _employer(rng)
            salary = int(min(30_000_000, rng.lognormvariate(15.2, 0.5))) // 1000 * 1000
            values: dict[str, Any] = {
                "payer_number": payer, "payer_name": name, "salary_revenue": salary,
                "social_insurance": salary * rng.randint(140, 155) // 1000}
            if rng.random() < 0.5:
                values["life_general_new"] = rng.randrange(20_000, 120_000, 1000)
            if rng.random() < 0.2:
                values["earthquake_insurance"] = rng.randrange(10_000, 60_000, 1000)
            if 28 <= age and rng.random() < 0.45:
                values["spouse_birth_date"] = _birth(rng, year_end, max(20, age - 4), age + 3)
                values["spouse_income"] = rng.choice([0, 0, 0, 300_000, 900_000])
                children = [f"{_birth(rng, year_end, 0, min(22, age - 22))}/0/none/1/0"
                            for _ in range(rng.choice([0, 1, 1, 2, 2, 3]))]
                if children:
                    values["dependants"] = ";".join(children)
            if rng.random() < 0.08:
                values["collection"] = "ordinary"
            rows.append(row("salary", "s", **values))
            if rng.random() < 0.04:
                payer, name = _employer(rng)
                rows.append(row("salary", "s2", payer_number=payer, payer_name=name,
                                salary_revenue=rng.randrange(300_000, 1_500_000, 1000),
                                collection="ordinary"))
        elif draw < 0.88:
            revenue = rng.randrange(2_000_000, 15_000_000, 1000)
            rows.append(row("return", "r", business_revenue=revenue,
                            business_expenses=revenue * rng.randint(40, 80) // 100,
                            social_insurance=rng.randrange(200_000, 900_000, 1000),
                            donation_hometown=rng.choice([0, 0, 0, 10_000, 30_000, 50_000])))
    elif age >= 65 and rng.random() < 0.9:
        pension = rng.randrange(600_000, 3_600_000, 1000)
        rows.append(row("pension", "p", payer_number="P0000001", payer_name="日本年金機構",
                        pension_revenue=pension, social_insurance=pension * 8 // 100))
        if age < 75 and rng.random() < 0.12:
            payer, name = _employer(rng)
            rows.append(row("salary", "s", payer_number=payer, payer_name=name,
                            salary_revenue=rng.randrange(500_000, 3_000_000, 1000),
                            collection="ordinary"))
    return rows


def income_csv(taxpayers: Iterable[Sequence[Any]], fiscal_year: int, seed: int = 0) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    for taxpayer in taxpayers:
        writer.writerows(records_for(taxpayer, fiscal_year, seed))
    return out.getvalue()
