"""The little of JOSE an OpenID provider and relying party need: compact JWS with ES256 (and
RS256 for verifying other providers' tokens), and JWKs of public keys (RFC 7515, 7517, 7518).

Written on `cryptography` rather than taking a JOSE library: signing and verifying one compact
token is a few lines, and algorithm handling stays explicit (no "none", no HMAC with a public
key, the algorithm must be the key's).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

MAX_TOKEN = 16_000


class JoseError(Exception):
    """A token that is malformed, unsigned, signed with another key or algorithm."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise JoseError("bad base64url") from exc


def _int(value: int, size: int | None = None) -> str:
    length = size or (value.bit_length() + 7) // 8
    return b64url(value.to_bytes(length, "big"))


def jwk(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> dict[str, str]:
    """The public JWK, with a kid that is its RFC 7638 thumbprint."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        body = {"crv": "P-256", "kty": "EC", "x": _int(numbers.x, 32), "y": _int(numbers.y, 32)}
        alg = "ES256"
    else:
        rsa_numbers = key.public_numbers()
        body = {"e": _int(rsa_numbers.e), "kty": "RSA", "n": _int(rsa_numbers.n)}
        alg = "RS256"
    thumbprint = b64url(hashlib.sha256(json.dumps(body, separators=(",", ":"), sort_keys=True).encode()).digest())
    return {**body, "kid": thumbprint, "use": "sig", "alg": alg}


def public_key(jwk_: dict[str, Any]) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    try:
        if jwk_.get("kty") == "EC" and jwk_.get("crv") == "P-256":
            x = int.from_bytes(b64url_decode(jwk_["x"]), "big")
            y = int.from_bytes(b64url_decode(jwk_["y"]), "big")
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        if jwk_.get("kty") == "RSA":
            n = int.from_bytes(b64url_decode(jwk_["n"]), "big")
            e = int.from_bytes(b64url_decode(jwk_["e"]), "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
    except (KeyError, ValueError, TypeError) as exc:
        raise JoseError("bad JWK") from exc
    raise JoseError("unsupported JWK")


def sign(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey, kid: str, typ: str = "JWT") -> str:
    header = {"alg": "ES256", "kid": kid, "typ": typ}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims, ensure_ascii=False).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def verify(token: str, keys: list[dict[str, Any]], typ: str | None = None) -> dict[str, Any]:
    """The claims of a compact JWS signed (ES256 or RS256) by one of `keys` (JWKs). Checks
    the signature only: the caller checks issuer, audience, times and nonce."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 2:
        raise JoseError("not a compact JWS")
    head, body, signature = token.split(".")
    try:
        header = json.loads(b64url_decode(head))
        claims = json.loads(b64url_decode(body))
    except ValueError as exc:
        raise JoseError("bad JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JoseError("not a JSON object")
    alg = header.get("alg")
    if typ is not None and header.get("typ") != typ:
        raise JoseError("wrong token type")
    candidates = [k for k in keys if k.get("alg", alg) == alg and (header.get("kid") in (None, k.get("kid")))]
    raw = b64url_decode(signature)
    signing_input = f"{head}.{body}".encode()
    for candidate in candidates:
        key = public_key(candidate)
        try:
            if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and len(raw) == 64:
                der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
                key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
                return claims
            if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(raw, signing_input, padding.PKCS1v15(), hashes.SHA256())
                return claims
        except InvalidSignature:
            continue
    raise JoseError("no key verifies the signature")
