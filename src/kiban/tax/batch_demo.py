"""Demo data of the annual assessment: a few hundred taxpayers' synthetic income records and
one assessment run for each demo municipality (`kiban demo seed`). Skips a municipality
whose year already has income data, so seeding twice changes nothing."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from kiban.tax import batch_store
from kiban.tax.batch_synthetic import income_csv

if TYPE_CHECKING:
    from kiban.web.context import Services

FISCAL_YEAR = 2026
TAXPAYERS = 300  # per municipality: enough for the pages' histogram, quick to seed


def seed(svc: Services, lgcodes: Sequence[str], echo: Callable[[str], None]) -> None:
    for lgcode in lgcodes:
        with svc.db.tenant(lgcode) as conn:
            present = conn.execute(select(func.count()).select_from(
                batch_store.income_records).where(
                    batch_store.income_records.c.lgcode == lgcode)).scalar_one()
        if present:
            echo(f"tax: {lgcode} income data present, skipped")
            continue
        people = svc.registry.taxpayers_on(lgcode, date(FISCAL_YEAR, 1, 1))[:TAXPAYERS]
        if not people:
            continue
        report = svc.assessments.import_csv("demo", lgcode, FISCAL_YEAR,
                                            io.StringIO(income_csv(people, FISCAL_YEAR, 7)),
                                            "demo-income.csv")
        summary = svc.assessments.assess(lgcode, FISCAL_YEAR, "demo")
        echo(f"tax: {lgcode} {report['added']} income records, {summary['taxpayers']} "
             f"taxpayers assessed ({FISCAL_YEAR}年度)")
