"""Signed certificate documents (issue 5 part 6): every issued 住民票の写し is a PAdES-signed
PDF; /verify accepts the genuine one, rejects forged and altered ones, checks serial and
verification code without telling whether a serial exists, and reports withdrawal."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.generic import NameObject
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from kiban.documents import signing
from kiban.identity import testca
from kiban.registry.service import verification_code
from kiban.web.app import create_app
from kiban_testkit import LG_A, World, bearer, move_in_data


@pytest.fixture
def client(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("KIBAN_TEST_CA_DIR", str(tmp_path / "test-ca"))
    monkeypatch.delenv("KIBAN_DOCUMENT_KEY_DIR", raising=False)
    app = create_app(world.backend.settings, world.svc.clock, world.svc.db)
    with TestClient(app) as c:
        yield c


BASE = f"/api/v1/municipalities/{LG_A}"


def issue(client: TestClient) -> tuple[str, bytes, dict[str, str]]:
    auth = bearer(client, "clerk-a")
    ids = client.post(f"{BASE}/changes/move-in", json=move_in_data(), headers=auth).json()["resident_ids"]
    response = client.post(f"{BASE}/certificates", json={"resident_ids": ids}, headers=auth)
    assert response.status_code == 201, response.text
    return response.headers["X-Certificate-Serial"], response.content, auth


def verify(client: TestClient, pdf: bytes) -> dict[str, object]:
    response = client.post("/api/v1/verify", content=pdf, headers={"Content-Type": "application/pdf"})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def code_of(client: TestClient, world: World, serial: str, auth: dict[str, str]) -> str:
    row = next(c for c in client.get(f"{BASE}/certificates", headers=auth).json() if c["serial"] == serial)
    return verification_code(world.backend.settings.secret_key, LG_A, serial, row["content_hash"])


def test_genuine_signed_certificate_is_accepted(client: TestClient) -> None:
    serial, pdf, _ = issue(client)
    assert pdf.startswith(b"%PDF") and b"/ETSI.CAdES.detached" in pdf
    result = verify(client, pdf)
    assert result["authentic"] is True and result["reason"] == "ok"
    assert result["serial"] == serial and result["lgcode"] == LG_A
    assert result["municipality"] == "東京都千代田区"
    assert "131016" in str(result["signer"]) and result["withdrawn"] is False
    assert result["issued_at"]


def test_altered_pdf_is_rejected(client: TestClient) -> None:
    _, pdf, _ = issue(client)
    # One byte changed inside the signed range.
    at = pdf.index(b"/Producer")
    altered = pdf[:at] + b"/Producex" + pdf[at + 9:]
    assert verify(client, altered) == {"authentic": False, "reason": "bad_signature"}
    # A revision appended after the signature (e.g. text added in an editor).
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    writer.root["/Foo"] = NameObject("/Bar")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    assert verify(client, out.getvalue())["authentic"] is False
    # Truncated, not a PDF, empty.
    assert verify(client, pdf[: len(pdf) // 2])["authentic"] is False
    assert verify(client, b"hello")["reason"] == "not_pdf"
    assert verify(client, b"")["reason"] == "not_pdf"


def test_forged_pdf_signed_with_another_key_is_rejected(client: TestClient, tmp_path: Path) -> None:
    serial, _, _ = issue(client)
    # Same content and the same identifiers in the signature, signed by someone else's key
    # issued by the very same test CA.
    ca = testca.TestCA(tmp_path / "test-ca")
    key, cert = ca.issue_document_signer(LG_A, "東京都千代田区", datetime.now(UTC))
    from reportlab.pdfgen.canvas import Canvas

    buf = io.BytesIO()
    c = Canvas(buf)
    c.drawString(100, 700, "forged")
    c.save()
    forged = signing.sign(buf.getvalue(), signing.SigningKey(key, cert, (ca.root(),)), LG_A, serial,
                          "AAAA-AAAA", "forged")
    assert verify(client, forged) == {"authentic": False, "reason": "unknown_signer"}
    # An unsigned PDF.
    assert verify(client, buf.getvalue()) == {"authentic": False, "reason": "unsigned"}


def test_serial_and_code_lookup(client: TestClient, world: World) -> None:
    serial, _, auth = issue(client)
    code = code_of(client, world, serial, auth)
    ok = client.get("/api/v1/verify", params={"lgcode": LG_A, "serial": serial, "code": code})
    assert ok.status_code == 200 and ok.json()["authentic"] is True and ok.json()["serial"] == serial
    loose = client.get("/api/v1/verify", params={"lgcode": LG_A, "serial": serial,
                                                  "code": code.replace("-", "").lower()})
    assert loose.json()["authentic"] is True


def test_wrong_code_does_not_reveal_whether_the_serial_exists(client: TestClient, world: World) -> None:
    serial, _, auth = issue(client)
    code = code_of(client, world, serial, auth)
    wrong = "AAAA-AAAA" if code != "AAAA-AAAA" else "BBBB-BBBB"
    known = client.get("/api/v1/verify", params={"lgcode": LG_A, "serial": serial, "code": wrong})
    unknown = client.get("/api/v1/verify", params={"lgcode": LG_A, "serial": "2099-999999", "code": wrong})
    other = client.get("/api/v1/verify", params={"lgcode": "011002", "serial": serial, "code": code})
    assert known.status_code == unknown.status_code == other.status_code == 200
    assert known.json() == unknown.json() == other.json() == {"authentic": False, "reason": "no_match"}


def test_withdrawn_certificate_is_reported(client: TestClient, world: World) -> None:
    serial, pdf, auth = issue(client)
    code = code_of(client, world, serial, auth)
    url = f"{BASE}/certificates/{serial}/withdraw"
    assert client.post(url, json={"reason": "誤交付"}, headers=auth).status_code == 403  # a clerk may not
    sup = bearer(client, "super-a")
    done = client.post(url, json={"reason": "誤交付"}, headers=sup)
    assert done.status_code == 200, done.text
    assert client.post(url, json={"reason": "誤交付"}, headers=sup).status_code == 409
    assert client.post(f"{BASE}/certificates/2099-999999/withdraw", json={"reason": "x"},
                       headers=sup).status_code == 404
    result = verify(client, pdf)
    assert result["authentic"] is True and result["withdrawn"] is True and result["reason"] == "withdrawn"
    assert result["withdrawal_reason"] == "誤交付"
    by_code = client.get("/api/v1/verify", params={"lgcode": LG_A, "serial": serial, "code": code}).json()
    assert by_code["withdrawn"] is True


def test_verify_page_needs_no_sign_in(client: TestClient, world: World) -> None:
    serial, pdf, auth = issue(client)
    page = client.get("/verify", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "証明書の検証" in page.text
    uploaded = client.post("/verify", files={"pdf": ("c.pdf", pdf, "application/pdf")})
    assert uploaded.status_code == 200 and "真正な証明書です" in uploaded.text and serial in uploaded.text
    tampered = pdf.replace(b"/Producer", b"/Producex", 1)
    refused = client.post("/verify", files={"pdf": ("c.pdf", tampered, "application/pdf")})
    assert "署名が検証できません" in refused.text
    code = code_of(client, world, serial, auth)
    by_code = client.post("/verify", data={"lgcode": LG_A, "serial": serial, "code": code})
    assert "真正な証明書です" in by_code.text
    wrong = client.post("/verify", data={"lgcode": LG_A, "serial": serial, "code": "ZZZZ-ZZZZ"})
    assert "一致する証明書がありません" in wrong.text


def test_the_same_key_signs_every_certificate_of_a_municipality(client: TestClient, world: World) -> None:
    issue(client)
    first = world.svc.registry.document_signer(LG_A)
    issue(client)
    assert world.svc.registry.document_signer(LG_A).certificate == first.certificate


def test_code_guessing_is_rate_limited(client: TestClient) -> None:
    """40 bits of code are safe only if guesses are slow: 30 checks a minute per address."""
    params = {"lgcode": LG_A, "serial": "2026-000001", "code": "AAAA-AAAA"}
    answers = [client.get("/api/v1/verify", params=params).status_code for _ in range(31)]
    assert answers[:30] == [200] * 30 and answers[30] == 429
    page = client.post("/verify", data=params)
    assert page.status_code == 429
