"""The test CA's CRL distribution point and OCSP responder over HTTP (a real server), checked
with OpenSSL (`openssl crl`, `openssl ocsp`) and used by Kiban's validator."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from identity_world import IdWorld

from kiban.core.clock import SystemClock
from kiban.identity import service, testca, validation
from kiban.identity.model import Purpose, Reason, ValidationPolicy
from kiban.platform import settings as settings_module
from kiban.web.app import create_app
from kiban_testkit import serve

OPENSSL = shutil.which("openssl")


@dataclass
class Live:
    url: str
    ca_dir: Path
    pki: service.TestPki
    card: testca.Card
    root: x509.Certificate


@pytest.fixture
def live(id_world: IdWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """Real time (OpenSSL checks the answers against its own clock)."""
    ca_dir = tmp_path / "ca"
    monkeypatch.setenv("KIBAN_TEST_CA_DIR", str(ca_dir))
    app = create_app(id_world.backend.settings, SystemClock(), id_world.svc.db)
    with serve(app) as url:
        pki = service.TestPki(ca_dir, "test")
        pki.init(crl_url=f"{url}/pki/crl/root.crl", ocsp_url=f"{url}/pki/ocsp")
        card = pki.issue_card("131016", "r1", "山田 太郎", "東京都千代田区本町一丁目1", "1980-05-05", "1", "1234")
        yield Live(url, ca_dir, pki, card, pki.ca.root())


def pem(tmp_path: Path, name: str, cert: x509.Certificate) -> str:
    path = tmp_path / name
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers["Content-Type"], response.read()


def ask(live: Live, cert: x509.Certificate, nonce: bytes | None = None) -> ocsp.OCSPResponse:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, live.root, hashes.SHA256())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    request = urllib.request.Request(f"{live.url}/pki/ocsp", method="POST",
                                     data=builder.build().public_bytes(serialization.Encoding.DER),
                                     headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"] == "application/ocsp-response"
        return ocsp.load_der_ocsp_response(response.read())


def serial(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "X")


def test_crl_at_the_distribution_point(live: Live) -> None:
    status, kind, body = get(f"{live.url}/pki/crl/root.crl")
    assert (status, kind) == (200, "application/pkix-crl")
    crl = x509.load_der_x509_crl(body)
    assert crl.is_signature_valid(live.root.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(live.card.signing_cert.serial_number) is None
    live.pki.revoke(serial(live.card.signing_cert))
    crl = x509.load_der_x509_crl(get(f"{live.url}/pki/crl/root.crl")[2])
    assert crl.get_revoked_certificate_by_serial_number(live.card.signing_cert.serial_number) is not None


def test_ocsp_post_good_revoked_unknown_with_nonce(live: Live) -> None:
    answer = ask(live, live.card.auth_cert, nonce=b"0123456789abcdef")
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    live.root.public_key().verify(answer.signature, answer.tbs_response_bytes,  # type: ignore[call-arg, union-attr]
                                  *_pkcs1(answer))
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    live.pki.revoke(serial(live.card.auth_cert))
    assert ask(live, live.card.auth_cert).certificate_status is ocsp.OCSPCertStatus.REVOKED
    stranger = live.pki.ca.issue_document_signer("131016", "x", live.root.not_valid_before_utc)[1]
    assert ask(live, stranger).certificate_status is ocsp.OCSPCertStatus.GOOD
    unknown = live.pki.ca.issue_card(testca.Person("131016", "r", "n", "a", live.root.not_valid_before_utc.date(),
                                                   "1"), live.root.not_valid_before_utc).signing_cert
    live.pki.ca._save({**live.pki.ca._state(), "issued": []})  # forget every serial issued
    assert ask(live, unknown).certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def _pkcs1(answer: ocsp.OCSPResponse) -> tuple[object, object]:
    from cryptography.hazmat.primitives.asymmetric import padding

    return padding.PKCS1v15(), answer.signature_hash_algorithm


def test_ocsp_get_and_malformed_and_foreign_issuer(live: Live, tmp_path: Path) -> None:
    request = ocsp.OCSPRequestBuilder().add_certificate(live.card.signing_cert, live.root, hashes.SHA1()).build()
    encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
    status, _, body = get(f"{live.url}/pki/ocsp/{urllib.request.quote(encoded, safe='')}")
    assert status == 200 and ocsp.load_der_ocsp_response(body).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert ocsp.load_der_ocsp_response(get(f"{live.url}/pki/ocsp/bm90IGFuIG9jc3AgcmVxdWVzdA==")[2]
                                       ).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    other = testca.TestCA(tmp_path / "other")
    other.init(live.root.not_valid_before_utc)
    foreign = ocsp.OCSPRequestBuilder().add_certificate(live.card.signing_cert, other.root(), hashes.SHA1()).build()
    answer = urllib.request.urlopen(urllib.request.Request(
        f"{live.url}/pki/ocsp", data=foreign.public_bytes(serialization.Encoding.DER), method="POST"), timeout=5)
    assert ocsp.load_der_ocsp_response(answer.read()).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_validator_uses_ocsp_and_the_crl_over_http(live: Live) -> None:
    trust = validation.TrustStore([live.root])
    der = live.card.auth_cert.public_bytes(serialization.Encoding.DER)
    by_ocsp = ValidationPolicy(use_ocsp=True, fetch_crls=False)
    by_crl = ValidationPolicy(use_ocsp=False)

    def check(policy: ValidationPolicy) -> Reason:
        # The time of each check: a revocation reissues the CRL with thisUpdate = its own now.
        return validation.validate_certificate(der, trust, validation.Revocation(), SystemClock().now(),
                                               Purpose.AUTHENTICATION, policy).reason

    assert check(by_ocsp) is Reason.OK and check(by_crl) is Reason.OK
    live.pki.revoke(serial(live.card.auth_cert))
    assert check(by_ocsp) is Reason.REVOKED and check(by_crl) is Reason.REVOKED


def test_validator_rejects_a_replayed_ocsp_answer(live: Live) -> None:
    """An answer echoing another request's nonce is not trusted (the CRL decides instead)."""
    stale = ask(live, live.card.auth_cert, nonce=b"someone-elses-nonce").public_bytes(serialization.Encoding.DER)
    sources = validation.Revocation(ocsp_post=lambda _u, _b: stale)
    der = live.card.auth_cert.public_bytes(serialization.Encoding.DER)
    result = validation.validate_certificate(der, validation.TrustStore([live.root]), sources, SystemClock().now(),
                                             Purpose.AUTHENTICATION, ValidationPolicy(use_ocsp=True, fetch_crls=False))
    assert result.reason is Reason.OCSP_INVALID


