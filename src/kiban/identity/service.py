"""Identity use cases other domains call: verify a detached signature, validate a certificate,
and (demo and test mode only) run the test CA.

Configuration (environment):
  KIBAN_IDENTITY_TRUST_ANCHORS    PEM/DER files of trust anchors, separated by os.pathsep
  KIBAN_IDENTITY_INTERMEDIATES    PEM/DER files of intermediate CA certificates
  KIBAN_IDENTITY_CRLS             CRL files (PEM or DER), separated by os.pathsep
  KIBAN_IDENTITY_POLICIES         required certificate policy OIDs, comma-separated
  KIBAN_IDENTITY_REVOCATION       require (default) | soft | off
  KIBAN_IDENTITY_OCSP             1: ask OCSP first (the certificate's AIA, or KIBAN_IDENTITY_OCSP_URL)
  KIBAN_IDENTITY_FETCH_CRLS       0: never fetch CRLs from distribution points (default 1)

Document signing (the key each municipality signs issued certificates with):
  KIBAN_DOCUMENT_KEY_DIR          directory of <lgcode>.key.pem, <lgcode>.crt.pem and optional
                                  <lgcode>.chain.pem (issuer certificates); required in production
  KIBAN_DOCUMENT_KEY_PASSPHRASE   passphrase of the key files, if they are encrypted
  KIBAN_TEST_CA_DIR               test and demo mode: the test CA that issues a municipality's
                                  document-signing key on first use (default var/test-ca; in
                                  KIBAN_MODE=test a temporary directory per process)
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kiban.core.checkdigits import is_valid_lgcode
from kiban.core.clock import Clock, SystemClock
from kiban.identity import testca, validation
from kiban.identity.model import Purpose, Reason, RevocationMode, ValidationPolicy, Verification, reject


class IdentityError(Exception):
    """Bad usage (configuration, arguments): the CLI exits 2 on it."""


@dataclass
class IdentityConfig:
    trust_anchors: list[Path] = field(default_factory=list)
    intermediates: list[Path] = field(default_factory=list)
    crls: list[Path] = field(default_factory=list)
    policy: ValidationPolicy = field(default_factory=ValidationPolicy)
    ocsp_url: str | None = None
    mode: str = "dev"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IdentityConfig:
        env = os.environ if env is None else env

        def paths(name: str) -> list[Path]:
            return [Path(p) for p in env.get(name, "").split(os.pathsep) if p]

        try:
            revocation = RevocationMode(env.get("KIBAN_IDENTITY_REVOCATION", "require"))
        except ValueError as exc:
            raise IdentityError("KIBAN_IDENTITY_REVOCATION must be require, soft or off") from exc
        policies = frozenset(p.strip() for p in env.get("KIBAN_IDENTITY_POLICIES", "").split(",") if p.strip())
        policy = ValidationPolicy(required_policies=policies, revocation=revocation,
                                  use_ocsp=env.get("KIBAN_IDENTITY_OCSP", "0") == "1",
                                  fetch_crls=env.get("KIBAN_IDENTITY_FETCH_CRLS", "1") == "1")
        return cls(paths("KIBAN_IDENTITY_TRUST_ANCHORS"), paths("KIBAN_IDENTITY_INTERMEDIATES"),
                   paths("KIBAN_IDENTITY_CRLS"), policy, env.get("KIBAN_IDENTITY_OCSP_URL") or None,
                   env.get("KIBAN_MODE", "dev"))


class IdentityService:
    """Verification for the other domains. Trust anchors and CRL files are loaded once; CRLs
    fetched from distribution points are cached until their nextUpdate."""

    def __init__(self, config: IdentityConfig, clock: Clock | None = None,
                 revocation: validation.Revocation | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        try:
            self.trust = validation.TrustStore.from_files(config.trust_anchors, config.intermediates)
            crls = [validation.load_crl(Path(p).read_bytes()) for p in config.crls]
        except (OSError, validation.ValidationError) as exc:
            raise IdentityError(f"cannot load trust configuration: {exc}") from exc
        if not self.trust.anchors:
            raise IdentityError("no trust anchor configured")
        self.revocation = revocation or validation.Revocation(crls=crls, ocsp_url=config.ocsp_url)
        if revocation is not None:
            self.revocation.crls.extend(crls)

    def verify_signature(self, data: bytes, signature: bytes, purpose: Purpose = Purpose.SIGNING,
                         policy: ValidationPolicy | None = None) -> Verification:
        """Verify a detached CMS signature over `data`. Never raises."""
        return validation.verify_detached(data, signature, self.trust, self.revocation, self.clock.now(),
                                          purpose, policy or self.config.policy)

    def validate_certificate(self, certificate: bytes, purpose: Purpose) -> Verification:
        """Validate one certificate (PEM or DER), e.g. the authentication certificate at login."""
        return validation.validate_certificate(certificate, self.trust, self.revocation, self.clock.now(),
                                               purpose, self.config.policy, self.trust.intermediates)


def verify_files(anchors: Sequence[Path], crls: Sequence[Path], data: Path, signature: Path,
                 revocation: RevocationMode = RevocationMode.REQUIRE, fetch_crls: bool = True,
                 policies: Sequence[str] = (), clock: Clock | None = None) -> Verification:
    """What `kiban identity verify` does. Raises IdentityError for bad usage (unreadable files,
    no anchor); everything wrong with the signature is a rejection."""
    config = IdentityConfig(list(anchors), [], list(crls), replace(
        ValidationPolicy(), revocation=revocation, fetch_crls=fetch_crls, required_policies=frozenset(policies)))
    service = IdentityService(config, clock)
    try:
        payload = data.read_bytes()
        size = signature.stat().st_size
    except OSError as exc:
        raise IdentityError(f"cannot read {exc.filename}") from exc
    if size > config.policy.max_signature_bytes:
        return reject(Reason.OVERSIZED)
    return service.verify_signature(payload, signature.read_bytes())


# --- the test CA ---------------------------------------------------------------------------

def _test_ca(directory: Path, mode: str) -> testca.TestCA:
    if mode == "production":
        raise IdentityError("the test CA and virtual cards are refused in production mode (KIBAN_MODE=production)")
    return testca.TestCA(directory)


class TestPki:
    """The test CA and virtual cards; constructing it in production mode fails."""

    def __init__(self, directory: Path, mode: str, clock: Clock | None = None) -> None:
        self.ca = _test_ca(directory, mode)
        self.clock = clock or SystemClock()

    def init(self, crl_url: str = testca.DEFAULT_CRL_URL, ocsp_url: str | None = None, force: bool = False) -> Path:
        try:
            self.ca.init(self.clock.now(), crl_url, ocsp_url, force)
        except testca.TestCaError as exc:
            raise IdentityError(str(exc)) from exc
        return self.ca.root_path

    def issue_card(self, lgcode: str, resident: str, name: str, address: str, birth_date: str, sex: str,
                   pin: str) -> testca.Card:
        if not is_valid_lgcode(lgcode):
            raise IdentityError(f"{lgcode} is not a valid 地方公共団体コード")
        if sex not in ("1", "2", "3"):
            raise IdentityError("sex must be 1 (male), 2 (female) or 3 (not stated)")
        if not (name.strip() and address.strip() and resident.strip()):
            raise IdentityError("resident, name and address are required")
        try:
            born = date.fromisoformat(birth_date)
        except ValueError as exc:
            raise IdentityError("birth date must be YYYY-MM-DD") from exc
        if not pin:
            raise IdentityError("a PIN is required")
        person = testca.Person(lgcode, resident, name, address, born, sex)
        try:
            return self.ca.issue_card(person, self.clock.now())
        except testca.TestCaError as exc:
            raise IdentityError(str(exc)) from exc

    def revoke(self, serial: str) -> None:
        try:
            int(serial, 16)
        except ValueError as exc:
            raise IdentityError("serial must be hexadecimal") from exc
        try:
            self.ca.revoke(serial, self.clock.now())
        except testca.TestCaError as exc:
            raise IdentityError(str(exc)) from exc

    def refresh_crl(self) -> None:
        try:
            self.ca.write_crl(self.clock.now())
        except testca.TestCaError as exc:
            raise IdentityError(str(exc)) from exc


def sign_with_card(card_file: Path, pin: str, data: bytes, mode: str) -> bytes:
    """A detached CMS signature with a virtual card's signing key (test and demo mode only)."""
    if mode == "production":
        raise IdentityError("virtual cards are refused in production mode (KIBAN_MODE=production)")
    try:
        card = testca.read_card(card_file.read_bytes(), pin)
    except OSError as exc:
        raise IdentityError(f"cannot read {card_file}") from exc
    except ValueError as exc:
        raise IdentityError(str(exc)) from exc
    return testca.sign_detached(data, card.signing_cert, card.signing_key)


