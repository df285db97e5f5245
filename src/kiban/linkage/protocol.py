"""The wire protocol's cryptography: Ed25519 signatures over the exact message bytes, member
certificates from the configured CA, and the signed tree head's TLS encoding (RFC 6962 3.5).

Shared by the hub, the client and a provider, so an outside agency needs only this module
(and `cryptography`) to speak the protocol.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kiban.linkage import model

HUB_MEMBER = "JP/GOV/kiban/hub"  # the hub's own subsystem: signs forwarded requests and answers
CLIENT_HEADER = "X-Kiban-Client"
SIGNATURE_HEADER = "X-Kiban-Signature"
REQUEST_HASH_HEADER = "X-Kiban-Request-Hash"
REQUEST_ID_HEADER = "X-Kiban-Request-Id"
ERROR_HEADER = "X-Kiban-Error"
MAX_MESSAGE_BYTES = 16_384
# TLS SignatureScheme ed25519 (0x0807), split as CT's DigitallySigned(hash, signature) bytes.
ED25519_HASH, ED25519_SIGNATURE = 8, 7


def sign(key: ed25519.Ed25519PrivateKey, body: bytes) -> str:
    return base64.b64encode(key.sign(body)).decode()


def verify(public_key: ed25519.Ed25519PublicKey, body: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, body)
        return True
    except (InvalidSignature, binascii.Error, ValueError):
        return False


def derived_key(secret: bytes, member: str) -> ed25519.Ed25519PrivateKey:
    """The key of a subsystem run inside this deployment (a municipality's registry, the hub
    itself in dev and test): derived from the hub secret, so it need not be stored."""
    seed = hmac.new(secret, f"kiban-linkage/key|{member}".encode(), hashlib.sha256).digest()
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def public_pem(key: ed25519.Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(pem: bytes) -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("the key is not Ed25519")
    return key


def certificate_member(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def check_certificate(pem: str, anchors: list[x509.Certificate], now: datetime, member: str) -> str | None:
    """Why the member's certificate is not acceptable, or None: it must be Ed25519, name the
    member as CN, be valid now and be issued directly by one of the trust anchors."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return "the certificate cannot be read"
    if not isinstance(cert.public_key(), ed25519.Ed25519PublicKey):
        return "the certificate's key is not Ed25519"
    if certificate_member(cert) != member:
        return "the certificate does not name this member (subject CN)"
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return "the certificate is not valid now"
    for anchor in anchors:
        try:
            cert.verify_directly_issued_by(anchor)
            return None
        except (ValueError, TypeError, InvalidSignature):
            continue
    return "the certificate is not issued by a trusted CA"


def certificate_key(pem: str) -> ed25519.Ed25519PublicKey:
    key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError("not an Ed25519 certificate")
    return key


# --- the signed tree head (RFC 6962 section 3.5) ----------------------------------------

def tree_head_input(timestamp_ms: int, tree_size: int, root: bytes) -> bytes:
    """TLS `TreeHeadSignature`: version v1 (0), signature_type tree_hash (1), timestamp,
    tree_size, sha256_root_hash."""
    return struct.pack(">BBQQ", 0, 1, timestamp_ms, tree_size) + root


def digitally_signed(signature: bytes) -> str:
    return base64.b64encode(struct.pack(">BBH", ED25519_HASH, ED25519_SIGNATURE, len(signature))
                            + signature).decode()


def verify_tree_head(public_key: ed25519.Ed25519PublicKey, sth: dict[str, Any]) -> bool:
    """Checks a `get-sth` answer's signature."""
    try:
        blob = base64.b64decode(sth["tree_head_signature"], validate=True)
        hash_alg, sig_alg, length = struct.unpack(">BBH", blob[:4])
        if (hash_alg, sig_alg) != (ED25519_HASH, ED25519_SIGNATURE) or length != len(blob) - 4:
            return False
        root = base64.b64decode(sth["sha256_root_hash"], validate=True)
        public_key.verify(blob[4:], tree_head_input(int(sth["timestamp"]), int(sth["tree_size"]), root))
        return True
    except (InvalidSignature, KeyError, ValueError, TypeError, struct.error, binascii.Error):
        return False


# --- messages between a member and the hub -----------------------------------------------

@dataclass(frozen=True)
class Outgoing:
    body: bytes
    headers: dict[str, str]


def build_request(client: str, key: ed25519.Ed25519PrivateKey, provider: str, item: str, procedure: str,
                  subject: str, now: datetime, params: dict[str, Any] | None = None,
                  request_id: str | None = None) -> Outgoing:
    request = model.Request(request_id or str(uuid.uuid4()), now, client, provider, item, procedure,
                            subject, params or {})
    body = model.request_body(request)
    return Outgoing(body, {CLIENT_HEADER: client, SIGNATURE_HEADER: sign(key, body),
                           "Content-Type": "application/json"})


class ResponseError(Exception):
    """A hub answer that does not verify or does not answer the request sent."""


def open_response(body: bytes, headers: dict[str, str], hub_key: ed25519.Ed25519PublicKey,
                  sent: bytes) -> dict[str, Any]:
    """The hub's answer after checking its signature and the echoed request hash."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if not verify(hub_key, body, lowered.get(SIGNATURE_HEADER.lower(), "")):
        raise ResponseError("the hub's signature on the response does not verify")
    data: dict[str, Any] = json.loads(body)
    unread = data.get("request_hash") == "" and (data.get("error") or {}).get("code") == "oversized"
    if data.get("request_hash") != model.request_hash(sent) and not unread:
        raise ResponseError("the response does not echo the request's hash")
    return data


# --- messages between the hub and a provider --------------------------------------------

def forwarded_body(request: model.Request, legal_basis: str, provider_code: str, now: datetime) -> bytes:
    """What the hub sends the provider: the requester's code replaced by the provider's own."""
    return model.canonical({"protocol": model.PROTOCOL_VERSION, "request_id": request.request_id,
                            "forwarded_at": now.isoformat(), "client": request.client,
                            "provider": request.provider, "item": request.item,
                            "procedure": request.procedure, "legal_basis": legal_basis,
                            "subject": provider_code, "params": request.params})


def provider_body(forwarded: bytes, status: str, data: dict[str, Any]) -> bytes:
    sent = json.loads(forwarded)
    return model.canonical({"protocol": model.PROTOCOL_VERSION, "request_id": sent["request_id"],
                            "request_hash": model.request_hash(forwarded), "status": status,
                            "data": data})
