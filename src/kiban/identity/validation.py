"""Certificate path validation, revocation (CRL and OCSP) and detached CMS verification.

Parsing and cryptography live here (`cryptography` for X.509, keys, CRLs and OCSP;
`asn1crypto` for the CMS structure); every decision is a rule of `model`. Every function that
takes untrusted bytes returns a `Reason` rather than raising.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import cms
from asn1crypto import core as asn1core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from kiban.identity import model
from kiban.identity.model import Purpose, Reason, RevocationMode, Signer, ValidationPolicy, Verification, reject

Fetch = Callable[[str], bytes]  # URL -> CRL bytes
Post = Callable[[str, bytes], bytes]  # URL, OCSP request -> OCSP response bytes

MAX_FETCH_BYTES = 20_000_000
OCSP_CLOCK_SKEW = timedelta(minutes=5)
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
    "sha1": hashes.SHA1, "md5": hashes.MD5,
}
_RSA_SIGNATURE_OIDS = {
    "1.2.840.113549.1.1.1": None,  # rsaEncryption: hash from digestAlgorithm (OpenSSL's choice)
    "1.2.840.113549.1.1.11": "sha256", "1.2.840.113549.1.1.12": "sha384", "1.2.840.113549.1.1.13": "sha512",
}


class ValidationError(Exception):
    """Internal signal carrying a reason; never leaves this module's public functions."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(detail or reason.value)
        self.reason = reason
        self.detail = detail


# --- loading ----------------------------------------------------------------------------

def load_certificates(blob: bytes, memo: dict[x509.Certificate, model.CertFacts] | None = None
                      ) -> list[x509.Certificate]:
    """PEM (one or more certificates) or DER. Raises ValidationError(malformed_certificate)."""
    try:
        if b"-----BEGIN" in blob:
            certs = x509.load_pem_x509_certificates(blob)
        else:
            certs = [x509.load_der_x509_certificate(blob)]
    except Exception as exc:
        raise ValidationError(Reason.MALFORMED_CERTIFICATE, "cannot parse certificate") from exc
    for cert in certs:  # cryptography parses some fields lazily: read them all now
        facts = facts_of(cert)
        if memo is not None:
            memo[cert] = facts
        try:
            cert.subject.public_bytes()
            cert.issuer.public_bytes()
        except Exception as exc:
            raise ValidationError(Reason.MALFORMED_CERTIFICATE, "cannot read names") from exc
    return certs


def load_crl(blob: bytes) -> x509.CertificateRevocationList:
    try:
        if b"-----BEGIN" in blob:
            return x509.load_pem_x509_crl(blob)
        return x509.load_der_x509_crl(blob)
    except Exception as exc:
        raise ValidationError(Reason.MALFORMED, "cannot parse CRL") from exc


@dataclass
class TrustStore:
    anchors: list[x509.Certificate]
    intermediates: list[x509.Certificate] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._anchors = set(self.anchors)
        self._by_subject: dict[bytes, list[x509.Certificate]] = {}
        for cert in self.anchors:
            self._by_subject.setdefault(cert.subject.public_bytes(), []).append(cert)
        # Anchors and configured intermediates are read once, not per signature.
        self.facts: dict[x509.Certificate, model.CertFacts] = {c: facts_of(c) for c in [*self.anchors,
                                                                                      *self.intermediates]}

    def is_anchor(self, cert: x509.Certificate) -> bool:
        return cert in self._anchors

    def anchors_named(self, name: bytes) -> list[x509.Certificate]:
        return self._by_subject.get(name, [])

    @classmethod
    def from_files(cls, anchors: Iterable[Path], intermediates: Iterable[Path] = ()) -> TrustStore:
        return cls([c for p in anchors for c in load_certificates(Path(p).read_bytes())],
                   [c for p in intermediates for c in load_certificates(Path(p).read_bytes())])


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


# --- facts and the path -----------------------------------------------------------------