# --- document-signing keys -----------------------------------------------------------------

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class DocumentKey:
    """A municipality's document-signing key, certificate and issuer chain (PEM)."""

    key_pem: bytes
    certificate_pem: bytes
    chain_pem: bytes
    source: str  # "configured" or "test-ca"


def configured_document_key(lgcode: str, env: Mapping[str, str] | None = None) -> DocumentKey | None:
    """The key configured for the municipality (KIBAN_DOCUMENT_KEY_DIR), None when no directory
    is configured. IdentityError when the directory lacks the municipality's files or they do
    not match."""
    env = os.environ if env is None else env
    directory = env.get("KIBAN_DOCUMENT_KEY_DIR")
    if not directory:
        return None
    if not is_valid_lgcode(lgcode):
        raise IdentityError(f"{lgcode} is not a valid 地方公共団体コード")
    base = Path(directory)
    try:
        key_pem = (base / f"{lgcode}.key.pem").read_bytes()
        cert_pem = (base / f"{lgcode}.crt.pem").read_bytes()
        chain_path = base / f"{lgcode}.chain.pem"
        chain_pem = chain_path.read_bytes() if chain_path.exists() else b""
    except OSError as exc:
        raise IdentityError(f"no document-signing key for {lgcode} in KIBAN_DOCUMENT_KEY_DIR") from exc
    passphrase = env.get("KIBAN_DOCUMENT_KEY_PASSPHRASE")
    try:
        key = serialization.load_pem_private_key(key_pem, passphrase.encode() if passphrase else None)
        cert = x509.load_pem_x509_certificate(cert_pem)
        if chain_pem:
            x509.load_pem_x509_certificates(chain_pem)
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"the document-signing key or certificate of {lgcode} cannot be read") from exc
    public = cert.public_key()
    if not (isinstance(key, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey)
            and key.public_key().public_numbers() == public.public_numbers()):
        raise IdentityError(f"the document-signing key of {lgcode} is not RSA or does not match its certificate")
    unencrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return DocumentKey(unencrypted, cert_pem, chain_pem, "configured")


