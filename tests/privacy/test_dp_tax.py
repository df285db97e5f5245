"""Issue 9 part 4 over tax data: counts of taxpayers and sums of 所得割 per 町字 or income
band, released with OpenDP under the `tax` budget (the same per-dataset accounting as the
registry's), the budget enforced with the rule named, the noise checked statistically, and
the tax data reached through the tax service only (aggregates; the read recorded). The privacy
officer's page shows every dataset's budget. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kiban.core.errors import KibanError
from kiban.platform.auth import StaffMember
from kiban.privacy import dp
from kiban.privacy.store import access_records
from kiban.tax.assessment import STATISTICS_BANDS
from kiban.tax.batch_synthetic import income_csv
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, PASSWORD, TOWNS, World, bearer
from privacy.kit import import_population, make_staff

FY = 2026
BASE = f"/api/v1/municipalities/{LG_A}/privacy"
HTML = {"Accept": "text/html"}


@pytest.fixture
def taxed(world: World) -> StaffMember:
    """A municipality with assessed residents; returns its tax officer."""
    svc = world.svc
    import_population(world, 160)
    people = svc.registry.taxpayers_on(LG_A, date(FY, 1, 1))
    report = svc.assessments.import_csv("t", LG_A, FY, io.StringIO(income_csv(people, FY, 2)))
    assert report["rejected"] == 0
    assert svc.assessments.assess(LG_A, FY)["status"] == "done"
    make_staff(world, "officer-a", ["privacy_officer"], department="総務課")
    make_staff(world, "tax-b", ["tax_officer"], LG_B, department="税務課")
    return svc.accounts.create("tax-a", PASSWORD, "税務 一子", ["tax_officer"], LG_A,
                               svc.clock.now(), department="税務課")


@pytest.fixture
def client(world: World, taxed: StaffMember) -> Iterator[TestClient]:
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def test_the_tax_service_answers_exact_aggregates_one_cell_per_taxpayer(
        world: World, taxed: StaffMember) -> None:
    tax = world.svc.assessments
    by_town = tax.statistics_cells(taxed, LG_A, FY, "town", 300_000)
    by_band = tax.statistics_cells(taxed, LG_A, FY, "income_band", 300_000)
    assert [c["key"] for c in by_town["cells"]] == [*sorted(t["code"] for t in TOWNS), ""]
    assert [c["key"] for c in by_band["cells"]] == [label for _, label in STATISTICS_BANDS]
    persons = by_town["persons"]
    assert persons > 20 and persons == by_band["persons"]
    for stats in (by_town, by_band):
        assert sum(c["count"] for c in stats["cells"]) == persons  # each in exactly one cell
        assert all(0 <= c["levy_sum"] <= 300_000 * c["count"] for c in stats["cells"])
    assert sum(c["levy_sum"] for c in by_town["cells"]) == sum(c["levy_sum"] for c in by_band["cells"])
    with pytest.raises(KibanError) as refused:
        tax.statistics_cells(taxed, LG_A, FY, "age", 1000)
    assert refused.value.status == 422
    other = world.svc.accounts.create("tax-c", PASSWORD, "x", ["tax_officer"], LG_B,
                                      world.svc.clock.now())
    with pytest.raises(KibanError) as foreign:
        tax.statistics_cells(other, LG_A, FY, "town", 1000)
    assert foreign.value.status == 403


def test_tax_release_spends_the_tax_budget_and_is_refused_beyond_it(
        world: World, client: TestClient) -> None:
    officer = bearer(client, "officer-a")
    tax = bearer(client, "tax-a")
    release = f"{BASE}/releases/tax"
    body = {"fiscal_year": FY, "by": "town", "epsilon": 0.6}
    unset = client.post(release, json=body, headers=tax)
    assert unset.status_code == 409 and "プライバシー予算" in unset.json()["errors"][0]["ja"]
    bad_dataset = client.put(f"{BASE}/budget", json={"epsilon_total": 1, "dataset": "fun"},
                             headers=officer)
    assert bad_dataset.status_code == 422 and bad_dataset.json()["errors"][0]["field"] == "dataset"
    set_tax = client.put(f"{BASE}/budget", json={"epsilon_total": 1.0, "dataset": "tax"},
                         headers=officer)
    assert set_tax.status_code == 200 and set_tax.json()["epsilon_left"] == 1.0

    # bad input: refused with the field named, nothing spent
    for wrong, field in (({"by": "age"}, "by"), ({"upper": 0}, "upper"), ({"epsilon": 0}, "epsilon"),
                         ({"epsilon": 11}, "epsilon"), ({"fiscal_year": 1999}, "fiscal_year")):
        answer = client.post(release, json={**body, **wrong}, headers=tax)
        assert answer.status_code == 422, (wrong, answer.text)
        assert answer.json()["errors"][0]["field"] == field
    assert client.post(release, json=body, headers=officer).status_code == 403  # not the holder
    assert client.post(f"/api/v1/municipalities/{LG_A}/privacy/releases/tax", json=body,
                       headers=bearer(client, "tax-b")).status_code == 403  # another municipality

    first = client.post(release, json=body, headers=tax)
    assert first.status_code == 201, first.text
    result = first.json()
    assert result["epsilon"] == pytest.approx(0.6)  # OpenDP's maps: 0.3 + 0.3
    assert [c["key"] for c in result["cells"]] == [*sorted(t["code"] for t in TOWNS), ""]
    assert {"taxpayers", "income_levy_sum", "label"} <= set(result["cells"][0])
    banded = client.post(release, json={**body, "by": "income_band", "epsilon": 0.3}, headers=tax)
    assert banded.status_code == 201 and len(banded.json()["cells"]) == len(STATISTICS_BANDS)

    over = client.post(release, json={**body, "epsilon": 0.2}, headers=tax)
    assert over.status_code == 409
    assert "プライバシー予算" in over.json()["errors"][0]["ja"] and "budget" in over.json()["errors"][0]["en"]
    budgets = {b["dataset"]: b for b in client.get(f"{BASE}/budgets", headers=officer).json()}
    assert budgets["tax"]["epsilon_spent"] == pytest.approx(0.9)
    assert "registry" not in budgets  # a separate budget: the registry's is untouched
    published = [r for r in client.get(f"{BASE}/releases").json() if r["dataset"] == "tax"]
    assert len(published) == 2 and {r["query"]["by"] for r in published} == {"town", "income_band"}

    # the read of the tax file is recorded: bulk, identifiers only, by the tax officer
    with world.svc.db.tenant(LG_A) as conn:
        bulk = [dict(r._mapping) for r in conn.execute(select(access_records).where(
            access_records.c.lgcode == LG_A, access_records.c.purpose == "tax_assessment"))]
    assert len(bulk) == 2 and all(r["resident_id"] == "*" for r in bulk)
    assert bulk[0]["detail"]["kind"] == "dp_statistics" and bulk[0]["detail"]["count"] > 20


def test_tax_release_noise_is_unbiased(world: World, taxed: StaffMember) -> None:
    """Many releases of the same table: the mean error of the counts and of the sums is near
    0 (within five standard errors) and their spread is the Laplace's."""
    privacy, tax = world.svc.privacy, world.svc.assessments
    officer = world.svc.accounts.create("officer-x", PASSWORD, "x", ["privacy_officer"], LG_A,
                                        world.svc.clock.now())
    privacy.set_budget(officer, LG_A, 10.0, "tax")
    upper, epsilon, n = 200_000, 0.4, 25
    exact = tax.statistics_cells(taxed, LG_A, FY, "income_band", upper)["cells"]
    count_errors, sum_errors = [], []
    for _ in range(n):
        cells = privacy.release_tax(taxed, LG_A, tax, FY, "income_band", epsilon, upper)["cells"]
        count_errors += [c["taxpayers"] - e["count"] for c, e in zip(cells, exact, strict=True)]
        sum_errors += [c["income_levy_sum"] - e["levy_sum"] for c, e in zip(cells, exact, strict=True)]
    count_sd = dp.count_stddev(epsilon / 2)
    sum_sd = math.sqrt(2) * upper / (epsilon / 2)
    samples = len(count_errors)
    assert abs(np.mean(count_errors)) < 5 * count_sd / math.sqrt(samples)
    assert abs(np.mean(sum_errors)) < 5 * sum_sd / math.sqrt(samples)
    assert np.std(count_errors) == pytest.approx(count_sd, rel=0.2)
    assert np.std(sum_errors) == pytest.approx(sum_sd, rel=0.2)
    with pytest.raises(KibanError) as over:  # 10.0 spent
        privacy.release_tax(taxed, LG_A, tax, FY, "town", 0.01, upper)
    assert over.value.status == 409