def test_revocation_services_are_refused_in_production(id_world: IdWorld, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.setenv("KIBAN_TEST_CA_DIR", str(tmp_path))
    settings = id_world.backend.settings
    app = create_app(settings, SystemClock(), id_world.svc.db)
    app.state.services.settings = settings_module.Settings(**{**settings.__dict__, "mode": "production"})
    client = TestClient(app)
    assert client.get("/pki/crl/root.crl").status_code == 404
    assert client.post("/pki/ocsp", content=b"x").status_code == 404


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command")
def test_openssl_checks_crl_and_ocsp(live: Live, tmp_path: Path) -> None:
    root, leaf = pem(tmp_path, "root.pem", live.root), pem(tmp_path, "leaf.pem", live.card.signing_cert)
    crl_file = tmp_path / "crl.der"
    crl_file.write_bytes(get(f"{live.url}/pki/crl/root.crl")[2])
    verified = subprocess.run([OPENSSL or "openssl", "crl", "-inform", "DER", "-in", str(crl_file), "-CAfile", root,
                               "-noout"], capture_output=True, text=True, check=True)
    assert "verify OK" in verified.stdout + verified.stderr

    def openssl_ocsp() -> str:
        done = subprocess.run([OPENSSL or "openssl", "ocsp", "-issuer", root, "-cert", leaf, "-url",
                               f"{live.url}/pki/ocsp", "-CAfile", root], capture_output=True, text=True, check=True)
        assert "Response verify OK" in done.stderr + done.stdout
        assert "WARNING" not in done.stderr + done.stdout  # the nonce was echoed
        return done.stdout

    assert f"{leaf}: good" in openssl_ocsp()
    live.pki.revoke(serial(live.card.signing_cert))
    assert f"{leaf}: revoked" in openssl_ocsp()
    crl_file.write_bytes(get(f"{live.url}/pki/crl/root.crl")[2])
    listed = subprocess.run([OPENSSL or "openssl", "crl", "-inform", "DER", "-in", str(crl_file), "-noout", "-text"],
                            capture_output=True, text=True, check=True).stdout
    # OpenSSL prints the serial as whole bytes, so with a leading 0 when its hex is odd-length.
    assert re.search(rf"SERIAL NUMBER: 0?{serial(live.card.signing_cert)}\b", listed.upper())
