"""Interoperability with OpenSSL: `openssl` makes the CA, a certificate with the JPKI otherName
entries, the CRL and CMS signatures, and Kiban verifies them; and OpenSSL verifies Kiban's.

Without the `openssl` command these tests skip, unless KIBAN_REQUIRE_POSTGRES=1 (CI), where
they fail, as the PostgreSQL tests do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kiban.cli import app

OPENSSL = shutil.which("openssl")
runner = CliRunner()

CONFIG = """
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 365
default_crl_days = 1
policy = policy_any
unique_subject = no
[ policy_any ]
countryName = optional
commonName = supplied
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
C = JP
CN = OpenSSL JPKI Test Root
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ jpki_sign ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
certificatePolicies = 2.25.1234567
subjectAltName = @jpki_san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ jpki_san ]
otherName.0 = 1.2.392.200149.8.5.5.1;FORMAT:UTF8,UTF8String:山田 一郎
otherName.1 = 1.2.392.200149.8.5.5.3;FORMAT:UTF8,UTF8String:1
otherName.2 = 1.2.392.200149.8.5.5.4;FORMAT:UTF8,UTF8String:319650401
otherName.3 = 1.2.392.200149.8.5.5.5;FORMAT:UTF8,UTF8String:大阪府大阪市北区中之島1-3-20
"""


@pytest.fixture(scope="module")
def openssl() -> str:
    if OPENSSL is None:
        if os.environ.get("KIBAN_REQUIRE_POSTGRES") == "1":
            pytest.fail("the openssl command is required (KIBAN_REQUIRE_POSTGRES=1)")
        pytest.skip("no openssl command")
    return OPENSSL


def run(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL or "openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def ossl_ca(openssl: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ossl")
    (d / "newcerts").mkdir()
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "crlnumber").write_text("01\n")
    (d / "ca.cnf").write_text(CONFIG.format(dir=d), encoding="utf-8")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "root.key", "-out", "root.pem", "-days", "3650",
        "-config", "ca.cnf", "-extensions", "v3_ca", "-sha256", cwd=d)
    run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
        "-subj", "/C=JP/CN=0A1B2C3D4E5F", cwd=d)
    run("ca", "-batch", "-config", "ca.cnf", "-in", "leaf.csr", "-out", "leaf.pem", "-extensions", "jpki_sign",
        "-cert", "root.pem", "-keyfile", "root.key", "-notext", cwd=d)
    run("ca", "-gencrl", "-config", "ca.cnf", "-cert", "root.pem", "-keyfile", "root.key", "-out", "crl.pem", cwd=d)
    (d / "data.bin").write_bytes("転入届 / moving-in notification\x00\x01".encode())
    return d


def cms_sign(d: Path, out: str, *extra: str) -> Path:
    run("cms", "-sign", "-binary", "-outform", "DER", "-in", "data.bin", "-signer", "leaf.pem", "-inkey", "leaf.key",
        "-out", out, *extra, cwd=d)
    return d / out


def verify(d: Path, signature: Path, crl: str = "crl.pem") -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["identity", "verify", "--trust-anchor", str(d / "root.pem"), "--crl", str(d / crl),
                                 "--data", str(d / "data.bin"), "--signature", str(signature)])
    return result.exit_code, json.loads(result.stdout)


def test_openssl_signature_with_jpki_other_names(ossl_ca: Path) -> None:
    code, out = verify(ossl_ca, cms_sign(ossl_ca, "sig.der"))
    assert code == 0, out
    assert out["signer"] == {"name": "山田 一郎", "address": "大阪府大阪市北区中之島1-3-20", "birth_date": "1965-04-01",
                             "sex": "1", "serial": "1000"}


def test_openssl_signature_without_signed_attributes(ossl_ca: Path) -> None:
    code, out = verify(ossl_ca, cms_sign(ossl_ca, "noattr.der", "-noattr"))
    assert (code, out["reason"]) == (0, "ok")


def test_openssl_signature_with_sha1_is_weak(ossl_ca: Path) -> None:
    try:
        signature = cms_sign(ossl_ca, "sha1.der", "-md", "sha1")
    except subprocess.CalledProcessError:
        pytest.skip("this OpenSSL refuses SHA-1 signing")
    code, out = verify(ossl_ca, signature)
    assert (code, out["reason"]) == (1, "weak_algorithm")


def test_openssl_signature_over_other_data(ossl_ca: Path) -> None:
    signature = cms_sign(ossl_ca, "sig2.der")
    (ossl_ca / "other.bin").write_bytes(b"other")
    result = runner.invoke(app, ["identity", "verify", "--trust-anchor", str(ossl_ca / "root.pem"), "--crl",
                                 str(ossl_ca / "crl.pem"), "--data", str(ossl_ca / "other.bin"), "--signature",
                                 str(signature)])
    assert result.exit_code == 1 and json.loads(result.stdout)["reason"] == "digest_mismatch"


def test_openssl_revocation(ossl_ca: Path, tmp_path: Path) -> None:
    d = tmp_path / "copy"
    shutil.copytree(ossl_ca, d)
    (d / "ca.cnf").write_text(CONFIG.format(dir=d), encoding="utf-8")
    signature = cms_sign(d, "sig.der")
    run("ca", "-config", "ca.cnf", "-revoke", "leaf.pem", "-cert", "root.pem", "-keyfile", "root.key", cwd=d)
    run("ca", "-gencrl", "-config", "ca.cnf", "-cert", "root.pem", "-keyfile", "root.key", "-out", "crl2.pem", cwd=d)
    code, out = verify(d, signature, "crl2.pem")
    assert (code, out["reason"]) == (1, "revoked")


def test_openssl_verifies_kiban_signatures(openssl: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIBAN_MODE", raising=False)
    ca = tmp_path / "ca"
    assert runner.invoke(app, ["pki", "test-ca", "init", "--dir", str(ca)]).exit_code == 0
    card = tmp_path / "card.p12"
    assert runner.invoke(app, ["pki", "issue-card", "--dir", str(ca), "--lgcode", "271004", "--resident", "R9",
                               "--name", "大阪 花子", "--address", "大阪市", "--birth-date", "2001-02-28", "--sex", "2",
                               "--out", str(card)]).exit_code == 0
    (tmp_path / "data").write_bytes(b"hello")
    assert runner.invoke(app, ["pki", "sign", "--card", str(card), str(tmp_path / "data"), "--out",
                               str(tmp_path / "sig")]).exit_code == 0
    run("cms", "-verify", "-binary", "-inform", "DER", "-in", "sig", "-content", "data", "-CAfile",
        str(ca / "root.pem"), "-purpose", "any", "-out", os.devnull, cwd=tmp_path)
    # the virtual card is a PKCS#12 file OpenSSL reads (both keys)
    out = subprocess.run([openssl, "pkcs12", "-in", str(card), "-passin", "pass:KIBANTEST1", "-nodes"],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("PRIVATE KEY-----") == 4 and "friendlyName: authentication" in out