def facts_of(cert: x509.Certificate) -> model.CertFacts:
    try:
        key = cert.public_key()
        key_type, bits = ("rsa", key.key_size) if isinstance(key, rsa.RSAPublicKey) else (type(key).__name__, 0)
        is_ca, path_length = False, None
        key_usage: frozenset[str] | None = None
        policies: frozenset[str] = frozenset()
        critical = set()
        for ext in cert.extensions:
            if ext.critical:
                critical.add(ext.oid.dotted_string)
            value = ext.value
            if isinstance(value, x509.BasicConstraints):
                is_ca, path_length = value.ca, value.path_length
            elif isinstance(value, x509.KeyUsage):
                names = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                         "key_agreement", "key_cert_sign", "crl_sign"]
                key_usage = frozenset(n for n in names if getattr(value, n))
            elif isinstance(value, x509.CertificatePolicies):
                policies = frozenset(p.policy_identifier.dotted_string for p in value)
        return model.CertFacts(
            serial=cert.serial_number, not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc, signature_algorithm=cert.signature_algorithm_oid.dotted_string,
            key_type=key_type, key_bits=bits, is_ca=is_ca, path_length=path_length, key_usage=key_usage,
            policies=policies, critical_extensions=frozenset(critical))
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError(Reason.MALFORMED_CERTIFICATE, "cannot read certificate fields") from exc


def build_path(leaf: x509.Certificate, pool: Sequence[x509.Certificate], trust: TrustStore,
               policy: ValidationPolicy) -> list[x509.Certificate]:
    """End certificate first, trust anchor last; issuers matched by name, anchors preferred."""
    path = [leaf]
    seen = {leaf}
    current = leaf
    while not trust.is_anchor(current):
        issuer_name = current.issuer.public_bytes()
        anchors = trust.anchors_named(issuer_name)
        others = [c for c in [*pool, *trust.intermediates] if c.subject.public_bytes() == issuer_name]
        fresh = [c for c in others if c not in seen]
        if anchors:
            nxt = anchors[0]
        elif fresh:
            nxt = fresh[0]
        elif others and current.subject.public_bytes() != issuer_name:
            raise ValidationError(Reason.CHAIN_LOOP, "the issuers form a cycle")
        else:
            raise ValidationError(Reason.UNTRUSTED, "no path to a trust anchor")
        if len(path) >= policy.max_chain_length:
            raise ValidationError(Reason.CHAIN_TOO_LONG, f"more than {policy.max_chain_length} certificates")
        path.append(nxt)
        seen.add(nxt)
        current = nxt
    return path


def verify_issued_by(cert: x509.Certificate | x509.CertificateRevocationList, issuer: x509.Certificate,
                     policy: ValidationPolicy) -> bool:
    try:
        if cert.signature_algorithm_oid.dotted_string not in policy.signature_algorithms:
            raise ValidationError(Reason.WEAK_ALGORITHM, "signature algorithm not allowed")
        key = issuer.public_key()
        algorithm = cert.signature_hash_algorithm
        if not isinstance(key, rsa.RSAPublicKey) or algorithm is None:
            return False
        tbs = cert.tbs_certificate_bytes if isinstance(cert, x509.Certificate) else cert.tbs_certlist_bytes
        key.verify(cert.signature, tbs, padding.PKCS1v15(), algorithm)
        return True
    except ValidationError:
        raise
    except Exception:
        return False


def validate_path(leaf: x509.Certificate, pool: Sequence[x509.Certificate], trust: TrustStore, now: datetime,
                  purpose: Purpose, policy: ValidationPolicy,
                  memo: dict[x509.Certificate, model.CertFacts] | None = None) -> list[x509.Certificate]:
    """The validated path, or ValidationError with the reason."""
    path = build_path(leaf, pool, trust, policy)
    known = memo or {}
    facts = [trust.facts.get(c) or known.get(c) or facts_of(c) for c in path]
    reason = model.check_path(facts, now, purpose, policy)
    if reason:
        raise ValidationError(reason)
    for cert, issuer in itertools.pairwise(path):
        if not verify_issued_by(cert, issuer, policy):
            raise ValidationError(Reason.BAD_CERTIFICATE_SIGNATURE, "issuer signature does not verify")
    return path


# --- revocation -------------------------------------------------------------------------

def _http_get(url: str) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise ValueError("only http(s) distribution points are fetched")
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - scheme checked above
        return bytes(response.read(MAX_FETCH_BYTES + 1))[:MAX_FETCH_BYTES]


