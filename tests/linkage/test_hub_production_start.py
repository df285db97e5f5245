"""The application with its in-app exchange hub refuses to start in production mode without the
hub's secrets (issue 6): the check runs when the app is created, before any request, and the
error names the variable to set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient

from kiban.identity import testca
from kiban.linkage import protocol
from kiban.linkage.service import DEV_LINKAGE_SECRET, HUB_MEMBER
from kiban.platform import settings as settings_module
from kiban.platform.settings import UnsafeConfiguration
from kiban.web.app import create_app
from kiban_testkit import Backend

NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
SECRET = "s3cret-" * 6  # 42 characters
VARIABLES = ("KIBAN_LINKAGE_SECRET", "KIBAN_LINKAGE_KEY_DIR", "KIBAN_LINKAGE_TRUST_ANCHORS")


def production(database_url: str = "postgresql://kiban_app@127.0.0.1:1/unreachable",
               admin_url: str | None = None) -> settings_module.Settings:
    """Production settings whose own checks pass (platform secret, PostgreSQL)."""
    return settings_module.load({"KIBAN_MODE": "production", "KIBAN_DATABASE_URL": database_url,
                                 "KIBAN_DATABASE_ADMIN_URL": admin_url or database_url,
                                 "KIBAN_SECRET_KEY": "k" * 40})


def hub_files(directory: Path, shared_test_ca: Path, *, matching: bool = True) -> Path:
    """hub.key.pem, hub.crt.pem (from the test CA) and anchors.pem in `directory`."""
    ca = testca.TestCA(shared_test_ca)
    if not ca.exists():
        try:
            ca.init(NOW)
        except testca.TestCaError:
            pass
    key = ed25519.Ed25519PrivateKey.generate()
    certified = key if matching else ed25519.Ed25519PrivateKey.generate()
    cert = ca.issue_agency_certificate(HUB_MEMBER, "Kiban 情報連携基盤", certified.public_key(), NOW)
    (directory / "hub.key.pem").write_bytes(protocol.key_pem(key))
    (directory / "hub.crt.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "anchors.pem").write_bytes(ca.root_path.read_bytes())
    return directory


@pytest.fixture
def no_linkage_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(("env", "named"), [
    ({}, "KIBAN_LINKAGE_SECRET"),
    ({"KIBAN_LINKAGE_SECRET": DEV_LINKAGE_SECRET}, "KIBAN_LINKAGE_SECRET"),
    ({"KIBAN_LINKAGE_SECRET": "too-short"}, "KIBAN_LINKAGE_SECRET"),
    ({"KIBAN_LINKAGE_SECRET": SECRET}, "KIBAN_LINKAGE_KEY_DIR and KIBAN_LINKAGE_TRUST_ANCHORS"),
    ({"KIBAN_LINKAGE_SECRET": SECRET, "KIBAN_LINKAGE_KEY_DIR": "{keys}"},
     "KIBAN_LINKAGE_KEY_DIR and KIBAN_LINKAGE_TRUST_ANCHORS"),
    ({"KIBAN_LINKAGE_SECRET": SECRET, "KIBAN_LINKAGE_TRUST_ANCHORS": "{keys}/anchors.pem"},
     "KIBAN_LINKAGE_KEY_DIR and KIBAN_LINKAGE_TRUST_ANCHORS"),
    ({"KIBAN_LINKAGE_SECRET": SECRET, "KIBAN_LINKAGE_KEY_DIR": "{empty}",
      "KIBAN_LINKAGE_TRUST_ANCHORS": "{keys}/anchors.pem"}, "KIBAN_LINKAGE_KEY_DIR: hub.key.pem"),
    ({"KIBAN_LINKAGE_SECRET": SECRET, "KIBAN_LINKAGE_KEY_DIR": "{other}",
      "KIBAN_LINKAGE_TRUST_ANCHORS": "{keys}/anchors.pem"}, "does not certify the key"),
    ({"KIBAN_LINKAGE_SECRET": SECRET, "KIBAN_LINKAGE_KEY_DIR": "{keys}",
      "KIBAN_LINKAGE_TRUST_ANCHORS": "{keys}/hub.key.pem"}, "KIBAN_LINKAGE_TRUST_ANCHORS"),
    ({"KIBAN_LINKAGE_SECRET": SECRET, "KIBAN_LINKAGE_KEY_DIR": "{keys}",
      "KIBAN_LINKAGE_TRUST_ANCHORS": "{empty}/missing.pem"}, "KIBAN_LINKAGE_TRUST_ANCHORS"),
])
def test_the_app_refuses_to_start_without_the_hubs_secrets(
        env: dict[str, str], named: str, no_linkage_env: pytest.MonkeyPatch, tmp_path: Path,
        shared_test_ca: Path) -> None:
    places = {"keys": tmp_path / "keys", "other": tmp_path / "other", "empty": tmp_path / "empty"}
    for place in places.values():
        place.mkdir()
    hub_files(places["keys"], shared_test_ca)
    hub_files(places["other"], shared_test_ca, matching=False)
    for name, value in env.items():
        no_linkage_env.setenv(name, value.format(**places))
    # The database is unreachable: the refusal comes first, before any connection.
    with pytest.raises(UnsafeConfiguration, match=named):
        create_app(production())


def test_the_app_starts_with_them(pg_backend: Backend, no_linkage_env: pytest.MonkeyPatch,
                                  tmp_path: Path, shared_test_ca: Path) -> None:
    keys = hub_files(tmp_path, shared_test_ca)
    no_linkage_env.setenv("KIBAN_LINKAGE_SECRET", SECRET)
    no_linkage_env.setenv("KIBAN_LINKAGE_KEY_DIR", str(keys))
    no_linkage_env.setenv("KIBAN_LINKAGE_TRUST_ANCHORS", str(keys / "anchors.pem"))
    settings = production(pg_backend.settings.database_url, pg_backend.settings.admin_database_url)
    app = create_app(settings)
    hub = app.state.services.linkage
    assert hub.config.secret == SECRET.encode() and hub.config.ca_dir is None
    try:
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            sth = client.get("/api/v1/linkage/ct/v1/get-sth")
            assert sth.status_code == 200, sth.text
            assert protocol.verify_tree_head(hub.config.hub_key.public_key(), sth.json())
    finally:
        app.state.services.db.dispose()
