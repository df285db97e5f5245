"""The test CA and virtual My Number cards (demo and test mode only).

A directory holds the CA: `root.pem` (the trust anchor to configure), `root.key.pem`
(unencrypted: this is a test CA), `crl.der`/`crl.pem` (reissued on every revocation) and
`state.json` (issued and revoked serials). A virtual card is a PKCS#12 file holding two keys
and certificates, as the card's chip does: the signing certificate (friendly name "signing")
with the 基本4情報 and the authentication certificate ("authentication") without personal data.
`cryptography` writes PKCS#12 with one key only, so the two-key file is assembled here with
`asn1crypto` (RFC 7292: shrouded PKCS#8 key bags, certificate bags, HMAC-SHA256 integrity).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from asn1crypto import algos, cms
from asn1crypto import core as asn1core
from asn1crypto import keys as asn1keys
from asn1crypto import pkcs12 as p12
from asn1crypto import x509 as asn1x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from kiban.identity import model

# The test CA's certificate policy: an OID under the UUID arc (2.25, ITU-T X.667), which needs
# no registration. Real JPKI policies are configured as required policies in production.
TEST_POLICY_OID = "2.25.226447081693394402113402735364126017722"
ROOT_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kiban TEST ONLY"),
    x509.NameAttribute(NameOID.COMMON_NAME, "Kiban Test JPKI Root CA (not for production)"),
])
CA_USAGE = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                         encipher_only=False, decipher_only=False)
DEFAULT_CRL_URL = "http://127.0.0.1:8000/pki/crl/root.crl"


_ROOT_KEYS: dict[bytes, rsa.RSAPrivateKey] = {}  # root.key.pem content -> key


class TestCaError(Exception):
    """A usage error of the test CA (no CA, unknown serial, refused in production)."""


@dataclass(frozen=True)
class Person:
    lgcode: str
    resident: str
    name: str
    address: str
    birth_date: date
    sex: str  # "1" male, "2" female, "3" not stated


@dataclass
class Card:
    signing_key: rsa.RSAPrivateKey
    signing_cert: x509.Certificate
    auth_key: rsa.RSAPrivateKey
    auth_cert: x509.Certificate
    ca_certs: list[x509.Certificate]


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class TestCA:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)

    # -- files --
    @property
    def root_path(self) -> Path:
        return self.dir / "root.pem"

    @property
    def crl_path(self) -> Path:
        return self.dir / "crl.der"

    def exists(self) -> bool:
        return self.root_path.exists() and (self.dir / "state.json").exists()

    def _state(self) -> dict[str, object]:
        if not self.exists():
            raise TestCaError(f"no test CA in {self.dir}: run `kiban pki test-ca init` first")
        data: dict[str, object] = json.loads((self.dir / "state.json").read_text())
        return data

    def _save(self, state: dict[str, object]) -> None:
        tmp = self.dir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.dir / "state.json")

    def root(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.root_path.read_bytes())

    def _root_key(self) -> rsa.RSAPrivateKey:
        # Loading an RSA key checks it (tens of milliseconds): kept per file content, since
        # the OCSP responder signs with it on every answer.
        pem = (self.dir / "root.key.pem").read_bytes()
        cached = _ROOT_KEYS.get(pem)
        if cached is None:
            key = serialization.load_pem_private_key(pem, None)
            assert isinstance(key, rsa.RSAPrivateKey)
            if len(_ROOT_KEYS) >= 16:
                _ROOT_KEYS.clear()
            cached = _ROOT_KEYS[pem] = key
        return cached

    # -- operations --
    def init(self, now: datetime, crl_url: str = DEFAULT_CRL_URL, ocsp_url: str | None = None,
             force: bool = False) -> x509.Certificate:
        if self.exists() and not force:
            raise TestCaError(f"a test CA already exists in {self.dir}")
        self.dir.mkdir(parents=True, exist_ok=True)
        key = new_key()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder().subject_name(ROOT_NAME).issuer_name(ROOT_NAME)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(CA_USAGE, critical=True)
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256()))
        (self.dir / "root.key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        os.chmod(self.dir / "root.key.pem", 0o600)
        self.root_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._save({"crl_number": 0, "crl_url": crl_url, "ocsp_url": ocsp_url, "issued": [], "revoked": []})
        self.write_crl(now)
        return cert

    def write_crl(self, now: datetime, validity: timedelta = timedelta(days=1)) -> x509.CertificateRevocationList:
        """Reissue the CRL (daily, as JPKI's platform operators publish it)."""
        state = self._state()
        number = int(str(state["crl_number"])) + 1
        root, key = self.root(), self._root_key()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(root.subject)
                   .last_update(now).next_update(now + validity)
                   .add_extension(x509.CRLNumber(number), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                                  critical=False))
        for entry in state["revoked"]:  # type: ignore[attr-defined]
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(entry["serial"], 16))
                .revocation_date(datetime.fromisoformat(entry["date"])).build())
        crl = builder.sign(key, hashes.SHA256())
        self.crl_path.write_bytes(crl.public_bytes(serialization.Encoding.DER))
        (self.dir / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        state["crl_number"] = number
        self._save(state)
        return crl

    def _leaf(self, key: rsa.RSAPrivateKey, now: datetime, until: datetime, usage: x509.KeyUsage,
              san: x509.SubjectAlternativeName | None, state: dict[str, object]) -> x509.Certificate:
        root, root_key = self.root(), self._root_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                             x509.NameAttribute(NameOID.COMMON_NAME, secrets.token_hex(12).upper())])
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(root.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(until)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(usage, critical=True)
                   .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                       x509.ObjectIdentifier(TEST_POLICY_OID), None)]), critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                                  critical=False)
                   .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                       [x509.UniformResourceIdentifier(str(state["crl_url"]))], None, None, None)]), critical=False))
        if state.get("ocsp_url"):
            builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(str(state["ocsp_url"])))]),
                critical=False)
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(root_key, hashes.SHA256())

    def issue_card(self, person: Person, now: datetime) -> Card:
        state = self._state()
        root = self.root()
        today = now.date()
        until = datetime.combine(model.signing_certificate_expiry(today, person.birth_date),
                                 datetime.min.time(), UTC)
        until = min(until, root.not_valid_after_utc)

        def other(oid: str, text: str) -> x509.OtherName:
            return x509.OtherName(x509.ObjectIdentifier(oid), asn1core.UTF8String(text).dump())

        san = x509.SubjectAlternativeName([
            other(model.OID_JPKI_NAME, person.name),
            other(model.OID_JPKI_SEX, person.sex),
            other(model.OID_JPKI_BIRTH_DATE, model.encode_birth_date(person.birth_date)),
            other(model.OID_JPKI_ADDRESS, person.address),
        ])
        signing_key, auth_key = new_key(), new_key()
        signing = self._leaf(signing_key, now, until,
                             x509.KeyUsage(True, True, False, False, False, False, False, False, False), san, state)
        auth = self._leaf(auth_key, now, until,
                          x509.KeyUsage(True, False, False, False, False, False, False, False, False), None, state)
        issued: list[dict[str, str]] = state["issued"]  # type: ignore[assignment]
        for kind, cert in (("signing", signing), ("authentication", auth)):
            # Identifiers only: the personal data is in the certificate, not in the CA's state.
            issued.append({"serial": format(cert.serial_number, "X"), "kind": kind, "lgcode": person.lgcode,
                           "resident": person.resident, "issued_at": now.isoformat()})
        self._save(state)
        return Card(signing_key, signing, auth_key, auth, [root])

    def issue_document_signer(self, lgcode: str, municipality: str, now: datetime,
                              years: int = 5) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
        """A municipality's document-signing certificate (the key that signs issued certificates
        as PDF): keyUsage digitalSignature + nonRepudiation, the municipality named in the
        subject (O, with the 地方公共団体コード as OU)."""
        state = self._state()
        root, root_key = self.root(), self._root_key()
        key = new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, municipality or lgcode),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, lgcode),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{municipality} 文書署名 (TEST ONLY)")])
        until = min(now + timedelta(days=365 * years), root.not_valid_after_utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(root.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5)).not_valid_after(until)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                               critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                               critical=False)
                .sign(root_key, hashes.SHA256()))
        issued: list[dict[str, str]] = state["issued"]  # type: ignore[assignment]
        issued.append({"serial": format(cert.serial_number, "X"), "kind": "document", "lgcode": lgcode,
                       "resident": "", "issued_at": now.isoformat()})
        self._save(state)
        return key, cert

    def issue_agency_certificate(self, member: str, name: str, public_key: ed25519.Ed25519PublicKey,
                                 now: datetime, days: int = 730) -> x509.Certificate:
        """An exchange-hub member's certificate (kiban.linkage): an Ed25519 key, the subsystem
        INSTANCE/CLASS/MEMBER/SUBSYSTEM as CN and the agency as O."""
        state = self._state()
        root, root_key = self.root(), self._root_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, name or member),
                             x509.NameAttribute(NameOID.COMMON_NAME, member)])
        until = min(now + timedelta(days=days), root.not_valid_after_utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(root.subject)
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5)).not_valid_after(until)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                               critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                               critical=False)
                .sign(root_key, hashes.SHA256()))
        issued: list[dict[str, str]] = state["issued"]  # type: ignore[assignment]
        issued.append({"serial": format(cert.serial_number, "X"), "kind": "linkage", "lgcode": "",
                       "resident": member, "issued_at": now.isoformat()})
        self._save(state)
        return cert

    def revoke(self, serial_hex: str, now: datetime) -> x509.CertificateRevocationList:
        state = self._state()
        serial = format(int(serial_hex, 16), "X")
        issued: list[dict[str, str]] = state["issued"]  # type: ignore[assignment]
        if not any(e["serial"] == serial for e in issued):
            raise TestCaError(f"serial {serial} was not issued by this CA")
        revoked: list[dict[str, str]] = state["revoked"]  # type: ignore[assignment]
        if not any(e["serial"] == serial for e in revoked):
            revoked.append({"serial": serial, "date": now.isoformat()})
            self._save(state)
        return self.write_crl(now)

    def crl_der(self, now: datetime) -> bytes:
        """The current CRL, reissued first when it has passed its nextUpdate (what the
        distribution point serves)."""
        crl = x509.load_der_x509_crl(self.crl_path.read_bytes())
        next_update = crl.next_update_utc
        if next_update is None or next_update <= now:
            crl = self.write_crl(now)
        return crl.public_bytes(serialization.Encoding.DER)

    def ocsp_response(self, request_der: bytes, now: datetime,
                      validity: timedelta = timedelta(hours=1)) -> bytes:
        """RFC 6960 answer to one request, signed by the root itself (the issuer of every
        certificate here): good, revoked (with the time), or unknown for a serial not issued.
        A request that cannot be parsed, asks for several certificates or names another
        issuer gets an unsigned malformedRequest or unauthorized response. A nonce is echoed."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            serial = request.serial_number
            algorithm = request.hash_algorithm
            name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
        except Exception:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(serialization.Encoding.DER)
        root, key = self.root(), self._root_key()
        probe = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            name_hash, key_hash, serial, algorithm).build()
        own = ocsp.OCSPRequestBuilder().add_certificate(root, root, algorithm).build()
        if (probe.issuer_name_hash, probe.issuer_key_hash) != (own.issuer_name_hash, own.issuer_key_hash):
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        state = self._state()
        hex_serial = format(serial, "X")
        issued = any(e["serial"] == hex_serial for e in state["issued"])  # type: ignore[attr-defined]
        revoked = [e for e in state["revoked"] if e["serial"] == hex_serial]  # type: ignore[attr-defined]
        if revoked:
            status, revoked_at = ocsp.OCSPCertStatus.REVOKED, datetime.fromisoformat(revoked[0]["date"])
        elif issued:
            status, revoked_at = ocsp.OCSPCertStatus.GOOD, None
        else:
            status, revoked_at = ocsp.OCSPCertStatus.UNKNOWN, None
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=name_hash, issuer_key_hash=key_hash, serial_number=serial, algorithm=algorithm,
            cert_status=status, this_update=now, next_update=now + validity, revocation_time=revoked_at,
            revocation_reason=None).responder_id(ocsp.OCSPResponderEncoding.HASH, root)
        for ext in request.extensions:
            if isinstance(ext.value, x509.OCSPNonce):
                builder = builder.add_extension(ext.value, critical=False)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


# --- PKCS#12 with two keys -----------------------------------------------------------------

def _pkcs12_kdf(password: str, salt: bytes, purpose: int, iterations: int, length: int) -> bytes:
    """RFC 7292 appendix B.2 with SHA-256 (u = 32, v = 64)."""
    u, v = 32, 64
    pw = (password.encode("utf-16-be") + b"\x00\x00") if password else b""
    d = bytes([purpose]) * v

    def fill(data: bytes) -> bytes:
        if not data:
            return b""
        n = v * ((len(data) + v - 1) // v)
        return (data * (n // len(data) + 1))[:n]

    i = bytearray(fill(salt) + fill(pw))
    out = b""
    while len(out) < length:
        a = hashlib.sha256(d + bytes(i)).digest()
        for _ in range(iterations - 1):
            a = hashlib.sha256(a).digest()
        out += a
        b = int.from_bytes((a * (v // u + 1))[:v], "big")
        for j in range(0, len(i), v):
            block = (int.from_bytes(i[j:j + v], "big") + b + 1) % (1 << (v * 8))
            i[j:j + v] = block.to_bytes(v, "big")
    return out[:length]


def write_card(card: Card, pin: str) -> bytes:
    bags = []
    for name, key, cert in (("signing", card.signing_key, card.signing_cert),
                            ("authentication", card.auth_key, card.auth_cert)):
        attrs = [{"type": "friendly_name", "values": [name]},
                 {"type": "local_key_id", "values": [cert.fingerprint(hashes.SHA256())]}]
        shrouded = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.BestAvailableEncryption(pin.encode()))
        bags.append(p12.SafeBag({"bag_id": "pkcs8_shrouded_key_bag",
                                 "bag_value": asn1keys.EncryptedPrivateKeyInfo.load(shrouded),
                                 "bag_attributes": attrs}))
        bags.append(p12.SafeBag({"bag_id": "cert_bag", "bag_attributes": attrs, "bag_value": p12.CertBag(
            {"cert_id": "x509", "cert_value": asn1x509.Certificate.load(_der(cert))})}))
    for ca in card.ca_certs:
        bags.append(p12.SafeBag({"bag_id": "cert_bag", "bag_value": p12.CertBag(
            {"cert_id": "x509", "cert_value": asn1x509.Certificate.load(_der(ca))})}))
    safe = p12.SafeContents(bags).dump()
    auth_safe = p12.AuthenticatedSafe([cms.ContentInfo({"content_type": "data", "content": safe})]).dump()
    salt, iterations = os.urandom(16), 2048
    mac_key = _pkcs12_kdf(pin, salt, 3, iterations, 32)
    mac = hmac.new(mac_key, auth_safe, hashlib.sha256).digest()
    pfx = p12.Pfx({
        "version": "v3", "auth_safe": cms.ContentInfo({"content_type": "data", "content": auth_safe}),
        "mac_data": p12.MacData({"mac": algos.DigestInfo({"digest_algorithm": {"algorithm": "sha256"},
                                                           "digest": mac}),
                                 "mac_salt": salt, "iterations": iterations}),
    })
    return bytes(pfx.dump())


def read_card(blob: bytes, pin: str) -> Card:
    """Read a virtual card; ValueError on a wrong PIN or a file that is not a card."""
    try:
        pfx = p12.Pfx.load(blob)
        auth_safe = bytes(pfx["auth_safe"]["content"].native)
        mac_data = pfx["mac_data"]
        if mac_data["mac"]["digest_algorithm"]["algorithm"].native != "sha256":
            raise ValueError("unsupported PKCS#12 MAC")
        key = _pkcs12_kdf(pin, bytes(mac_data["mac_salt"].native), 3, int(mac_data["iterations"].native), 32)
        if not hmac.compare_digest(hmac.new(key, auth_safe, hashlib.sha256).digest(),
                                   bytes(mac_data["mac"]["digest"].native)):
            raise ValueError("wrong PIN or damaged card file")
        keys: dict[str, rsa.RSAPrivateKey] = {}
        certs: dict[str, x509.Certificate] = {}
        extra: list[x509.Certificate] = []
        for info in p12.AuthenticatedSafe.load(auth_safe):
            for bag in p12.SafeContents.load(bytes(info["content"].native)):
                names = {a["type"].native: a["values"][0].native for a in bag["bag_attributes"]}
                name = names.get("friendly_name")
                if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                    private = serialization.load_der_private_key(bag["bag_value"].untag().dump(), pin.encode())
                    if isinstance(private, rsa.RSAPrivateKey) and name:
                        keys[name] = private
                elif bag["bag_id"].native == "cert_bag":
                    cert = x509.load_der_x509_certificate(bag["bag_value"]["cert_value"].parsed.dump())
                    if name:
                        certs[name] = cert
                    else:
                        extra.append(cert)
        return Card(keys["signing"], certs["signing"], keys["authentication"], certs["authentication"], extra)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError("not a virtual card file") from exc


def login_key_json(card: Card) -> bytes:
    """The demo's browser "virtual card": the authentication certificate (PEM) and its key
    (unencrypted PKCS#8, base64) as JSON, for the login page's WebCrypto script. Test CA
    cards only: a real card's key never leaves the chip."""
    key = card.auth_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    return json.dumps({"authentication_certificate": card.auth_cert.public_bytes(serialization.Encoding.PEM).decode(),
                       "authentication_key": base64.b64encode(key).decode()}).encode()


def sign_detached(data: bytes, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bytes:
    """A detached CMS SignedData (DER, binary content, signed attributes), as the card app makes."""
    return (pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]))


def new_uuid_oid() -> str:
    """An OID under 2.25 for a test policy of one's own."""
    return f"2.25.{uuid.uuid4().int}"
