"""Hypothesis fuzzing: mutated DER signatures and certificates fed to the parser and the
verifier. No exception escapes, no internal error, and no mutated input verifies as valid."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from identity_pki import NOW, sign, world

from kiban.identity.model import Purpose, Reason, ValidationPolicy
from kiban.identity.validation import (
    CrlCache,
    Revocation,
    TrustStore,
    ValidationError,
    _fast_parse_cms,
    _NotFast,
    parse_cms_general,
    validate_certificate,
    verify_detached,
)

DATA = b"fuzzed payload"


def offline(url: str) -> bytes:
    raise OSError("offline")


@cache
def original() -> bytes:
    return sign(DATA, world().leaf)


@st.composite
def mutated(draw: st.DrawFn, blob: bytes) -> bytes:
    data = bytearray(blob)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "length"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif kind == "length" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFF]))
    return bytes(data)


def _verify(signature: bytes, data: bytes = DATA):
    w = world()
    revocation = Revocation(crls=[w.crl], cache=CrlCache(offline))
    return verify_detached(data, signature, TrustStore([w.root.cert]), revocation, NOW, Purpose.SIGNING,
                           ValidationPolicy())


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.data())
def test_mutated_signatures_never_verify_and_never_raise(data: st.DataObject) -> None:
    blob = data.draw(mutated(original()))
    result = _verify(blob)
    assert result.reason is not Reason.INTERNAL_ERROR, result.detail
    if blob != original():
        assert not result.valid, blob.hex()


@SETTINGS
@given(st.data())
def test_the_fast_der_reader_agrees_with_asn1crypto(data: st.DataObject) -> None:
    """Whatever the fast reader accepts, the general parser reads the same way."""
    blob = data.draw(mutated(original()))
    policy = ValidationPolicy()
    try:
        fast = _fast_parse_cms(blob, policy)
    except (_NotFast, IndexError, ValueError):
        return
    try:
        general = parse_cms_general(blob, policy)
    except ValidationError as exc:
        raise AssertionError(f"fast reader accepted what asn1crypto rejects ({exc.reason}): {blob.hex()}") from exc
    assert fast == general


@SETTINGS
@given(st.data())
def test_mutated_certificates_never_validate_and_never_raise(data: st.DataObject) -> None:
    w = world()
    blob = data.draw(mutated(w.leaf.der))
    result = validate_certificate(blob, TrustStore([w.root.cert]), Revocation(crls=[w.crl], cache=CrlCache(offline)),
                                  NOW, Purpose.SIGNING)
    assert result.reason is not Reason.INTERNAL_ERROR, result.detail
    if blob != w.leaf.der:
        assert not result.valid, blob.hex()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(blob: bytes) -> None:
    result = _verify(blob)
    assert not result.valid and result.reason is not Reason.INTERNAL_ERROR


def test_original_is_valid() -> None:
    assert _verify(original()).valid
