"""Certificate factory for the identity tests: roots, intermediates and leaves with any defect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from asn1crypto import core as asn1core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kiban.identity import model
from kiban.identity.testca import sign_detached

NOW = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
POLICY = "2.25.1234567"


@cache
def rsa_key(bits: int = 2048, n: int = 0) -> rsa.RSAPrivateKey:
    """Keys are slow to make: a few, cached (n distinguishes keys of the same size)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


SIGNING_USAGE = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
AUTH_USAGE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def make_cert(subject: str, key: rsa.RSAPrivateKey, issuer: Issued | None = None, *, ca: bool = False,
              path_length: int | None = None, usage: x509.KeyUsage | None = None, basic: bool = True,
              not_before: datetime | None = None, not_after: datetime | None = None,
              algorithm: hashes.HashAlgorithm | None = None, policies: tuple[str, ...] = (POLICY,),
              san: bool = False, crl_url: str | None = None, ocsp_url: str | None = None,
              extra: list[x509.ExtensionType] | None = None, issuer_name: str | None = None) -> Issued:
    signer_key = issuer.key if issuer else key
    issuer_subject = name(issuer_name) if issuer_name else (issuer.cert.subject if issuer else name(subject))
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer_subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - timedelta(days=30))
               .not_valid_after(not_after or NOW + timedelta(days=365)))
    if basic:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    if usage is None:
        usage = CA_USAGE if ca else SIGNING_USAGE
    builder = builder.add_extension(usage, critical=True)
    if policies and not ca:
        builder = builder.add_extension(x509.CertificatePolicies(
            [x509.PolicyInformation(x509.ObjectIdentifier(p), None) for p in policies]), critical=False)
    if san:
        def other(oid: str, text: str) -> x509.OtherName:
            return x509.OtherName(x509.ObjectIdentifier(oid), asn1core.UTF8String(text).dump())
        builder = builder.add_extension(x509.SubjectAlternativeName([
            other(model.OID_JPKI_NAME, "山田 花子"), other(model.OID_JPKI_SEX, "2"),
            other(model.OID_JPKI_BIRTH_DATE, "419900102"), other(model.OID_JPKI_ADDRESS, "東京都千代田区霞が関1-1")]),
            critical=False)
    if crl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False)
    if ocsp_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
    for ext in extra or []:
        builder = builder.add_extension(ext, critical=True)
    return Issued(builder.sign(signer_key, algorithm or hashes.SHA256()), key)


def resign_sha1(issued: Issued, issuer_key: rsa.RSAPrivateKey) -> Issued:
    """The same certificate signed with sha1WithRSAEncryption (cryptography no longer makes them)."""
    from asn1crypto import x509 as asn1x509
    from cryptography.hazmat.primitives.asymmetric import padding

    cert = asn1x509.Certificate.load(issued.der)
    tbs = cert["tbs_certificate"]
    tbs["signature"] = {"algorithm": "sha1_rsa", "parameters": None}
    tbs_der = tbs.dump(force=True)
    new = asn1x509.Certificate({"tbs_certificate": asn1x509.TbsCertificate.load(tbs_der),
                                "signature_algorithm": {"algorithm": "sha1_rsa", "parameters": None},
                                "signature_value": issuer_key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA1())})
    return Issued(x509.load_der_x509_certificate(new.dump()), issued.key)


def make_crl(issuer: Issued, revoked: list[x509.Certificate] = (), *, this_update: datetime | None = None,
             next_update: datetime | None = None, key: rsa.RSAPrivateKey | None = None,
             ) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
               .last_update(this_update or NOW - timedelta(hours=1))
               .next_update(next_update or NOW + timedelta(days=1)))
    for cert in revoked:
        builder = builder.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(
            cert.serial_number).revocation_date(NOW - timedelta(minutes=30)).build())
    return builder.sign(key or issuer.key, hashes.SHA256())


@dataclass
class World:
    root: Issued
    leaf: Issued  # signing certificate with the 基本4情報, issued by root
    crl: x509.CertificateRevocationList


@cache
def world() -> World:
    root = make_cert("Test Root", rsa_key(2048, 0), ca=True)
    leaf = make_cert("LEAF0001", rsa_key(2048, 1), root, san=True, crl_url="http://crl.example/root.crl")
    return World(root, leaf, make_crl(root))


def sign(data: bytes, signer: Issued) -> bytes:
    return sign_detached(data, signer.cert, signer.key)
