"""The standard tax API's assessment routes (kiban/standard/kit/tax_checks.py) on SQLite and
PostgreSQL: 賦課 with the three collection methods, notices F-TAX-01/02, certificates F-TAX-03/04,
更正 with its history and F-TAX-05, idempotency, roles and tenant isolation. The expected amounts
are the kit's (recomputed by hand from the law there)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from assess_kit import officers
from fastapi.testclient import TestClient

from kiban.standard.kit.tax_checks import KASUYA, PENSIONER, SINGLE_5M, body
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, World, bearer

A = f"/api/v1/municipalities/{LG_A}/tax"
B = f"/api/v1/municipalities/{LG_B}/tax"


@dataclass
class Api:
    client: TestClient
    a: dict[str, str]
    b: dict[str, str]
    clerk: dict[str, str]


@pytest.fixture
def api(world: World) -> Iterator[Api]:
    officers(world)
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    with TestClient(app) as client:
        yield Api(client, bearer(client, "tax-a"), bearer(client, "tax-b"),
                  bearer(client, "clerk-a"))


def request_for(calc: dict[str, Any], method: str, name: str = "太郎") -> dict[str, Any]:
    taxpayer = {**calc["taxpayer"], "family_name": "適合", "given_name": name,
                "address": {"town_code": "0001001", "banchi": "1番地"}}
    collection: dict[str, Any] = {"method": method}
    if method == "special":
        collection["special_collector"] = {"number": "99000001", "name": "適合検査株式会社"}
    return {**calc, "taxpayer": taxpayer, "collection": collection}


def assess(api: Api, calc: dict[str, Any], method: str, **headers: str) -> dict[str, Any]:
    made = api.client.post(f"{A}/assessments", json=request_for(calc, method),
                           headers={**api.a, **headers})
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def items(form: dict[str, Any]) -> dict[str, Any]:
    return {entry["item"]: entry["value"] for entry in form["items"]}


def test_special_collection_twelve_months_and_its_notice(api: Api) -> None:
    made = assess(api, body(**SINGLE_5M), "special")
    assert made["version"] == 1 and made["calculation"]["total"] == 240_500
    months = {e["period"]: e["amount"] for e in made["collection"]["instalments"]}
    assert months["2025-06"] == 20_500 and len(months) == 12
    assert all(months[m] == 20_000 for m in months if m != "2025-06")
    notice = api.client.get(f"{A}/assessments/{made['id']}/notices/special-collection",
                            headers=api.a)
    assert notice.status_code == 200 and notice.json()["form"] == "F-TAX-01"
    values = items(notice.json())
    assert values["tax.annual_tax"] == 240_500 and values["tax.taxable_income"] == 2_380_000
    assert values["tax.special_collector_name"] == "適合検査株式会社" and values["tax.appeal_notice"]
    refused = api.client.get(f"{A}/assessments/{made['id']}/notices/tax-notice", headers=api.a)
    assert refused.status_code == 409


def test_ordinary_collection_four_instalments_and_the_tax_notice(api: Api) -> None:
    made = assess(api, PENSIONER, "ordinary")
    got = [(e["period"], e["amount"]) for e in made["collection"]["instalments"]]
    assert got == [("2025-06", 55_500), ("2025-08", 53_000), ("2025-10", 53_000),
                   ("2026-01", 53_000)]
    assert all(e["due_date"].startswith(e["period"]) for e in made["collection"]["instalments"])
    notice = api.client.get(f"{A}/assessments/{made['id']}/notices/tax-notice", headers=api.a)
    assert notice.status_code == 200
    values = items(notice.json())
    assert values["tax.annual_tax"] == 214_500
    assert values["tax.instalment_amount"] == [55_500, 53_000, 53_000, 53_000]
    order = [e["item"] for e in notice.json()["items"]]
    assert order.index("tax.fiscal_year") < order.index("tax.annual_tax") < \
        order.index("tax.appeal_notice")
    assert api.client.get(f"{A}/assessments/{made['id']}/notices/special-collection",
                          headers=api.a).status_code == 409


def test_pension_collection_first_year(api: Api) -> None:
    made = assess(api, body(birth_date="1949-05-05", social=300_000,
                            income_extra={"pension_revenue": 3_000_000}), "pension")
    entries = made["collection"]["instalments"]
    assert made["calculation"]["total"] == 119_500
    assert sum(e["amount"] for e in entries) == 119_500
    methods = {e["period"]: e["method"] for e in entries}
    assert methods == {"2025-06": "ordinary", "2025-08": "ordinary", "2025-10": "pension",
                       "2025-12": "pension", "2026-02": "pension"}


def test_certificates_as_data(api: Api) -> None:
    taxed = assess(api, KASUYA, "special")
    made = api.client.post(f"{A}/certificates", headers=api.a,
                           json={"assessment_id": taxed["id"], "kind": "taxation"})
    assert made.status_code == 201 and made.json()["form"] == "F-TAX-03"
    values = items(made.json())
    assert values["tax.salary_income"] == 4_885_000 and values["tax.dependant_count"] == 2
    assert values["tax.annual_tax"] == 275_800 and values["certificate.issued_on"]
    refused = api.client.post(f"{A}/certificates", headers=api.a,
                              json={"assessment_id": taxed["id"], "kind": "non_taxation"})
    assert refused.status_code == 409
    exempt = assess(api, body(salary=1_000_000), "ordinary")
    assert exempt["calculation"]["non_taxable"] == "all" and exempt["collection"]["instalments"] == []
    made = api.client.post(f"{A}/certificates", headers=api.a,
                           json={"assessment_id": exempt["id"], "kind": "non_taxation"})
    assert made.status_code == 201 and items(made.json())["tax.aggregate_income"] == 450_000
    bad = api.client.post(f"{A}/certificates", headers=api.a,
                          json={"assessment_id": exempt["id"], "kind": "residence"})
    assert bad.status_code == 422 and bad.json()["field"] == "kind"
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_correction_keeps_history_and_difference(api: Api) -> None:
    request = request_for(body(**SINGLE_5M), "ordinary")
    made = api.client.post(f"{A}/assessments", json=request, headers=api.a).json()
    path = f"{A}/assessments/{made['id']}/corrections"
    corrected = {k: v for k, v in request.items() if k not in ("fiscal_year", "collection")}
    corrected["deductions"] = {**request["deductions"],
                               "medical_expenses": {"paid": 300_000, "reimbursed": 0}}
    no_reason = api.client.post(path, json={"input": corrected}, headers=api.a)
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    assert api.client.get(f"{A}/assessments/{made['id']}", headers=api.a).json()["version"] == 1
    done = api.client.post(path, json={"reason": "医療費控除の申告", "input": corrected},
                           headers=api.a)
    assert done.status_code == 201, done.text
    data = done.json()
    assert data["version"] == 2 and data["previous_total"] == 240_500
    assert data["difference"] == -20_000 and data["calculation"]["total"] == 220_500
    assert sum(e["amount"] for e in data["collection"]["instalments"]) == 220_500
    assert data["notice"]["form"] == "F-TAX-05"
    assert items(data["notice"])["tax.annual_tax_difference"] == -20_000
    history = api.client.get(f"{A}/assessments/{made['id']}", headers=api.a).json()["history"]
    assert [(h["version"], h["total"]) for h in history] == [(1, 240_500), (2, 220_500)]
    bad = api.client.post(path, json={"reason": "x", "input": {**corrected, "income": {
        "salary_revenue": -1}}}, headers=api.a)
    assert bad.status_code == 422 and bad.json()["field"] == "input.income.salary_revenue"


def test_bad_input_names_the_field_and_stores_nothing(api: Api) -> None:
    cases = [
        ({**request_for(body(**SINGLE_5M), "special"), "collection": {"method": "special"}},
         "collection.special_collector.number"),
        ({**request_for(body(**SINGLE_5M), "ordinary"), "collection": {"method": "cash"}},
         "collection.method"),
        ({k: v for k, v in request_for(body(**SINGLE_5M), "ordinary").items()
          if k != "collection"}, "collection"),
        (request_for(body(salary=-5), "ordinary"), "income.salary_revenue"),
        ({**request_for(body(**SINGLE_5M), "ordinary"), "override_total": 0}, "override_total"),
    ]
    for payload, field in cases:
        response = api.client.post(f"{A}/assessments", json=payload, headers=api.a)
        assert response.status_code == 422, (field, response.text)
        problem = response.json()
        fields = [problem.get("field")] + [e["field"] for e in problem.get("errors", [])]
        assert field in fields, (field, problem)
    nameless = request_for(body(**SINGLE_5M), "ordinary")
    nameless["taxpayer"] = {k: v for k, v in nameless["taxpayer"].items() if k != "family_name"}
    response = api.client.post(f"{A}/assessments", json=nameless, headers=api.a)
    assert response.status_code == 422 and response.json()["field"] == "taxpayer.family_name"


def test_idempotency_key_makes_one_assessment(api: Api) -> None:
    first = assess(api, body(**SINGLE_5M), "ordinary", **{"Idempotency-Key": "k-1"})
    again = api.client.post(f"{A}/assessments", json=request_for(body(**SINGLE_5M), "ordinary"),
                            headers={**api.a, "Idempotency-Key": "k-1"})
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"


def test_roles_and_tenant_isolation(api: Api) -> None:
    mine = assess(api, body(**SINGLE_5M), "ordinary")
    clerk = api.client.post(f"{A}/assessments", json=request_for(body(**SINGLE_5M), "ordinary"),
                            headers=api.clerk)
    assert clerk.status_code == 403
    assert api.client.get(f"{A}/assessments/{mine['id']}", headers=api.clerk).status_code == 403
    # Another municipality's tax officer: refused on A's path, nothing found on its own.
    assert api.client.get(f"{A}/assessments/{mine['id']}", headers=api.b).status_code in (403, 404)
    assert api.client.get(f"{B}/assessments/{mine['id']}", headers=api.b).status_code == 404
    certified = api.client.post(f"{B}/certificates", headers=api.b,
                                json={"assessment_id": mine["id"], "kind": "taxation"})
    assert certified.status_code in (404, 422)
    assert api.client.get(f"{A}/assessments/{mine['id']}", headers=api.a).status_code == 200
    assert api.client.get(f"{A}/assessments/{mine['id']}").status_code == 401
