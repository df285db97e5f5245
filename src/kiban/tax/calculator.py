"""Use cases of the calculator and the municipal settings: one taxpayer through the same engine
as a whole municipality (a population of one), and each municipality's options per fiscal year,
validated against their legal bounds (kiban.tax.model.apply_settings)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kiban.core.clock import Clock
from kiban.core.errors import Forbidden
from kiban.platform.auth import Role, StaffMember
from kiban.platform.db import Database
from kiban.tax import engine, settings_store
from kiban.tax.model import (
    MunicipalOptions,
    Ordinance,
    apply_settings,
    default_options,
    parse_fiscal_year,
)
from kiban.tax.requests import parse_calculation_request, parse_calculator_input


def require_tax_officer(actor: StaffMember, lgcode: str) -> None:
    """税務担当 of this municipality only (JT-0050)."""
    if Role.TAX_OFFICER not in actor.roles:
        raise Forbidden("税務担当の権限が必要です。", "The tax_officer role is required.")
    if actor.lgcode != lgcode:
        raise Forbidden("この地方公共団体のデータは扱えません。",
                        "You cannot act for this municipality.")


def calculate_one(parsed: dict[str, Any], options: MunicipalOptions,
                  lgcode: str | None = None) -> dict[str, Any]:
    """A parsed standard request through the engine: the standard response."""
    if parsed.get("grade"):
        options = options.with_grade(parsed["grade"])
    outcome = engine.compute(engine.population_from_requests([parsed]), parsed["fiscal_year"],
                             options)
    return engine.outcome_response(outcome, 0, lgcode=lgcode)


def calculator_output(body: Any) -> dict[str, Any]:
    """The `kiban tax calc` / `POST /api/v1/tax/calc` contract (issue 4): input validated
    (ValidationFailed names the field), output with every intermediate amount."""
    parsed, options = parse_calculator_input(body)
    full = calculate_one(parsed, options)
    levy = full["income_levy"]

    def side(name: str) -> dict[str, int]:
        part = levy[name]
        return {"income_levy_computed": part["computed"],
                "adjustment_credit": part["adjustment_credit"],
                "other_credits": (part["dividend_credit"] + part["housing_loan_credit"]
                                  + part["donation_credit"] + part["flat_reduction"]),
                "dividend_credit": part["dividend_credit"],
                "donation_credit": part["donation_credit"],
                "flat_reduction": part["flat_reduction"],
                "income_levy": part["amount"],
                "per_capita": full["per_capita_levy"][name],
                "total": part["amount"] + full["per_capita_levy"][name],
                "rate": part["rate"]}

    income = full["income"]
    code = full["non_taxable"]
    return {
        "fiscal_year": full["fiscal_year"], "fiscal_year_label": full["fiscal_year_label"],
        "income_year": full["income_year"],
        "salary_income": income["salary_income"], "pension_income": income["pension_income"],
        "income_adjustment_deduction": income["income_adjustment_deduction"],
        "aggregate_income": income["aggregate_income"], "total_income": income["total_income"],
        "income_deductions": full["deductions"], "dependant_count": full["dependant_count"],
        "taxable_income": full["taxable_income"],
        "personal_deduction_difference": full["personal_deduction_difference"],
        "municipal": side("municipal"), "prefectural": side("prefectural"),
        "forest_environment_tax": full["forest_environment_tax"],
        "non_taxable": {"per_capita": code == "all",
                        "income_levy": code in ("all", "income_levy")},
        "total": full["total"], "steps": full["steps"],
    }


class TaxCalculator:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def options(self, lgcode: str, fiscal_year: int) -> MunicipalOptions:
        """The municipality's options for the year: its stored settings, else the statutory
        ones for its kind (指定都市 or not)."""
        with self.db.platform() as conn:
            row = settings_store.get(conn, lgcode, fiscal_year)
        if row is None:
            return default_options(lgcode)
        ordinance = (Ordinance(row["ordinance_name"], row["ordinance_promulgated_on"])
                     if row["ordinance_name"] else None)
        return MunicipalOptions(
            grade=row["grade"], designated_city=row["designated_city"],
            municipal_income_rate=Decimal(row["municipal_income_rate"]),
            prefectural_income_rate=Decimal(row["prefectural_income_rate"]),
            municipal_per_capita=row["municipal_per_capita"],
            prefectural_per_capita=row["prefectural_per_capita"], ordinance=ordinance)

    def settings(self, actor: StaffMember, lgcode: str, fiscal_year: object) -> dict[str, Any]:
        require_tax_officer(actor, lgcode)
        year = parse_fiscal_year(fiscal_year)
        return self.options(lgcode, year).as_json(year)

    def update_settings(self, actor: StaffMember, lgcode: str, fiscal_year: object,
                        changes: Any) -> dict[str, Any]:
        require_tax_officer(actor, lgcode)
        year = parse_fiscal_year(fiscal_year)
        if not isinstance(changes, dict):
            from kiban.core.errors import invalid
            raise invalid("body", "設定はオブジェクトで送ってください。", "Send an object.")
        updated = apply_settings(self.options(lgcode, year), changes, year)
        row = {"lgcode": lgcode, "fiscal_year": year, "grade": updated.grade,
               "designated_city": updated.designated_city,
               "municipal_income_rate": str(updated.municipal_income_rate),
               "prefectural_income_rate": str(updated.prefectural_income_rate),
               "municipal_per_capita": updated.municipal_per_capita,
               "prefectural_per_capita": updated.prefectural_per_capita,
               "ordinance_name": updated.ordinance.name if updated.ordinance else None,
               "ordinance_promulgated_on": (updated.ordinance.promulgated_on
                                            if updated.ordinance else None)}
        with self.db.platform() as conn:
            settings_store.put(conn, row, self.clock.now(), actor.id)
        return updated.as_json(year)

    def calculate(self, actor: StaffMember, lgcode: str, body: Any) -> dict[str, Any]:
        """POST /tax/calculations: one taxpayer, nothing stored."""
        require_tax_officer(actor, lgcode)
        parsed = parse_calculation_request(body)
        return calculate_one(parsed, self.options(lgcode, parsed["fiscal_year"]), lgcode)
