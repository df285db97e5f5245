"""Staff pages of the annual assessment (/console/tax): upload of income data and a run, both
with CSRF; the run's progress, summary and histogram (inline SVG, no scripts); a taxpayer's
assessment with every step in Japanese and its history; the PDFs; roles and isolation."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from assess_kit import FY, officers, residents, service, synthetic_income
from fastapi.testclient import TestClient

from kiban.web.app import create_app
from kiban_testkit import PASSWORD, World

HTML = {"Accept": "text/html"}


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    officers(world)
    residents(world, 80)
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, username: str) -> str:
    client.cookies.clear()
    response = client.post("/login", data={"username": username, "password": PASSWORD},
                           headers=HTML)
    assert response.status_code == 303, response.text
    page = client.get("/console/tax", headers=HTML)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def test_import_run_and_explained_assessment(client: TestClient, world: World) -> None:
    token = sign_in(client, "tax-a")
    text = synthetic_income(world)
    files = {"file": ("income.csv", text.encode(), "text/csv")}
    refused = client.post("/console/tax/imports", data={"fiscal_year": str(FY)}, files=files,
                          headers=HTML)
    assert refused.status_code == 403  # no CSRF token
    bad = text + "salary,x1,E1,,12345678901,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\r\n"
    made = client.post("/console/tax/imports", headers=HTML,
                       data={"fiscal_year": str(FY), "csrf_token": token},
                       files={"file": ("income.csv", bad.encode(), "text/csv")})
    assert made.status_code == 200 and 'id="import-report"' in made.text
    assert "エラー 1" in made.text and 'id="bad-lines"' in made.text
    assert client.post("/console/tax/runs", data={"fiscal_year": str(FY)},
                       headers=HTML).status_code == 403
    started = client.post("/console/tax/runs", headers=HTML,
                          data={"fiscal_year": str(FY), "csrf_token": token})
    assert started.status_code == 303
    run = client.get(started.headers["location"], headers=HTML)
    assert run.status_code == 200 and "<svg" in run.text and "年税額の分布" in run.text
    assert "<script" not in run.text and "完了" in run.text
    listing = client.get("/console/tax", headers=HTML)
    first = re.search(r'href="/console/tax/assessments/([0-9a-f]+)"', listing.text)
    assert first
    lgcode = world.clerk_a.lgcode or ""
    taxed = next(a for a in service(world).search(officers_a(world), lgcode, FY)  # type: ignore[arg-type]
                 if a["total"] > 0)
    page = client.get(f"/console/tax/assessments/{taxed['id']}", headers=HTML)
    assert page.status_code == 200
    assert "計算の過程" in page.text and "課税標準" in page.text and "当初賦課" in page.text
    assert f"{taxed['total']:,}円" in page.text
    issue = f"/console/tax/assessments/{taxed['id']}/certificates"
    assert client.post(issue, data={"kind": "taxation"}).status_code == 403  # no CSRF token
    pdf = client.post(issue, data={"kind": "taxation", "csrf_token": token})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    assert b"/ETSI.CAdES.detached" in pdf.content
    verified = client.post("/api/v1/verify", content=pdf.content,
                           headers={"Content-Type": "application/pdf"}).json()
    assert verified["authentic"] is True and verified["kind"] == "tax_taxation"


def officers_a(world: World) -> object:
    return next(m for m in world.svc.accounts.list(None) if m.username == "tax-a")


def test_other_roles_and_municipalities_see_nothing(client: TestClient, world: World) -> None:
    svc = service(world)
    svc.import_csv("t", world.clerk_a.lgcode or "", FY, io.StringIO(synthetic_income(world)))
    summary = svc.assess(world.clerk_a.lgcode or "", FY)
    one = svc.search(officers_a(world), world.clerk_a.lgcode or "", FY)[0]  # type: ignore[arg-type]
    sign_in_plain(client, "clerk-a")
    assert client.get("/console/tax", headers=HTML).status_code == 403
    token = sign_in(client, "tax-b")
    assert client.get(f"/console/tax/runs/{summary['id']}", headers=HTML).status_code == 404
    assert client.get(f"/console/tax/assessments/{one['id']}", headers=HTML).status_code == 404
    pdf = client.post(f"/console/tax/assessments/{one['id']}/certificates",
                      data={"kind": "taxation", "csrf_token": token})
    assert pdf.status_code in (404, 422)
    client.cookies.clear()
    assert client.get("/console/tax", headers=HTML).status_code in (303, 401)


def sign_in_plain(client: TestClient, username: str) -> None:
    client.cookies.clear()
    response = client.post("/login", data={"username": username, "password": PASSWORD},
                           headers=HTML)
    assert response.status_code == 303
