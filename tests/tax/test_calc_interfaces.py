"""The calculator through its real interfaces: `kiban tax calc` (CliRunner), the public
`POST /api/v1/tax/calc`, the staff calculation and settings API, and the public simulation
page; every bad-input path named in issue 4 is refused with the field named."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kiban.cli import app as cli_app
from kiban.core.ratelimit import SlidingWindow
from kiban.standard.kit.tax_checks import SINGLE_5M, body
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, World, bearer

# The issue's own example input (単身でない 5,000,000 yen employee, 令和8年度).
EXAMPLE: dict[str, Any] = {
    "fiscal_year": 2026,
    "municipality": {"designated_city": False, "grade": 1, "municipal_income_rate": None,
                     "prefectural_income_rate": None, "municipal_per_capita": None,
                     "prefectural_per_capita": None},
    "taxpayer": {"birth_date": "1985-04-01", "sex": "F", "disability": "none", "widow": False,
                 "single_parent": False, "working_student": False, "public_assistance": False},
    "income": {"salary": 5000000, "public_pension": 0, "other": 0, "dividends": 0},
    "deductions": {"social_insurance": 500000,
                   "life_insurance_premiums": {"new_general": 0, "new_care_medical": 0,
                                               "new_pension": 0, "old_general": 0,
                                               "old_pension": 0},
                   "earthquake_insurance_premiums": 0, "medical_expenses": 0,
                   "medical_reimbursed": 0},
    "spouse": {"birth_date": "1986-01-01", "total_income": 0, "disability": "none",
               "cohabiting": True},
    "dependents": [{"birth_date": "2007-06-01", "total_income": 0, "disability": "none",
                    "cohabiting": True}],
    "donations": {"hometown": 0, "other": 0},
}
# 給与所得 3,560,000; 控除 500,000 + 配偶者 330,000 + 一般扶養 (18歳) 330,000 + 基礎 430,000
# = 1,590,000; 課税標準 1,970,000; 118,200 / 78,800; 差 50,000 × 3 = 150,000 ≤ 1,970,000
# → 4,500 / 3,000; 113,700 + 75,800 + 3,000 + 1,000 + 1,000 = 194,500.
EXPECTED = {"salary_income": 3_560_000, "taxable_income": 1_970_000,
            "personal_deduction_difference": 150_000, "total": 194_500}


def variant(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    target = data
    parts = re.split(r"\.", path)
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


BAD = [
    (variant("income.bonus", 100), "income.bonus"),                       # unknown field
    (variant("override_total", 0), "override_total"),
    (variant("taxpayer.birth_date", "1985-02-30"), "taxpayer.birth_date"),  # bad date
    (variant("dependents.0.birth_date", "yesterday"), "dependents[0].birth_date"),
    (variant("income.salary", -1), "income.salary"),                       # negative amount
    (variant("deductions.social_insurance", -5), "deductions.social_insurance"),
    (variant("income.salary", 1.5), "income.salary"),
    (variant("fiscal_year", 2019), "fiscal_year"),                         # unsupported year
    (variant("municipality.grade", 4), "municipality.grade"),
    (variant("municipality.municipal_income_rate", "-1"), "municipality.municipal_income_rate"),
    (variant("taxpayer.disability", "partial"), "taxpayer.disability"),
]


# ------------------------------------------------------------------------------ CLI
def run_cli(tmp_path: Path, data: Any) -> Any:
    path = tmp_path / "input.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return CliRunner().invoke(cli_app, ["tax", "calc", str(path)])


def test_cli_prints_every_intermediate_amount(tmp_path: Path) -> None:
    result = run_cli(tmp_path, EXAMPLE)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key, value in EXPECTED.items():
        assert out[key] == value, key
    for key in ("fiscal_year", "pension_income", "total_income", "income_deductions",
                "municipal", "prefectural", "forest_environment_tax", "non_taxable", "steps"):
        assert key in out
    assert out["income_deductions"]["total"] == 1_590_000
    assert out["municipal"] == {**out["municipal"], "income_levy_computed": 118_200,
                                "adjustment_credit": 4_500, "other_credits": 0,
                                "income_levy": 113_700, "per_capita": 3_000, "total": 116_700}
    assert out["non_taxable"] == {"per_capita": False, "income_levy": False}


@pytest.mark.parametrize(("data", "field"), BAD, ids=[f for _, f in BAD])
def test_cli_refuses_bad_input_naming_the_field(tmp_path: Path, data: dict[str, Any],
                                                field: str) -> None:
    result = run_cli(tmp_path, data)
    assert result.exit_code == 2
    assert field in result.stderr


def test_cli_refuses_what_is_not_json_or_not_there(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "{not json").exit_code == 2
    missing = CliRunner().invoke(cli_app, ["tax", "calc", str(tmp_path / "absent.json")])
    assert missing.exit_code == 2 and "INPUT.json" in missing.stderr


# ------------------------------------------------------------------------------ HTTP
def _client(world: World) -> Iterator[TestClient]:
    world.svc.accounts.create("tax-a", PASSWORD, "税務 一郎", ["tax_officer"], LG_A,
                              world.svc.clock.now())
    world.svc.accounts.create("tax-b", PASSWORD, "税務 二郎", ["tax_officer"], LG_B,
                              world.svc.clock.now())
    with TestClient(create_app(world.backend.settings, world.svc.clock, world.svc.db)) as c:
        yield c


@pytest.fixture
def client(sqlite_world: World) -> Iterator[TestClient]:
    """Stateless paths: SQLite only."""
    yield from _client(sqlite_world)


@pytest.fixture
def stored_client(world: World) -> Iterator[TestClient]:
    """Paths that read or write the settings table: both databases."""
    yield from _client(world)


def test_public_calc_contract_bad_input_and_rate_limit(client: TestClient) -> None:
    response = client.post("/api/v1/tax/calc", json=EXAMPLE)
    assert response.status_code == 200
    assert {k: response.json()[k] for k in EXPECTED} == EXPECTED
    for data, field in BAD:
        response = client.post("/api/v1/tax/calc", json=data)
        assert response.status_code == 422, field
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert field in [problem.get("field")] + [e["field"] for e in problem.get("errors", [])]
        assert problem["title_ja"] and problem["title_en"]
    response = client.post("/api/v1/tax/calc", content=b"{oops",
                           headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["field"] == "body"
    client.app.state.tax_calc_limiter = SlidingWindow(limit=3, window=60)  # type: ignore[attr-defined]
    codes = [client.post("/api/v1/tax/calc", json=EXAMPLE).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_sliding_window_forgets_old_requests() -> None:
    window = SlidingWindow(limit=1, window=10)
    window.hit("a", now=0.0)
    window.hit("b", now=1.0)
    window.hit("a", now=10.5)


def test_staff_calculation_needs_the_tax_role_of_that_municipality(
        stored_client: TestClient) -> None:
    client = stored_client
    path = f"/api/v1/municipalities/{LG_A}/tax/calculations"
    assert client.post(path, json=body(**SINGLE_5M)).status_code == 401
    assert client.post(path, json=body(**SINGLE_5M),
                       headers=bearer(client, "clerk-a")).status_code == 403
    assert client.post(path, json=body(**SINGLE_5M),
                       headers=bearer(client, "tax-b")).status_code == 403
    ok = client.post(path, json=body(**SINGLE_5M), headers=bearer(client, "tax-a"))
    assert ok.status_code == 200 and ok.json()["total"] == 240_500
    assert ok.json()["lgcode"] == LG_A


def test_settings_defaults_ordinances_and_bounds(stored_client: TestClient) -> None:
    client = stored_client
    headers = bearer(client, "tax-a")
    path = f"/api/v1/municipalities/{LG_A}/tax/settings/2025"
    assert client.get(path, headers=headers).json() == {
        "fiscal_year": 2025, "grade": "1", "designated_city": False,
        "municipal_income_rate": "6", "prefectural_income_rate": "4",
        "municipal_per_capita": 3000, "prefectural_per_capita": 1000, "ordinance": None}
    # 横浜市 (指定都市) defaults to 8% + 2%.
    yokohama = client.get(f"/api/v1/municipalities/{LG_B}/tax/settings/R7",
                          headers=bearer(client, "tax-b")).json()
    assert (yokohama["designated_city"], yokohama["municipal_income_rate"]) == (True, "8")
    refused = client.put(path, headers=headers, json={"prefectural_income_rate": "4.025"})
    assert refused.status_code == 422 and refused.json()["field"] == "ordinance"
    for bad, field in (({"rounding": "half_up"}, "rounding"), ({"grade": "5"}, "grade"),
                       ({"municipal_per_capita": -1, "ordinance": {
                           "name": "x", "promulgated_on": "2025-03-01"}}, "municipal_per_capita"),
                       ({"ordinance": {"name": "x", "promulgated_on": "soon"}},
                        "ordinance.promulgated_on")):
        response = client.put(path, headers=headers, json=bad)
        assert response.status_code == 422 and response.json()["field"] == field, bad
    ordinance = {"name": "神奈川県県税条例", "promulgated_on": "2025-03-01"}
    done = client.put(path, headers=headers, json={
        "grade": "2", "prefectural_income_rate": "4.025", "prefectural_per_capita": 1300,
        "ordinance": ordinance})
    assert done.status_code == 200 and done.json()["prefectural_income_rate"] == "4.025"
    assert client.get(path, headers=headers).json()["ordinance"] == ordinance
    # The calculation follows the municipality's settings: 2,380,000 × 4.025% = 95,795.
    result = client.post(f"/api/v1/municipalities/{LG_A}/tax/calculations", headers=headers,
                         json=body(**SINGLE_5M, grade=None)).json()
    assert result["income_levy"]["prefectural"]["computed"] == 95_795
    assert result["per_capita_levy"]["prefectural"] == 1_300 and result["grade"] == "2"
    # Another year is untouched; another municipality cannot read or write ours.
    assert client.get(f"/api/v1/municipalities/{LG_A}/tax/settings/2026",
                      headers=headers).json()["ordinance"] is None
    assert client.get(path, headers=bearer(client, "tax-b")).status_code == 403
    assert client.put(path, headers=bearer(client, "tax-b"), json={"grade": "3"}
                      ).status_code == 403
    assert client.get(f"/api/v1/municipalities/{LG_A}/tax/settings/1999",
                      headers=headers).status_code == 422


# ------------------------------------------------------------------------------ page
def form_fields(**extra: str) -> dict[str, str]:
    return {"fiscal_year": "2026", "grade": "1", "birth_date": "1985-04-01", "sex": "F",
            "disability": "none", "salary": "5,000,000", "social_insurance": "500000",
            "has_spouse": "on", "spouse_birth_date": "1986-01-01", "spouse_income": "0",
            "dependent_0_birth_date": "2007-06-01", "dependent_0_income": "0", **extra}


def test_simulation_page_explains_the_steps_and_refuses_forged_or_bad_forms(
        client: TestClient) -> None:
    page = client.get("/tax/simulate")
    assert page.status_code == 200 and '<label for="salary">' in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    result = client.post("/tax/simulate", data=form_fields(csrf_token=token.group(1)))
    assert result.status_code == 200
    assert "194,500 円" in result.text and "調整控除" in result.text
    assert "地方税法 第314条の6" in result.text  # each step cites its legal basis
    forged = client.post("/tax/simulate", data=form_fields(csrf_token="forged"))
    assert forged.status_code == 403 and "194,500" not in forged.text
    bad = client.post("/tax/simulate", data=form_fields(csrf_token=token.group(1),
                                                        salary="abc"))
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