@functools.cache
def _scratch_ca_dir() -> str:
    return tempfile.mkdtemp(prefix="kiban-test-ca-")


def document_key(lgcode: str, municipality: str, mode: str, env: Mapping[str, str] | None = None,
                 clock: Clock | None = None) -> DocumentKey:
    """The key to sign the municipality's documents with: the configured one; else, in test and
    demo mode only, a new one from the test CA (created when missing). Production mode never
    falls back to a default: without a configured key it raises IdentityError."""
    env = os.environ if env is None else env
    configured = configured_document_key(lgcode, env)
    if configured is not None:
        return configured
    if mode == "production":
        raise IdentityError("document signing needs a configured key in production mode (KIBAN_DOCUMENT_KEY_DIR)")
    directory = env.get("KIBAN_TEST_CA_DIR")
    if not directory:
        # Test mode: a throwaway CA per process (the issued key is kept in the database anyway).
        directory = _scratch_ca_dir() if mode == "test" else str(PROJECT_ROOT / "var" / "test-ca")
    ca = _test_ca(Path(directory), mode)
    now = (clock or SystemClock()).now()
    if not ca.exists():
        try:
            ca.init(now)
        except testca.TestCaError:
            pass  # made meanwhile by another process
    key, cert = ca.issue_document_signer(lgcode, municipality, now)
    return DocumentKey(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        cert.public_bytes(serialization.Encoding.PEM), ca.root().public_bytes(serialization.Encoding.PEM),
        "test-ca")


# --- the verifier the platform itself uses (linking, login) ---------------------------------

def test_ca_dir(mode: str, env: Mapping[str, str] | None = None) -> Path:
    """Where the test CA lives in test and demo mode: KIBAN_TEST_CA_DIR, else var/test-ca (a
    temporary directory per process in KIBAN_MODE=test)."""
    env = os.environ if env is None else env
    directory = env.get("KIBAN_TEST_CA_DIR")
    if directory:
        return Path(directory)
    return Path(_scratch_ca_dir()) if mode == "test" else PROJECT_ROOT / "var" / "test-ca"


def platform_identity(mode: str, clock: Clock | None = None, env: Mapping[str, str] | None = None,
                      ) -> IdentityService:
    """The verifier for card linking and login. Configured trust anchors when given (always in
    production). Otherwise, in test and demo mode, the test CA's root, with revocation status
    from the test CA's OCSP responder asked in-process (the same answer its HTTP responder
    gives, without the server calling itself) and CRLs from its distribution point."""
    env = os.environ if env is None else env
    config = IdentityConfig.from_env(env)
    config.mode = mode
    if config.trust_anchors or mode == "production":
        return IdentityService(config, clock)
    ca = _test_ca(test_ca_dir(mode, env), mode)
    if not ca.exists():
        raise IdentityError("no trust anchor configured and no test CA: run `kiban pki test-ca init`")
    config.trust_anchors = [ca.root_path]
    config.policy = replace(config.policy, use_ocsp=True)
    the_clock = clock or SystemClock()
    revocation = validation.Revocation(
        ocsp_post=lambda _url, body: ca.ocsp_response(body, the_clock.now()),
        ocsp_url="in-process:test-ca")
    return IdentityService(config, the_clock, revocation)


def revoke_at_test_ca(mode: str, serial: str, clock: Clock | None = None,
                      env: Mapping[str, str] | None = None) -> bool:
    """Revoke a certificate the test CA issued (test and demo mode); False when there is no
    test CA or it did not issue the serial (a real card: J-LIS revokes it)."""
    if mode == "production":
        return False
    ca = testca.TestCA(test_ca_dir(mode, env))
    if not ca.exists():
        return False
    try:
        ca.revoke(serial, (clock or SystemClock()).now())
    except testca.TestCaError:
        return False
    return True
