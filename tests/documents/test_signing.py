"""The lean PAdES signer, checked by two independent implementations: pyHanko (through
`signing.inspect`) and OpenSSL's `cms -verify` on the signed byte range."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from reportlab.pdfgen.canvas import Canvas

from kiban.documents import signing
from kiban.identity import testca

NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[signing.SigningKey, testca.TestCA]:
    ca = testca.TestCA(tmp_path_factory.mktemp("ca"))
    ca.init(NOW)
    key, cert = ca.issue_document_signer("131016", "東京都千代田区", NOW)
    return signing.SigningKey(key, cert, (ca.root(),)), ca


def a_pdf(link: bool = False) -> bytes:
    buf = io.BytesIO()
    canvas = Canvas(buf)
    canvas.drawString(100, 700, "certificate")
    if link:  # gives page 1 an /Annots array of its own
        canvas.linkURL("https://example.org/", (100, 690, 200, 710))
    canvas.save()
    return buf.getvalue()


def signed_range(pdf: bytes) -> tuple[bytes, bytes]:
    """The bytes the signature covers and the CMS, read from /ByteRange and /Contents."""
    start, length1, second, length2 = map(int, re.search(
        rb"/ByteRange \[ (\d+) (\d+) (\d+) (\d+) *\]", pdf).groups())  # type: ignore[union-attr]
    assert start == 0 and second + length2 == len(pdf)
    contents = pdf[length1:second]
    assert contents.startswith(b"<") and contents.endswith(b">")
    return pdf[:length1] + pdf[second:], bytes.fromhex(contents[1:-1].decode())


def openssl_verifies(tmp_path: Path, content: bytes, cms: bytes) -> bool:
    (tmp_path / "content").write_bytes(content)
    (tmp_path / "sig.der").write_bytes(cms)
    done = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-noverify",
                           "-in", str(tmp_path / "sig.der"), "-content", str(tmp_path / "content"),
                           "-out", "/dev/null"], capture_output=True)
    return done.returncode == 0


@pytest.mark.parametrize("link", [False, True], ids=["plain", "page-with-annotations"])
def test_signature_verifies_in_pyhanko_and_openssl(signer, tmp_path: Path, link: bool) -> None:
    key, _ = signer
    pdf = signing.sign(a_pdf(link), key, "131016", "000123", "ABCD-EFGH", "東京都千代田区", now=NOW)
    result = signing.inspect(pdf, lambda lgcode: [key.certificate] if lgcode == "131016" else [])
    assert (result.ok, result.reason, result.lgcode, result.serial) == (True, "ok", "131016", "000123")
    assert result.signed_at == NOW
    if shutil.which("openssl"):
        content, cms = signed_range(pdf)
        assert openssl_verifies(tmp_path, content, cms)
        assert not openssl_verifies(tmp_path, content.replace(b"certificate", b"Certificate"), cms)


def test_each_document_gets_its_own_digest_and_signature(signer) -> None:
    key, _ = signer
    first = signed_range(signing.sign(a_pdf(), key, "131016", "1", "AAAA-AAAA", "x", now=NOW))[1]
    second = signed_range(signing.sign(a_pdf(), key, "131016", "2", "AAAA-AAAA", "x", now=NOW))[1]
    assert len(first) == len(second) and first != second


def test_a_byte_changed_after_signing_is_caught(signer) -> None:
    key, _ = signer
    pdf = signing.sign(a_pdf(), key, "131016", "7", "AAAA-AAAA", "x", now=NOW)
    forged = pdf.replace(b"/Location (x)", b"/Location (y)")
    assert forged != pdf
    assert signing.inspect(forged, lambda _: [key.certificate]).reason == "bad_signature"


def test_another_key_is_an_unknown_signer(signer) -> None:
    key, ca = signer
    other_key, other_cert = ca.issue_document_signer("131016", "東京都千代田区", NOW)
    pdf = signing.sign(a_pdf(), signing.SigningKey(other_key, other_cert), "131016", "8", "AAAA-AAAA", "x")
    assert signing.inspect(pdf, lambda _: [key.certificate]).reason == "unknown_signer"


def test_pdfs_it_cannot_extend_are_refused(signer) -> None:
    key, _ = signer
    signed = signing.sign(a_pdf(), key, "131016", "9", "AAAA-AAAA", "x")
    with pytest.raises(ValueError, match="already has a form"):
        signing.sign(signed, key, "131016", "10", "AAAA-AAAA", "x")
    with pytest.raises(ValueError, match="trailer"):
        signing.sign(b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n", key, "131016", "11", "AAAA-AAAA", "x")