def _http_post(url: str, body: bytes) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise ValueError("only http(s) OCSP responders are used")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - scheme checked above
        return bytes(response.read(MAX_FETCH_BYTES))


class CrlCache:
    """CRLs fetched from distribution points, reused until their nextUpdate."""

    def __init__(self, fetch: Fetch | None = None) -> None:
        self.fetch = fetch or _http_get
        self._entries: dict[str, x509.CertificateRevocationList] = {}
        self.fetches = 0

    def get(self, url: str, now: datetime) -> x509.CertificateRevocationList | None:
        cached = self._entries.get(url)
        if cached is not None and model.cache_is_fresh(cached.next_update_utc, now):
            return cached
        try:
            self.fetches += 1
            crl = load_crl(self.fetch(url))
        except Exception:
            return cached  # the stale copy, if any: it will be reported as crl_stale
        self._entries[url] = crl
        return crl


@dataclass
class Revocation:
    """Where revocation status comes from: CRLs given (files, configuration), CRLs fetched from
    the distribution point (cached), and OCSP."""

    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    cache: CrlCache = field(default_factory=CrlCache)
    ocsp_post: Post = _http_post
    ocsp_url: str | None = None  # overrides the certificate's AIA OCSP address


def distribution_points(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [n.value for dp in ext for n in (dp.full_name or []) if isinstance(n, x509.UniformResourceIdentifier)]


class _CrlInfo:
    """What is learnt once per CRL: whose signature it carries, and its serials as an index
    (a JPKI CRL has very many entries; a linear scan per signature would dominate)."""

    def __init__(self, crl: x509.CertificateRevocationList) -> None:
        self.crl = crl  # held, so the id() key stays this CRL's
        self.signed_by: dict[x509.Certificate, bool] = {}
        self.revoked: dict[int, datetime] | None = None

    def revoked_at(self, serial: int) -> datetime | None:
        if self.revoked is None:
            self.revoked = {entry.serial_number: entry.revocation_date_utc for entry in self.crl}
        return self.revoked.get(serial)


_CRL_INFO: dict[int, _CrlInfo] = {}
_CRL_INFO_MAX = 64


def _crl_info(crl: x509.CertificateRevocationList) -> _CrlInfo:
    info = _CRL_INFO.get(id(crl))
    if info is None or info.crl is not crl:
        if len(_CRL_INFO) >= _CRL_INFO_MAX:
            _CRL_INFO.pop(next(iter(_CRL_INFO)))
        info = _CRL_INFO[id(crl)] = _CrlInfo(crl)
    return info


def crl_status(cert: x509.Certificate, issuer: x509.Certificate, crls: Iterable[x509.CertificateRevocationList],
               now: datetime, policy: ValidationPolicy) -> Reason | None:
    """OK, REVOKED, a reason why the CRLs at hand cannot be used, or None when there is none."""
    usable, problem = [], None
    for crl in crls:
        if crl.issuer != cert.issuer:
            continue
        info = _crl_info(crl)
        try:
            signed = info.signed_by.get(issuer)
            if signed is None:
                signed = info.signed_by[issuer] = verify_issued_by(crl, issuer, policy)
        except ValidationError as exc:
            problem = exc.reason
            continue
        if not signed:
            problem = Reason.CRL_BAD_SIGNATURE
            continue
        timing = model.check_crl_time(model.CrlFreshness(crl.last_update_utc, crl.next_update_utc), now)
        if timing:
            problem = problem or timing
            continue
        usable.append(crl)
    if not usable:
        return problem
    for crl in usable:
        revoked_at = _crl_info(crl).revoked_at(cert.serial_number)
        if revoked_at is not None and revoked_at <= now:
            return Reason.REVOKED
    return Reason.OK


def ocsp_status(cert: x509.Certificate, issuer: x509.Certificate, sources: Revocation, now: datetime,
                policy: ValidationPolicy) -> Reason | None:
    urls = [sources.ocsp_url] if sources.ocsp_url else []
    if not urls:
        try:
            aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
            urls = [d.access_location.value for d in aia
                    if d.access_method == AuthorityInformationAccessOID.OCSP
                    and isinstance(d.access_location, x509.UniformResourceIdentifier)]
        except x509.ExtensionNotFound:
            return None
    if not urls:
        return None
    nonce = os.urandom(16)
    request = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 - CertID
               .add_extension(x509.OCSPNonce(nonce), critical=False).build())
    try:
        body = sources.ocsp_post(urls[0], request.public_bytes(serialization.Encoding.DER))
    except Exception:
        return None
    try:
        return _check_ocsp(body, cert, issuer, now, policy, nonce)
    except Exception:
        return Reason.OCSP_INVALID


