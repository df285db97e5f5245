"""The municipality's document-signing key: configured in production (never a default), issued
by the test CA on first use otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from kiban.identity import service, testca


def test_production_refuses_without_a_configured_key(tmp_path: Path) -> None:
    with pytest.raises(service.IdentityError, match="production"):
        service.document_key("131016", "千代田区", "production", env={"KIBAN_TEST_CA_DIR": str(tmp_path)})
    assert not (tmp_path / "root.pem").exists()


def test_test_mode_issues_a_key_from_the_test_ca(tmp_path: Path) -> None:
    key = service.document_key("131016", "東京都千代田区", "test", env={"KIBAN_TEST_CA_DIR": str(tmp_path)})
    assert key.source == "test-ca" and b"BEGIN CERTIFICATE" in key.chain_pem
    assert (tmp_path / "root.pem").exists()


def _write(directory: Path, lgcode: str, mismatched: bool = False) -> None:
    ca = testca.TestCA(directory / "ca")
    ca.init(datetime.now(UTC))
    key, cert = ca.issue_document_signer(lgcode, "千代田区", datetime.now(UTC))
    if mismatched:
        key = testca.new_key()
    (directory / f"{lgcode}.key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (directory / f"{lgcode}.crt.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_configured_key_is_used_in_production(tmp_path: Path) -> None:
    _write(tmp_path, "131016")
    key = service.document_key("131016", "", "production", env={"KIBAN_DOCUMENT_KEY_DIR": str(tmp_path)})
    assert key.source == "configured"
    with pytest.raises(service.IdentityError, match="no document-signing key"):
        service.document_key("141003", "", "production", env={"KIBAN_DOCUMENT_KEY_DIR": str(tmp_path)})


def test_configured_key_must_match_its_certificate(tmp_path: Path) -> None:
    _write(tmp_path, "131016", mismatched=True)
    with pytest.raises(service.IdentityError, match="does not match"):
        service.configured_document_key("131016", {"KIBAN_DOCUMENT_KEY_DIR": str(tmp_path)})
