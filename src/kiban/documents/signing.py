"""PAdES signing and inspection of issued certificate documents, with pyHanko.

`sign` appends one incremental revision to a rendered PDF: a visible signature (bottom left of
page 1) whose appearance carries the certificate's serial and verification code, signed
PAdES-B-B (CMS, SHA-256, ETSI.CAdES.detached) with the municipality's document-signing key.
`inspect` reads a signed PDF back: whether its one signature is intact and covers the whole
file, who signed it (the certificate, for the caller to pin), and the identifiers the signature
names. Neither knows about the database; the registry decides what is authentic.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import keys as asn1keys
from asn1crypto import x509 as asn1x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pyhanko.pdf_utils import text
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import get_pyca_cryptography_hash  # type: ignore[attr-defined]
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

FIELD = "KibanCertificate"
MAX_PDF_BYTES = 10 * 1024 * 1024
_REASON = re.compile(r"^Kiban certificate (\d{6}) ([0-9A-Za-z-]{1,20})$")
# Bottom left of an A4 page, below the certification and left of the footer line (points).
STAMP_BOX = (34, 6, 300, 30)


@dataclass(frozen=True)
class SigningKey:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True)
class Inspection:
    ok: bool
    reason: str  # "ok" or why not: not_pdf, oversized, unsigned, multiple_signatures, unknown_document,
    # unknown_signer, bad_signature, altered
    certificate_der: bytes | None = None
    lgcode: str | None = None
    serial: str | None = None
    signed_at: datetime | None = None


class _KeySigner(signers.SimpleSigner):
    """pyHanko's SimpleSigner reloads (and so re-validates) the private key on every signature,
    about 60 ms for RSA-2048; this one keeps the loaded key. RSA PKCS#1 v1.5 only."""

    def __init__(self, key: rsa.RSAPrivateKey, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._key = key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        return self._key.sign(data, padding.PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))


def _asn1(cert: x509.Certificate) -> asn1x509.Certificate:
    return asn1x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign(pdf: bytes, signing_key: SigningKey, lgcode: str, serial: str, code: str, location: str) -> bytes:
    """The PDF with a PAdES signature appended; the stamp shows serial and verification code."""
    key_der = signing_key.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
    signer = _KeySigner(
        signing_key.key,
        signing_cert=_asn1(signing_key.certificate),
        signing_key=asn1keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [_asn1(c) for c in signing_key.chain]),
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    fields.append_signature_field(writer, fields.SigFieldSpec(FIELD, on_page=0, box=STAMP_BOX))
    style = TextStampStyle(
        stamp_text=f"Digitally signed (PAdES)  serial {lgcode}-{serial}\n"
                   f"Verification code {code}  - check at /verify\n%(ts)s",
        text_box_style=text.TextBoxStyle(font_size=6),
        border_width=0,
    )
    meta = signers.PdfSignatureMetadata(field_name=FIELD, reason=f"Kiban certificate {lgcode} {serial}",
                                        location=location, subfilter=fields.SigSeedSubFilter.PADES,
                                        md_algorithm="sha256")
    out = io.BytesIO()
    # bytes_reserved: room for the CMS (the signature, two certificates, attributes), so
    # pyHanko need not sign once more to measure it.
    signers.PdfSigner(meta, signer=signer, stamp_style=style).sign_pdf(writer, output=out, bytes_reserved=8192)
    return out.getvalue()


def inspect(pdf: bytes, pinned: Callable[[str], Sequence[x509.Certificate]]) -> Inspection:
    """Check the PDF's one signature: intact, covering the whole file, and made with one of the
    certificates `pinned(lgcode)` returns for the municipality the signature names (the trust
    decision is the caller's: a document-signing certificate is trusted by exact match, not by
    a chain). Never raises."""
    if len(pdf) > MAX_PDF_BYTES:
        return Inspection(False, "oversized")
    if not pdf.startswith(b"%PDF-"):
        return Inspection(False, "not_pdf")
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = reader.embedded_signatures
    except Exception:
        return Inspection(False, "not_pdf")
    if not sigs:
        return Inspection(False, "unsigned")
    if len(sigs) != 1:
        return Inspection(False, "multiple_signatures")
    sig = sigs[0]
    try:
        match = _REASON.match(str(sig.sig_object.get("/Reason", "")))
    except Exception:
        match = None
    if match is None:
        return Inspection(False, "unknown_document")
    lgcode, serial = match.group(1), match.group(2)
    try:
        roots = [_asn1(c) for c in pinned(lgcode)]
    except Exception:
        roots = []
    if not roots:
        return Inspection(False, "unknown_signer", lgcode=lgcode, serial=serial)
    try:
        status = validate_pdf_signature(sig, ValidationContext(trust_roots=roots, allow_fetching=False))
    except Exception:
        return Inspection(False, "bad_signature", lgcode=lgcode, serial=serial)
    if not (status.intact and status.valid):
        return Inspection(False, "bad_signature", lgcode=lgcode, serial=serial)
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return Inspection(False, "altered", lgcode=lgcode, serial=serial)
    if not status.trusted or status.signing_cert.dump() not in {r.dump() for r in roots}:
        return Inspection(False, "unknown_signer", lgcode=lgcode, serial=serial)
    return Inspection(True, "ok", bytes(status.signing_cert.dump()), lgcode, serial, status.signer_reported_dt)
