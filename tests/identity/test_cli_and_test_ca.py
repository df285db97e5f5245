"""The test CA, virtual cards and the CLI contract (`kiban pki ...`, `kiban identity verify`)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from kiban.cli import app
from kiban.core.clock import FixedClock
from kiban.identity import model, service, testca
from kiban.identity.model import Reason, RevocationMode

runner = CliRunner()
PERSON = ["--lgcode", "131016", "--resident", "R0001", "--name", "渡邉 太郎", "--address",
          "東京都千代田区千代田1番1号", "--birth-date", "1980-06-15", "--sex", "1"]


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("KIBAN_MODE", raising=False)
    directory = tmp_path / "ca"
    result = runner.invoke(app, ["pki", "test-ca", "init", "--dir", str(directory)])
    assert result.exit_code == 0, result.output
    return directory


def issue(ca: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    card = tmp_path / "card.p12"
    result = runner.invoke(app, ["pki", "issue-card", "--dir", str(ca), *PERSON, "--out", str(card)])
    assert result.exit_code == 0, result.output
    return card, json.loads(result.output)


def verify_cli(ca: Path, data: Path, sig: Path, *extra: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["identity", "verify", "--trust-anchor", str(ca / "root.pem"), "--crl",
                                 str(ca / "crl.der"), "--data", str(data), "--signature", str(sig), *extra])
    return result.exit_code, (json.loads(result.stdout) if result.exit_code != 2 else {})


def test_card_profile(ca: Path, tmp_path: Path) -> None:
    card_file, serials = issue(ca, tmp_path)
    card = testca.read_card(card_file.read_bytes(), "KIBANTEST1")
    for cert in (card.signing_cert, card.auth_cert):
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
        assert cert.signature_algorithm_oid.dotted_string == model.SHA256_RSA
        assert "渡邉" not in cert.subject.rfc4514_string()  # CN is opaque
    san = card.signing_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    oids = {o.type_id.dotted_string for o in san.get_values_for_type(x509.OtherName)}
    assert oids == {model.OID_JPKI_NAME, model.OID_JPKI_SEX, model.OID_JPKI_BIRTH_DATE, model.OID_JPKI_ADDRESS}
    with pytest.raises(x509.ExtensionNotFound):
        card.auth_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    usage = card.auth_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.content_commitment
    assert format(card.signing_cert.serial_number, "X") == serials["signing_serial"]
    # valid until the 5th birthday after issue
    assert card.signing_cert.not_valid_after_utc.date() <= date(card.signing_cert.not_valid_before_utc.year + 5, 6, 15)
    state = json.loads((ca / "state.json").read_text())
    assert "渡邉" not in json.dumps(state, ensure_ascii=False)  # identifiers only
    with pytest.raises(ValueError, match="PIN"):
        testca.read_card(card_file.read_bytes(), "WRONG")


def test_sign_verify_revoke_round_trip(ca: Path, tmp_path: Path) -> None:
    card, serials = issue(ca, tmp_path)
    data, sig = tmp_path / "form.json", tmp_path / "form.sig"
    data.write_text('{"procedure": "転出届"}', encoding="utf-8")
    result = runner.invoke(app, ["pki", "sign", "--card", str(card), str(data), "--out", str(sig)])
    assert result.exit_code == 0, result.output
    code, out = verify_cli(ca, data, sig)
    assert code == 0
    assert out == {"valid": True, "reason": "ok", "signer": {
        "name": "渡邉 太郎", "address": "東京都千代田区千代田1番1号", "birth_date": "1980-06-15", "sex": "1",
        "serial": serials["signing_serial"]}}
    assert runner.invoke(app, ["pki", "revoke", serials["signing_serial"], "--dir", str(ca)]).exit_code == 0
    code, out = verify_cli(ca, data, sig)
    assert (code, out["valid"], out["reason"]) == (1, False, "revoked")


def test_verify_exit_codes(ca: Path, tmp_path: Path) -> None:
    card, _ = issue(ca, tmp_path)
    data, sig = tmp_path / "d", tmp_path / "s"
    data.write_bytes(b"payload")
    runner.invoke(app, ["pki", "sign", "--card", str(card), str(data), "--out", str(sig)])
    data.write_bytes(b"payload, altered")
    code, out = verify_cli(ca, data, sig)
    assert (code, out["reason"], out["signer"]) == (1, "digest_mismatch", None)
    sig.write_bytes(b"\x00garbage")
    assert verify_cli(ca, data, sig)[1]["reason"] == "malformed"
    sig.write_bytes(b"\x30" * 2_000_000)
    assert verify_cli(ca, data, sig)[1]["reason"] == "oversized"
    # bad usage: 2, and nothing on stdout
    missing = runner.invoke(app, ["identity", "verify", "--trust-anchor", str(ca / "root.pem"), "--data", str(data),
                                  "--signature", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and missing.stdout == ""
    assert runner.invoke(app, ["identity", "verify", "--data", str(data)]).exit_code == 2
    bad_anchor = tmp_path / "bad.pem"
    bad_anchor.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    result = runner.invoke(app, ["identity", "verify", "--trust-anchor", str(bad_anchor), "--data", str(data),
                                 "--signature", str(sig)])
    assert result.exit_code == 2
    result = runner.invoke(app, ["identity", "verify", "--trust-anchor", str(ca / "root.pem"), "--data", str(data),
                                 "--signature", str(sig), "--revocation", "maybe"])
    assert result.exit_code == 2


def test_no_crl_given_and_distribution_point_unreachable(ca: Path, tmp_path: Path) -> None:
    card, _ = issue(ca, tmp_path)
    data, sig = tmp_path / "d", tmp_path / "s"
    data.write_bytes(b"payload")
    runner.invoke(app, ["pki", "sign", "--card", str(card), str(data), "--out", str(sig)])
    result = runner.invoke(app, ["identity", "verify", "--trust-anchor", str(ca / "root.pem"), "--data", str(data),
                                 "--signature", str(sig), "--no-fetch-crls"])
    assert result.exit_code == 1 and json.loads(result.stdout)["reason"] == "revocation_unknown"
    result = runner.invoke(app, ["identity", "verify", "--trust-anchor", str(ca / "root.pem"), "--data", str(data),
                                 "--signature", str(sig), "--revocation", "soft", "--no-fetch-crls"])
    assert result.exit_code == 0


def test_production_mode_refuses_the_test_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBAN_MODE", "production")
    result = runner.invoke(app, ["pki", "test-ca", "init", "--dir", str(tmp_path / "ca")])
    assert result.exit_code == 2 and "production" in result.output
    assert not (tmp_path / "ca").exists()
    result = runner.invoke(app, ["pki", "issue-card", "--dir", str(tmp_path / "ca"), *PERSON, "--out",
                                 str(tmp_path / "c.p12")])
    assert result.exit_code == 2
    with pytest.raises(service.IdentityError):
        service.sign_with_card(tmp_path / "c.p12", "x", b"", "production")


def test_issue_card_bad_input(ca: Path, tmp_path: Path) -> None:
    for flag, value in (("--lgcode", "131017"), ("--sex", "9"), ("--birth-date", "1980-13-01")):
        args = list(PERSON)
        args[args.index(flag) + 1] = value
        result = runner.invoke(app, ["pki", "issue-card", "--dir", str(ca), *args, "--out", str(tmp_path / "c")])
        assert result.exit_code == 2, flag
    assert runner.invoke(app, ["pki", "revoke", "ABCDEF", "--dir", str(ca)]).exit_code == 2
    assert runner.invoke(app, ["pki", "revoke", "not-hex", "--dir", str(ca)]).exit_code == 2
    assert runner.invoke(app, ["pki", "test-ca", "init", "--dir", str(ca)]).exit_code == 2  # exists


def test_service_for_other_domains(ca: Path, tmp_path: Path) -> None:
    card_file, _ = issue(ca, tmp_path)
    card = testca.read_card(card_file.read_bytes(), "KIBANTEST1")
    signature = testca.sign_detached(b"x", card.signing_cert, card.signing_key)
    config = service.IdentityConfig.from_env({"KIBAN_IDENTITY_TRUST_ANCHORS": str(ca / "root.pem"),
                                              "KIBAN_IDENTITY_CRLS": str(ca / "crl.der")})
    identity = service.IdentityService(config)
    assert identity.verify_signature(b"x", signature).valid
    auth_pem = card.auth_cert.public_bytes(__import__("cryptography").hazmat.primitives.serialization.Encoding.PEM)
    assert identity.validate_certificate(auth_pem, model.Purpose.AUTHENTICATION).valid
    # the signing certificate (nonRepudiation + digitalSignature) may also authenticate; the
    # authentication one carries no personal data
    assert identity.validate_certificate(auth_pem, model.Purpose.AUTHENTICATION).signer.name is None
    later = service.IdentityService(config, FixedClock(datetime(2099, 1, 1, tzinfo=UTC)))
    assert later.verify_signature(b"x", signature).reason is Reason.EXPIRED
    with pytest.raises(service.IdentityError):
        service.IdentityConfig.from_env({"KIBAN_IDENTITY_REVOCATION": "sometimes"})
    with pytest.raises(service.IdentityError):
        service.IdentityService(service.IdentityConfig.from_env({}))
    assert service.IdentityConfig.from_env({"KIBAN_IDENTITY_REVOCATION": "soft"}).policy.revocation \
        is RevocationMode.SOFT