def _check_ocsp(body: bytes, cert: x509.Certificate, issuer: x509.Certificate, now: datetime,
                policy: ValidationPolicy, nonce: bytes | None = None) -> Reason | None:
    response = ocsp.load_der_ocsp_response(body)
    if response.response_status in (ocsp.OCSPResponseStatus.TRY_LATER, ocsp.OCSPResponseStatus.UNAUTHORIZED):
        return None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return Reason.OCSP_INVALID
    if response.serial_number != cert.serial_number:
        return Reason.OCSP_INVALID
    issuer_key_hash = hashlib.new(response.hash_algorithm.name, _public_key_bits(issuer)).digest()
    if not hmac.compare_digest(response.issuer_key_hash, issuer_key_hash):
        return Reason.OCSP_INVALID
    signer = issuer
    if not _responder_is(response, issuer):
        delegated = [c for c in response.certificates if _responder_is(response, c)]
        if not delegated or not verify_issued_by(delegated[0], issuer, policy):
            return Reason.OCSP_INVALID
        signer = delegated[0]
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku or model.check_validity(facts_of(signer), now):
            return Reason.OCSP_INVALID
    key = signer.public_key()
    algorithm = response.signature_hash_algorithm
    if (not isinstance(key, rsa.RSAPublicKey) or algorithm is None
            or response.signature_algorithm_oid.dotted_string not in policy.signature_algorithms):
        return Reason.OCSP_INVALID
    try:
        key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        return Reason.OCSP_INVALID
    # A responder may answer from a pre-produced cache without the nonce; one it echoes must
    # be ours (else the answer is a replay of another request's).
    for ext in response.extensions:
        if isinstance(ext.value, x509.OCSPNonce) and nonce is not None and ext.value.nonce != nonce:
            return Reason.OCSP_INVALID
    if response.this_update_utc > now + OCSP_CLOCK_SKEW:
        return Reason.OCSP_INVALID
    if response.next_update_utc is not None and response.next_update_utc < now:
        return Reason.OCSP_INVALID
    if response.certificate_status == ocsp.OCSPCertStatus.GOOD:
        return Reason.OK
    if response.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        return Reason.REVOKED
    return None


def _public_key_bits(cert: x509.Certificate) -> bytes:
    from asn1crypto import keys

    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bytes(keys.PublicKeyInfo.load(spki)["public_key"].cast(asn1core.OctetBitString).native)


