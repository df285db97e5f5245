"""Every rejection reason of signature and certificate validation, and the good cases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from identity_pki import AUTH_USAGE, NOW, POLICY, Issued, make_cert, make_crl, resign_sha1, rsa_key, sign, world

from kiban.identity import model
from kiban.identity.model import Purpose, Reason, RevocationMode, ValidationPolicy
from kiban.identity.validation import CrlCache, Revocation, TrustStore, validate_certificate, verify_detached

DATA = "申請書 / application form".encode()


def no_fetch(url: str) -> bytes:
    raise OSError("offline")


def verify(data: bytes, signature: bytes, *, anchors: list[x509.Certificate] | None = None,
           crls: list[x509.CertificateRevocationList] | None = None, now=NOW, policy: ValidationPolicy | None = None,
           fetch=no_fetch, ocsp_post=None, purpose: Purpose = Purpose.SIGNING) -> model.Verification:
    w = world()
    revocation = Revocation(crls=[w.crl] if crls is None else crls, cache=CrlCache(fetch))
    if ocsp_post is not None:
        revocation.ocsp_post = ocsp_post
    return verify_detached(data, signature, TrustStore(anchors or [w.root.cert]), revocation, now, purpose,
                           policy or ValidationPolicy())


def rebuild(signature: bytes, change) -> bytes:
    info = cms.ContentInfo.load(signature)
    change(info["content"])
    return info.dump(force=True)


def leaf_signature(**kwargs) -> bytes:
    w = world()
    return sign(DATA, make_cert("LEAF-X", rsa_key(2048, 1), w.root, **kwargs))


# --- good ----------------------------------------------------------------------------------

def test_valid_signature_reports_the_signer() -> None:
    w = world()
    result = verify(DATA, sign(DATA, w.leaf))
    assert result.valid and result.reason is Reason.OK
    assert result.signer is not None
    assert result.signer.as_json() == {"name": "山田 花子", "address": "東京都千代田区霞が関1-1",
                                       "birth_date": "1990-01-02", "sex": "2",
                                       "serial": format(w.leaf.cert.serial_number, "X")}


def test_reencoding_a_valid_signature_keeps_it_valid() -> None:
    assert verify(DATA, rebuild(sign(DATA, world().leaf), lambda sd: None)).valid


def test_valid_through_an_intermediate_carried_in_the_signature() -> None:
    w = world()
    inter = make_cert("Intermediate", rsa_key(2048, 2), w.root, ca=True)
    leaf = make_cert("LEAF-I", rsa_key(2048, 1), inter)
    signature = pkcs7.PKCS7SignatureBuilder().set_data(DATA).add_signer(leaf.cert, leaf.key, hashes.SHA256()) \
        .add_certificate(inter.cert).sign(serialization.Encoding.DER,
                                          [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    assert verify(DATA, signature, crls=[w.crl, make_crl(inter)]).valid
    # the intermediate's CRL is needed too
    assert verify(DATA, signature).reason is Reason.REVOCATION_UNKNOWN


# --- input -----------------------------------------------------------------------------------

def test_empty() -> None:
    assert verify(DATA, b"").reason is Reason.EMPTY


def test_malformed() -> None:
    assert verify(DATA, b"\x30\x03\x02\x01").reason is Reason.MALFORMED
    assert verify(DATA, b"not DER at all").reason is Reason.MALFORMED
    assert verify(DATA, sign(DATA, world().leaf)[:-10]).reason is Reason.MALFORMED


def test_oversized() -> None:
    assert verify(DATA, b"\x30" * 1_000_001).reason is Reason.OVERSIZED
    small = ValidationPolicy(max_signature_bytes=100)
    assert verify(DATA, sign(DATA, world().leaf), policy=small).reason is Reason.OVERSIZED


def test_not_signed_data() -> None:
    blob = cms.ContentInfo({"content_type": "data", "content": b"hello"}).dump()
    assert verify(DATA, blob).reason is Reason.NOT_SIGNED_DATA


def test_no_signer_and_multiple_signers() -> None:
    signature = sign(DATA, world().leaf)

    def none(sd: cms.SignedData) -> None:
        sd["signer_infos"] = cms.SignerInfos([])

    def two(sd: cms.SignedData) -> None:
        sd["signer_infos"] = cms.SignerInfos([sd["signer_infos"][0], sd["signer_infos"][0]])

    assert verify(DATA, rebuild(signature, none)).reason is Reason.NO_SIGNER
    assert verify(DATA, rebuild(signature, two)).reason is Reason.MULTIPLE_SIGNERS


def test_signer_certificate_missing() -> None:
    leaf = world().leaf
    signature = pkcs7.PKCS7SignatureBuilder().set_data(DATA).add_signer(leaf.cert, leaf.key, hashes.SHA256()) \
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary,
                                           pkcs7.PKCS7Options.NoCerts])
    assert verify(DATA, signature).reason is Reason.SIGNER_CERTIFICATE_MISSING


def test_malformed_certificate() -> None:
    w = world()
    result = validate_certificate(b"\x30\x82\x01\x00garbage", TrustStore([w.root.cert]), Revocation(), NOW,
                                  Purpose.SIGNING)
    assert result.reason is Reason.MALFORMED_CERTIFICATE
    big = validate_certificate(b"\x30" * 70_000, TrustStore([w.root.cert]), Revocation(), NOW, Purpose.SIGNING)
    assert big.reason is Reason.OVERSIZED


# --- the signature ---------------------------------------------------------------------------

def test_digest_mismatch_when_the_data_changes() -> None:
    assert verify(DATA + b".", sign(DATA, world().leaf)).reason is Reason.DIGEST_MISMATCH


def test_bad_signature() -> None:
    def flip(sd: cms.SignedData) -> None:
        value = bytearray(sd["signer_infos"][0]["signature"].native)
        value[10] ^= 0x01
        sd["signer_infos"][0]["signature"] = bytes(value)

    result = verify(DATA, rebuild(sign(DATA, world().leaf), flip))
    assert result.reason is Reason.BAD_SIGNATURE and result.signer is None


def test_signature_by_another_key_under_the_certificate() -> None:
    w = world()
    impostor = Issued(w.leaf.cert, rsa_key(2048, 9))
    assert verify(DATA, sign(DATA, impostor)).reason is Reason.BAD_SIGNATURE


def test_weak_algorithms() -> None:
    w = world()
    sha1_cert = resign_sha1(make_cert("LEAF-SHA1", rsa_key(2048, 1), w.root), w.root.key)
    assert verify(DATA, sign(DATA, sha1_cert)).reason is Reason.WEAK_ALGORITHM
    short = make_cert("LEAF-1024", rsa_key(1024), w.root)
    assert verify(DATA, sign(DATA, short)).reason is Reason.WEAK_ALGORITHM

    def md5(sd: cms.SignedData) -> None:
        sd["signer_infos"][0]["digest_algorithm"] = {"algorithm": "md5"}
        sd["digest_algorithms"] = [{"algorithm": "md5"}]

    assert verify(DATA, rebuild(sign(DATA, w.leaf), md5)).reason is Reason.WEAK_ALGORITHM
    weak_root = make_cert("Weak Root", rsa_key(1024), ca=True)
    leaf = make_cert("LEAF-W", rsa_key(2048, 1), weak_root)
    assert verify(DATA, sign(DATA, leaf), anchors=[weak_root.cert], crls=[make_crl(weak_root)]).reason \
        is Reason.WEAK_ALGORITHM


# --- the path --------------------------------------------------------------------------------

def test_untrusted() -> None:
    other = make_cert("Other Root", rsa_key(2048, 3), ca=True)
    leaf = make_cert("LEAF-O", rsa_key(2048, 1), other)
    assert verify(DATA, sign(DATA, leaf)).reason is Reason.UNTRUSTED
    self_signed = make_cert("SELF", rsa_key(2048, 1))
    assert verify(DATA, sign(DATA, self_signed)).reason is Reason.UNTRUSTED


def test_chain_loop() -> None:
    key_a, key_b = rsa_key(2048, 4), rsa_key(2048, 5)
    a_stub = Issued(make_cert("CA-A", key_a, ca=True).cert, key_a)
    b_by_a = make_cert("CA-B", key_b, a_stub, ca=True)
    a_by_b = make_cert("CA-A", key_a, b_by_a, ca=True)
    leaf = make_cert("LEAF-L", rsa_key(2048, 1), a_by_b)
    signature = pkcs7.PKCS7SignatureBuilder().set_data(DATA).add_signer(leaf.cert, leaf.key, hashes.SHA256()) \
        .add_certificate(a_by_b.cert).add_certificate(b_by_a.cert) \
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    assert verify(DATA, signature).reason is Reason.CHAIN_LOOP


def test_chain_too_long() -> None:
    w = world()
    issuer, extra = w.root, []
    for i in range(5):
        issuer = make_cert(f"Inter-{i}", rsa_key(2048, 2), issuer, ca=True)
        extra.append(issuer.cert)
    leaf = make_cert("LEAF-LONG", rsa_key(2048, 1), issuer)
    builder = pkcs7.PKCS7SignatureBuilder().set_data(DATA).add_signer(leaf.cert, leaf.key, hashes.SHA256())
    for cert in extra:
        builder = builder.add_certificate(cert)
    signature = builder.sign(serialization.Encoding.DER,
                             [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    assert verify(DATA, signature).reason is Reason.CHAIN_TOO_LONG
    assert verify(DATA, signature, policy=ValidationPolicy(max_chain_length=7, revocation=RevocationMode.OFF)).valid


def test_bad_certificate_signature() -> None:
    w = world()
    impostor_ca = Issued(w.root.cert, rsa_key(2048, 6))  # same name as the root, another key
    forged = make_cert("LEAF-F", rsa_key(2048, 1), impostor_ca)
    assert verify(DATA, sign(DATA, forged)).reason is Reason.BAD_CERTIFICATE_SIGNATURE


def test_expired_and_not_yet_valid() -> None:
    signature = sign(DATA, world().leaf)
    assert verify(DATA, signature, now=NOW + timedelta(days=400)).reason is Reason.EXPIRED
    assert verify(DATA, signature, now=NOW - timedelta(days=60)).reason is Reason.NOT_YET_VALID


def test_issuer_that_is_not_a_ca() -> None:
    w = world()
    not_ca = make_cert("Not-a-CA", rsa_key(2048, 2), w.root, ca=False)
    leaf = make_cert("LEAF-N", rsa_key(2048, 1), not_ca)
    no_bc = make_cert("No-BC", rsa_key(2048, 2), w.root, basic=False,
                      usage=x509.KeyUsage(False, False, False, False, False, True, True, False, False))
    leaf2 = make_cert("LEAF-N2", rsa_key(2048, 1), no_bc)
    for inter, end in ((not_ca, leaf), (no_bc, leaf2)):
        sig = pkcs7.PKCS7SignatureBuilder().set_data(DATA).add_signer(end.cert, end.key, hashes.SHA256()) \
            .add_certificate(inter.cert).sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature])
        assert verify(DATA, sig).reason is Reason.NOT_A_CA


def test_path_length_exceeded() -> None:
    root = make_cert("PL Root", rsa_key(2048, 0), ca=True, path_length=0)
    inter = make_cert("PL Inter", rsa_key(2048, 2), root, ca=True)
    leaf = make_cert("LEAF-PL", rsa_key(2048, 1), inter)
    sig = pkcs7.PKCS7SignatureBuilder().set_data(DATA).add_signer(leaf.cert, leaf.key, hashes.SHA256()) \
        .add_certificate(inter.cert).sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature])
    assert verify(DATA, sig, anchors=[root.cert]).reason is Reason.PATH_LENGTH_EXCEEDED


def test_wrong_key_usage() -> None:
    encipher_only = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
    assert verify(DATA, leaf_signature(usage=encipher_only)).reason is Reason.WRONG_KEY_USAGE
    non_repudiation_only = x509.KeyUsage(False, True, False, False, False, False, False, False, False)
    signature = leaf_signature(usage=non_repudiation_only)
    assert verify(DATA, signature).valid  # enough for signing
    assert verify(DATA, signature, purpose=Purpose.AUTHENTICATION).reason is Reason.WRONG_KEY_USAGE
    assert verify(DATA, leaf_signature(usage=AUTH_USAGE), purpose=Purpose.AUTHENTICATION).valid


def test_policy_mismatch() -> None:
    signature = leaf_signature()
    assert verify(DATA, signature, policy=ValidationPolicy(required_policies=frozenset({POLICY}))).valid
    assert verify(DATA, signature, policy=ValidationPolicy(required_policies=frozenset({"2.25.99"}))).reason \
        is Reason.POLICY_MISMATCH


def test_unsupported_critical_extension() -> None:
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.25.424242"), b"\x05\x00")
    assert verify(DATA, leaf_signature(extra=[unknown])).reason is Reason.UNSUPPORTED_CRITICAL_EXTENSION


# --- revocation ------------------------------------------------------------------------------

def test_revoked_by_crl() -> None:
    w = world()
    assert verify(DATA, sign(DATA, w.leaf), crls=[make_crl(w.root, [w.leaf.cert])]).reason is Reason.REVOKED


def test_crl_stale_and_not_yet_valid() -> None:
    w = world()
    stale = make_crl(w.root, this_update=NOW - timedelta(days=2), next_update=NOW - timedelta(days=1))
    assert verify(DATA, sign(DATA, w.leaf), crls=[stale]).reason is Reason.CRL_STALE
    future = make_crl(w.root, this_update=NOW + timedelta(hours=2), next_update=NOW + timedelta(days=2))
    assert verify(DATA, sign(DATA, w.leaf), crls=[future]).reason is Reason.CRL_NOT_YET_VALID
    # a fresh CRL beside the stale one is used
    assert verify(DATA, sign(DATA, w.leaf), crls=[stale, w.crl]).valid


def test_crl_bad_signature() -> None:
    w = world()
    forged = make_crl(w.root, key=rsa_key(2048, 6))
    assert verify(DATA, sign(DATA, w.leaf), crls=[forged]).reason is Reason.CRL_BAD_SIGNATURE


def test_revocation_unknown_and_modes() -> None:
    signature = sign(DATA, world().leaf)
    assert verify(DATA, signature, crls=[]).reason is Reason.REVOCATION_UNKNOWN
    assert verify(DATA, signature, crls=[], policy=ValidationPolicy(revocation=RevocationMode.SOFT)).valid
    assert verify(DATA, signature, crls=[], policy=ValidationPolicy(revocation=RevocationMode.OFF)).valid


def test_crl_fetched_from_the_distribution_point_and_cached_until_next_update() -> None:
    w = world()
    calls: list[str] = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        return w.crl.public_bytes(serialization.Encoding.DER)

    cache = CrlCache(fetch)
    trust = TrustStore([w.root.cert])
    signature = sign(DATA, w.leaf)
    policy = ValidationPolicy()
    for minutes in (0, 10, 600):
        assert verify_detached(DATA, signature, trust, Revocation(cache=cache), NOW + timedelta(minutes=minutes),
                               Purpose.SIGNING, policy).valid
    assert calls == ["http://crl.example/root.crl"]
    # past nextUpdate the cache fetches again; a server still serving the old CRL: crl_stale
    later = NOW + timedelta(days=2)
    result = verify_detached(DATA, signature, TrustStore([w.root.cert]), Revocation(cache=cache), later,
                             Purpose.SIGNING, policy)
    assert len(calls) == 2
    assert result.reason is Reason.CRL_STALE


def test_fetched_crl_goes_stale() -> None:
    w = world()
    long_leaf = make_cert("LEAF-LONGLIFE", rsa_key(2048, 1), w.root, crl_url="http://crl.example/root.crl")
    cache = CrlCache(lambda url: w.crl.public_bytes(serialization.Encoding.DER))
    result = verify_detached(DATA, sign(DATA, long_leaf), TrustStore([w.root.cert]), Revocation(cache=cache),
                             NOW + timedelta(days=3), Purpose.SIGNING, ValidationPolicy())
    assert result.reason is Reason.CRL_STALE


def _ocsp(w, cert: x509.Certificate, status: ocsp.OCSPCertStatus, responder: Issued | None = None,
          next_update=None) -> bytes:
    responder = responder or w.root
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert, issuer=w.root.cert, algorithm=hashes.SHA1(), cert_status=status,
        this_update=NOW - timedelta(minutes=10), next_update=next_update or NOW + timedelta(hours=12),
        revocation_time=NOW - timedelta(hours=1) if status == ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=None).responder_id(ocsp.OCSPResponderEncoding.NAME, responder.cert)
    return builder.sign(responder.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_ocsp_good_revoked_and_invalid() -> None:
    w = world()
    leaf = make_cert("LEAF-OCSP", rsa_key(2048, 1), w.root, ocsp_url="http://ocsp.example/")
    signature = sign(DATA, leaf)
    policy = ValidationPolicy(use_ocsp=True)
    good = _ocsp(w, leaf.cert, ocsp.OCSPCertStatus.GOOD)
    assert verify(DATA, signature, crls=[], policy=policy, ocsp_post=lambda url, body: good).valid
    revoked = _ocsp(w, leaf.cert, ocsp.OCSPCertStatus.REVOKED)
    assert verify(DATA, signature, policy=policy, ocsp_post=lambda url, body: revoked).reason is Reason.REVOKED
    impostor = make_cert("Test Root", rsa_key(2048, 6), ca=True)  # the root's name, another key
    forged = _ocsp(w, leaf.cert, ocsp.OCSPCertStatus.GOOD, responder=impostor)
    assert verify(DATA, signature, crls=[], policy=policy, ocsp_post=lambda url, body: forged).reason \
        is Reason.OCSP_INVALID
    stale = _ocsp(w, leaf.cert, ocsp.OCSPCertStatus.GOOD, next_update=NOW - timedelta(minutes=1))
    assert verify(DATA, signature, crls=[], policy=policy, ocsp_post=lambda url, body: stale).reason \
        is Reason.OCSP_INVALID
    assert verify(DATA, signature, crls=[], policy=policy, ocsp_post=lambda url, body: b"junk").reason \
        is Reason.OCSP_INVALID
    # an OCSP "invalid" falls back to a good CRL
    assert verify(DATA, signature, policy=policy, ocsp_post=lambda url, body: b"junk").valid


def test_every_reason_is_tested() -> None:
    """Keeps this file honest: a new reason needs a test here (or in the fuzz/CLI tests)."""
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    untested = [r for r in Reason if r not in (Reason.OK, Reason.INTERNAL_ERROR) and f"Reason.{r.name}" not in source]
    assert not untested


@pytest.mark.parametrize(("value", "iso"), [("419900102", "1990-01-02"), ("19900102", "1990-01-02"),
                                              ("4199013", None), ("x", None), ("419901332", None)])
def test_birth_date(value: str, iso: str | None) -> None:
    assert model.decode_birth_date(value) == iso