def test_officer_page_shows_and_sets_every_budget(world: World, client: TestClient) -> None:
    client.post("/login", data={"username": "officer-a", "password": PASSWORD}, headers=HTML)
    page = client.get("/privacy", headers=HTML)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token and 'value="opendata_population"' in page.text and 'value="tax"' in page.text
    for dataset, total in (("tax", "2"), ("opendata_population", "3")):
        saved = client.post("/privacy/budget", data={"epsilon_total": total, "dataset": dataset,
                                                     "csrf_token": token.group(1)}, headers=HTML)
        assert saved.status_code == 303
    bad = client.post("/privacy/budget", data={"epsilon_total": "1", "dataset": "fun",
                                               "csrf_token": token.group(1)}, headers=HTML)
    assert bad.status_code == 422
    world.svc.privacy.release_tax(world.svc.accounts.create(
        "tax-z", PASSWORD, "z", ["tax_officer"], LG_A, world.svc.clock.now()),
        LG_A, world.svc.assessments, FY, "town", 0.5)
    shown = client.get("/privacy", headers=HTML).text
    tax_row = re.search(r'<tr id="budget-tax">(.*?)</tr>', shown, re.S)
    od_row = re.search(r'<tr id="budget-opendata_population">(.*?)</tr>', shown, re.S)
    assert tax_row and "個人住民税の課税(統計)" in tax_row.group(1)
    assert "<td>2.0</td><td>0.5</td><td>1.5</td>" in tax_row.group(1)
    assert od_row and "地域・年齢別人口" in od_row.group(1) and "<td>3.0</td><td>0.0</td>" in od_row.group(1)