def _responder_is(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return bool(response.responder_name == cert.subject)
    key_hash = hashlib.sha1(_public_key_bits(cert)).digest()  # noqa: S324 - the responder ID's defined hash
    return response.responder_key_hash == key_hash


def check_revocation(path: Sequence[x509.Certificate], sources: Revocation, now: datetime,
                     policy: ValidationPolicy) -> None:
    """Every certificate of the path but the anchor. Raises ValidationError with the reason."""
    if policy.revocation is RevocationMode.OFF:
        return
    for cert, issuer in itertools.pairwise(path):
        status = ocsp_status(cert, issuer, sources, now, policy) if policy.use_ocsp else None
        if status in (Reason.OK, Reason.REVOKED):
            if status is Reason.REVOKED:
                raise ValidationError(Reason.REVOKED, "revoked (OCSP)")
            continue
        crl = crl_status(cert, issuer, sources.crls, now, policy)
        if crl not in (Reason.OK, Reason.REVOKED) and policy.fetch_crls:
            fetched = [c for c in (sources.cache.get(u, now) for u in distribution_points(cert)) if c is not None]
            crl = crl_status(cert, issuer, fetched, now, policy) or crl
        if crl is Reason.OK:
            continue
        if crl is Reason.REVOKED:
            raise ValidationError(Reason.REVOKED, "revoked (CRL)")
        reason = crl or status
        if reason is None and policy.revocation is RevocationMode.SOFT:
            continue
        raise ValidationError(reason or Reason.REVOCATION_UNKNOWN, "no usable revocation status")


# --- the signer's identity --------------------------------------------------------------

def _other_name_text(value: bytes) -> str | None:
    try:
        parsed: Any = asn1core.load(value).native
    except Exception:
        return None
    if isinstance(parsed, bytes):
        try:
            return parsed.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return parsed if isinstance(parsed, str) else None


def signer_of(cert: x509.Certificate) -> Signer:
    """The 基本4情報 from the JPKI otherName entries (None where absent, as on an
    authentication certificate)."""
    found: dict[str, str] = {}
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for other in san.get_values_for_type(x509.OtherName):
            text = _other_name_text(other.value)
            if text is not None:
                found.setdefault(other.type_id.dotted_string, text)
    except Exception:  # absent or unreadable: no personal data to report
        found = {}
    born = found.get(model.OID_JPKI_BIRTH_DATE)
    return Signer(serial=format(cert.serial_number, "X"), name=found.get(model.OID_JPKI_NAME),
                  address=found.get(model.OID_JPKI_ADDRESS),
                  birth_date=model.decode_birth_date(born) if born else None, sex=found.get(model.OID_JPKI_SEX),
                  name_substitute=found.get(model.OID_JPKI_NAME_SUBSTITUTE),
                  address_substitute=found.get(model.OID_JPKI_ADDRESS_SUBSTITUTE))


# --- CMS --------------------------------------------------------------------------------

@dataclass
class ParsedCms:
    digest: str
    signature_algorithm: str
    signature: bytes
    signed_attrs: bytes | None  # DER with the SET OF tag, as signed
    message_digest: bytes | None
    content: bytes | None
    sid_issuer: bytes | None
    sid_serial: int | None
    sid_key_id: bytes | None
    certificates: list[bytes]


OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_DIGEST_NAMES = {"1.3.14.3.2.26": "sha1", "1.2.840.113549.2.5": "md5", "2.16.840.1.101.3.4.2.4": "sha224",
                 "2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
                 "2.16.840.1.101.3.4.2.3": "sha512"}


class _NotFast(Exception):
    """The fast DER reader declines: the general (asn1crypto) parser decides."""


El = tuple[int, int, int, int]  # tag, header start, content start, end


def _tlv(buf: bytes, pos: int, end: int) -> El:
    """The DER element at pos; strict DER lengths only (no indefinite or padded lengths)."""
    if pos + 2 > end:
        raise _NotFast
    tag, first, header = buf[pos], buf[pos + 1], pos
    if tag & 0x1F == 0x1F:
        raise _NotFast
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 3 or pos + n > end or buf[pos] == 0:
            raise _NotFast
        length = int.from_bytes(buf[pos:pos + n], "big")
        if length < 0x80:
            raise _NotFast
        pos += n
    if pos + length > end:
        raise _NotFast
    return tag, header, pos, pos + length


def _children(buf: bytes, element: El, tag: int | None = None) -> list[El]:
    if tag is not None and element[0] != tag:
        raise _NotFast
    out, pos, end = [], element[2], element[3]
    while pos < end:
        child = _tlv(buf, pos, end)
        out.append(child)
        pos = child[3]
    return out


def _oid(buf: bytes, element: El) -> str:
    tag, _, a, b = element
    if tag != 0x06 or a == b or buf[b - 1] & 0x80:
        raise _NotFast
    arcs, value, fresh = [], 0, True
    for byte in buf[a:b]:
        if fresh and byte == 0x80:
            raise _NotFast
        value = (value << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _small_int(buf: bytes, element: El) -> int:
    tag, _, a, b = element
    if tag != 0x02 or b - a != 1:
        raise _NotFast
    return buf[a]


def _algorithm(buf: bytes, element: El) -> str:
    parts = _children(buf, element, 0x30)
    if not 1 <= len(parts) <= 2 or (len(parts) == 2 and buf[parts[1][1]:parts[1][3]] != b"\x05\x00"):
        raise _NotFast
    return _oid(buf, parts[0])


def _fast_parse_cms(buf: bytes, policy: ValidationPolicy) -> ParsedCms:
    """The common case (DER, one signer, issuer-and-serial or key-id) without asn1crypto's
    overhead. Anything unusual raises _NotFast and the general parser decides."""
    top = _tlv(buf, 0, len(buf))
    if top[3] != len(buf):
        raise _NotFast
    info = _children(buf, top, 0x30)
    if len(info) != 2 or _oid(buf, info[0]) != OID_SIGNED_DATA:
        raise _NotFast
    inner = _children(buf, info[1], 0xA0)
    if len(inner) != 1:
        raise _NotFast
    fields = _children(buf, inner[0], 0x30)
    if len(fields) < 4 or _small_int(buf, fields[0]) not in (1, 3):
        raise _NotFast
    declared = {_algorithm(buf, d) for d in _children(buf, fields[1], 0x31)}
    encap = _children(buf, fields[2], 0x30)
    if not 1 <= len(encap) <= 2:
        raise _NotFast
    content_type = _oid(buf, encap[0])
    content = None
    if len(encap) == 2:
        explicit = _children(buf, encap[1], 0xA0)
        if len(explicit) != 1 or explicit[0][0] != 0x04:
            raise _NotFast
        content = buf[explicit[0][2]:explicit[0][3]]
    certs: list[bytes] = []
    rest = fields[3:]
    if rest and rest[0][0] == 0xA0:
        for cert in _children(buf, rest[0]):
            if cert[0] != 0x30 or cert[3] - cert[1] > policy.max_certificate_bytes:
                raise _NotFast
            certs.append(buf[cert[1]:cert[3]])
        rest = rest[1:]
    if len(rest) != 1:
        raise _NotFast
    signer_infos = _children(buf, rest[0], 0x31)
    if len(signer_infos) != 1:
        raise _NotFast
    si = _children(buf, signer_infos[0], 0x30)
    if len(si) < 5 or _small_int(buf, si[0]) not in (1, 3):
        raise _NotFast
    sid_issuer = sid_serial = sid_key_id = None
    if si[1][0] == 0x30:
        issuer_serial = _children(buf, si[1])
        if len(issuer_serial) != 2 or issuer_serial[0][0] != 0x30 or issuer_serial[1][0] != 0x02:
            raise _NotFast
        sid_issuer = buf[issuer_serial[0][1]:issuer_serial[0][3]]
        serial = buf[issuer_serial[1][2]:issuer_serial[1][3]]
        if not serial or serial[0] & 0x80 or (len(serial) > 1 and serial[0] == 0 and not serial[1] & 0x80):
            raise _NotFast
        sid_serial = int.from_bytes(serial, "big")
    elif si[1][0] == 0x80:
        sid_key_id = buf[si[1][2]:si[1][3]]
    else:
        raise _NotFast
    digest_oid = _algorithm(buf, si[2])
    if digest_oid not in declared:
        raise _NotFast
    position = 3
    signed_attrs = message_digest = None
    if si[3][0] == 0xA0:
        signed_attrs = b"\x31" + buf[si[3][1] + 1:si[3][3]]
        seen: set[str] = set()
        attr_content_type = None
        for attr in _children(buf, si[3]):
            parts = _children(buf, attr, 0x30)
            if len(parts) != 2:
                raise _NotFast
            kind = _oid(buf, parts[0])
            if kind in seen:
                raise _NotFast
            seen.add(kind)
            values = _children(buf, parts[1], 0x31)
            if kind == OID_MESSAGE_DIGEST:
                if len(values) != 1 or values[0][0] != 0x04:
                    raise _NotFast
                message_digest = buf[values[0][2]:values[0][3]]
            elif kind == OID_CONTENT_TYPE:
                if len(values) != 1:
                    raise _NotFast
                attr_content_type = _oid(buf, values[0])
        if message_digest is None or attr_content_type != content_type:
            raise _NotFast
        position = 4
    if len(si) not in (position + 2, position + 3) or si[position + 1][0] != 0x04:
        raise _NotFast
    if len(si) == position + 3 and si[position + 2][0] != 0xA1:
        raise _NotFast
    signature_algorithm = _algorithm(buf, si[position])
    return ParsedCms(
        digest=_DIGEST_NAMES.get(digest_oid, digest_oid), signature_algorithm=signature_algorithm,
        signature=buf[si[position + 1][2]:si[position + 1][3]], signed_attrs=signed_attrs,
        message_digest=message_digest, content=content, sid_issuer=sid_issuer, sid_serial=sid_serial,
        sid_key_id=sid_key_id, certificates=certs)


def parse_cms(blob: bytes, policy: ValidationPolicy) -> ParsedCms:
    if not blob:
        raise ValidationError(Reason.EMPTY)
    if len(blob) > policy.max_signature_bytes:
        raise ValidationError(Reason.OVERSIZED, f"over {policy.max_signature_bytes} bytes")
    try:
        return _fast_parse_cms(blob, policy)
    except (_NotFast, IndexError, ValueError):
        pass
    return parse_cms_general(blob, policy)


def parse_cms_general(blob: bytes, policy: ValidationPolicy) -> ParsedCms:
    """asn1crypto's reading: BER as well as DER, and the reason for every malformation."""
    try:
        info = cms.ContentInfo.load(blob, strict=True)
        kind = info["content_type"].dotted
    except Exception as exc:
        raise ValidationError(Reason.MALFORMED, "not a CMS ContentInfo") from exc
    if kind != OID_SIGNED_DATA:
        raise ValidationError(Reason.NOT_SIGNED_DATA)
    try:
        signed = info["content"]
        signer_infos = signed["signer_infos"]
        count = len(signer_infos)
        if count == 0:
            raise ValidationError(Reason.NO_SIGNER)
        if count > 1:
            raise ValidationError(Reason.MULTIPLE_SIGNERS)
        si = signer_infos[0]
        digest_name = str(si["digest_algorithm"]["algorithm"].native)
        if signed["version"].native not in ("v1", "v3") or si["version"].native not in ("v1", "v3"):
            raise ValidationError(Reason.MALFORMED, "unexpected SignedData or SignerInfo version")
        if digest_name not in {str(a["algorithm"].native) for a in signed["digest_algorithms"]}:
            raise ValidationError(Reason.MALFORMED, "signer's digest algorithm not declared")
        content_type = signed["encap_content_info"]["content_type"].dotted
        content_value = signed["encap_content_info"]["content"]
        content = None if isinstance(content_value, asn1core.Void) else bytes(content_value.native or b"")
        sid = si["sid"]
        sid_issuer = sid_serial = sid_key_id = None
        if sid.name == "issuer_and_serial_number":
            sid_issuer = sid.chosen["issuer"].dump()
            sid_serial = int(sid.chosen["serial_number"].native)
        else:
            sid_key_id = bytes(sid.chosen.native)
        raw_attrs = si["signed_attrs"]
        signed_attrs = message_digest = attr_content_type = None
        if not isinstance(raw_attrs, asn1core.Void) and len(raw_attrs):
            der = raw_attrs.dump()
            signed_attrs = b"\x31" + der[1:]
            seen: set[str] = set()
            for attr in raw_attrs:
                kind = attr["type"].dotted
                if kind in seen:
                    raise ValidationError(Reason.MALFORMED, "a signed attribute appears twice")
                seen.add(kind)
                if kind in (OID_MESSAGE_DIGEST, OID_CONTENT_TYPE) and len(attr["values"]) != 1:
                    raise ValidationError(Reason.MALFORMED, "a signed attribute with several values")
                if kind == OID_MESSAGE_DIGEST:
                    message_digest = bytes(attr["values"][0].native)
                elif kind == OID_CONTENT_TYPE:
                    attr_content_type = attr["values"][0].dotted
            if message_digest is None or attr_content_type != content_type:
                raise ValidationError(Reason.MALFORMED, "signed attributes without matching content-type and digest")
        certs: list[bytes] = []
        raw_certs = signed["certificates"]
        if not isinstance(raw_certs, asn1core.Void):
            for choice in raw_certs:
                if choice.name == "certificate":
                    der_cert = choice.chosen.dump()
                    if len(der_cert) > policy.max_certificate_bytes:
                        raise ValidationError(Reason.OVERSIZED, "certificate over the size limit")
                    certs.append(der_cert)
        return ParsedCms(
            digest=digest_name,
            signature_algorithm=si["signature_algorithm"]["algorithm"].dotted,
            signature=bytes(si["signature"].native), signed_attrs=signed_attrs, message_digest=message_digest,
            content=content, sid_issuer=sid_issuer, sid_serial=sid_serial, sid_key_id=sid_key_id,
            certificates=certs)
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError(Reason.MALFORMED, "malformed SignedData") from exc


def _find_signer(parsed: ParsedCms, certs: Sequence[x509.Certificate]) -> x509.Certificate:
    for cert in certs:
        if parsed.sid_serial is not None:
            if cert.serial_number == parsed.sid_serial and cert.issuer.public_bytes() == parsed.sid_issuer:
                return cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except Exception:  # noqa: S112 - a certificate without a key identifier is not the signer
                continue
            if ski == parsed.sid_key_id:
                return cert
    raise ValidationError(Reason.SIGNER_CERTIFICATE_MISSING)


def verify_detached(data: bytes, signature: bytes, trust: TrustStore, sources: Revocation, now: datetime,
                    purpose: Purpose = Purpose.SIGNING, policy: ValidationPolicy | None = None) -> Verification:
    """Verify a detached CMS SignedData over `data`. Never raises."""
    policy = policy or ValidationPolicy()
    signer: Signer | None = None
    try:
        parsed = parse_cms(signature, policy)
        if parsed.digest not in policy.digests or parsed.signature_algorithm not in _RSA_SIGNATURE_OIDS:
            raise ValidationError(Reason.WEAK_ALGORITHM, "digest or signature algorithm not allowed")
        implied = _RSA_SIGNATURE_OIDS[parsed.signature_algorithm]
        if implied is not None and implied != parsed.digest:
            raise ValidationError(Reason.MALFORMED, "signature and digest algorithms disagree")
        certs: list[x509.Certificate] = []
        memo: dict[x509.Certificate, model.CertFacts] = {}
        for der in parsed.certificates:
            certs.extend(load_certificates(der, memo))
        leaf = _find_signer(parsed, certs)
        key = leaf.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < policy.min_rsa_bits:
            raise ValidationError(Reason.WEAK_ALGORITHM, "signer key is not RSA of the minimum size")
        algorithm = _HASHES[parsed.digest]()
        digest = hashlib.new(parsed.digest, data).digest()
        if parsed.content is not None and parsed.content != data:
            raise ValidationError(Reason.DIGEST_MISMATCH, "embedded content differs from the data")
        if parsed.signed_attrs is not None:
            if not hmac.compare_digest(parsed.message_digest or b"", digest):
                raise ValidationError(Reason.DIGEST_MISMATCH)
            signed_bytes = parsed.signed_attrs
        else:
            signed_bytes = data
        try:
            key.verify(parsed.signature, signed_bytes, padding.PKCS1v15(), algorithm)
        except Exception as exc:
            raise ValidationError(Reason.BAD_SIGNATURE) from exc
        signer = signer_of(leaf)
        path = validate_path(leaf, certs, trust, now, purpose, policy, memo)
        check_revocation(path, sources, now, policy)
        return Verification(valid=True, reason=Reason.OK, signer=signer, chain=[fingerprint(c) for c in path])
    except ValidationError as exc:
        return reject(exc.reason, exc.detail, signer)
    except Exception as exc:  # a bug, not the input's fault: still never escapes
        return reject(Reason.INTERNAL_ERROR, type(exc).__name__, signer)


def validate_certificate(cert_blob: bytes, trust: TrustStore, sources: Revocation, now: datetime,
                         purpose: Purpose, policy: ValidationPolicy | None = None,
                         intermediates: Sequence[x509.Certificate] = ()) -> Verification:
    """Validate one certificate (e.g. the authentication certificate at login). Never raises."""
    policy = policy or ValidationPolicy()
    try:
        if len(cert_blob) > policy.max_certificate_bytes:
            raise ValidationError(Reason.OVERSIZED)
        certs = load_certificates(cert_blob)
        leaf = certs[0]
        path = validate_path(leaf, [*certs[1:], *intermediates], trust, now, purpose, policy)
        check_revocation(path, sources, now, policy)
        return Verification(True, Reason.OK, signer_of(leaf), chain=[fingerprint(c) for c in path])
    except ValidationError as exc:
        return reject(exc.reason, exc.detail)
    except Exception as exc:
        return reject(Reason.INTERNAL_ERROR, type(exc).__name__)
