"""The 所得・課税証明書 and 非課税証明書 as documents (issue 5 part 6, issue 4): a PDF signed
with the municipality's document key, carrying a serial and a verification code; /verify
vouches for the genuine one, refuses an altered one, and reports a withdrawal. Issuing is the
tax officer's act for their own municipality only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from assess_kit import officers
from fastapi.testclient import TestClient

from kiban.registry.service import verification_code
from kiban.standard.kit.tax_checks import KASUYA, body
from kiban.web.app import create_app
from kiban_testkit import LG_A, LG_B, World, bearer

A = f"/api/v1/municipalities/{LG_A}/tax"


@pytest.fixture
def client(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("KIBAN_TEST_CA_DIR", str(tmp_path / "test-ca"))
    monkeypatch.delenv("KIBAN_DOCUMENT_KEY_DIR", raising=False)
    officers(world)
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    with TestClient(app) as c:
        yield c


def assessed(client: TestClient, auth: dict[str, str], calc: dict[str, Any]) -> dict[str, Any]:
    request = {**calc, "taxpayer": {**calc["taxpayer"], "family_name": "証明", "given_name": "一郎",
                                    "address": {"town_code": "0001001", "banchi": "1番地"}},
               "collection": {"method": "ordinary"}}
    made = client.post(f"{A}/assessments", json=request, headers=auth)
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def signed(client: TestClient, auth: dict[str, str], assessment_id: str, kind: str) -> Any:
    return client.post(f"{A}/certificates/signed", headers=auth,
                       json={"assessment_id": assessment_id, "kind": kind})


def verify(client: TestClient, pdf: bytes) -> dict[str, Any]:
    response = client.post("/api/v1/verify", content=pdf, headers={"Content-Type": "application/pdf"})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_signed_tax_certificate_verifies_and_can_be_withdrawn(client: TestClient, world: World) -> None:
    auth = bearer(client, "tax-a")
    taxed = assessed(client, auth, KASUYA)
    response = signed(client, auth, taxed["id"], "taxation")
    assert response.status_code == 201, response.text
    serial, pdf = response.headers["X-Certificate-Serial"], response.content
    assert pdf.startswith(b"%PDF") and b"/ETSI.CAdES.detached" in pdf
    result = verify(client, pdf)
    assert result["authentic"] is True and result["reason"] == "ok"
    assert (result["serial"], result["lgcode"], result["kind"]) == (serial, LG_A, "tax_taxation")
    assert result["signer"] and LG_A in result["signer"]

    altered = pdf.replace(b"/Producer", b"/Producex", 1) if b"/Producer" in pdf else pdf[:-40] + b" " * 40
    assert verify(client, altered)["authentic"] is False

    # The verification code printed in the stamp works as the paper copy's check.
    supervisor = bearer(client, "super-a")
    rows = client.get(f"/api/v1/municipalities/{LG_A}/certificates", headers=supervisor).json()
    row = next(r for r in rows if r["serial"] == serial)
    code = verification_code(world.backend.settings.secret_key, LG_A, serial, row["content_hash"])
    by_code = client.get("/api/v1/verify", params={"lgcode": LG_A, "serial": serial, "code": code})
    assert by_code.json()["authentic"] is True and by_code.json()["kind"] == "tax_taxation"

    withdrawn = client.post(f"/api/v1/municipalities/{LG_A}/certificates/{serial}/withdraw",
                            json={"reason": "所得の修正申告による再交付"}, headers=supervisor)
    assert withdrawn.status_code == 200, withdrawn.text
    after = verify(client, pdf)
    assert after["authentic"] is True and after["withdrawn"] is True and after["reason"] == "withdrawn"


def test_non_taxation_certificate_and_refusals(client: TestClient) -> None:
    auth = bearer(client, "tax-a")
    exempt = assessed(client, auth, body(salary=1_000_000))
    made = signed(client, auth, exempt["id"], "non_taxation")
    assert made.status_code == 201 and verify(client, made.content)["kind"] == "tax_non_taxation"
    taxed = assessed(client, auth, KASUYA)
    assert signed(client, auth, taxed["id"], "non_taxation").status_code == 409
    bad_kind = signed(client, auth, taxed["id"], "residence")
    assert bad_kind.status_code == 422 and bad_kind.json()["field"] == "kind"
    missing = signed(client, auth, "", "taxation")
    assert missing.status_code == 422 and missing.json()["field"] == "assessment_id"
    # A clerk without the tax role, and another municipality's tax officer, get nothing.
    assert signed(client, bearer(client, "clerk-a"), taxed["id"], "taxation").status_code == 403
    other = client.post(f"/api/v1/municipalities/{LG_B}/tax/certificates/signed",
                        headers=bearer(client, "tax-a"),
                        json={"assessment_id": taxed["id"], "kind": "taxation"})
    assert other.status_code == 403
    assert client.post(f"{A}/certificates/signed", headers=bearer(client, "tax-b"),
                       json={"assessment_id": taxed["id"], "kind": "taxation"}).status_code == 403
