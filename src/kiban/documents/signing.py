"""PAdES signing and inspection of issued certificate documents.

`sign` appends one incremental revision to a PDF rendered by ReportLab: a visible signature
(bottom left of page 1) whose appearance carries the certificate's serial and verification code,
signed PAdES-B-B (CMS SignedData, SHA-256, ETSI.CAdES.detached, ESS signing-certificate-v2) with
the municipality's document-signing key. It writes the revision itself rather than through
pyHanko: the CMS structure is serialised once per key and per document only the digest and the
RSA signature are filled in (pyHanko rebuilt it with asn1crypto each time, ~20 ms a document).
`inspect` reads a signed PDF back with pyHanko, an independent implementation: whether its one
signature is intact and covers the whole file, who signed it (the certificate, for the caller to
pin), and the identifiers the signature names. Neither knows about the database; the registry
decides what is authentic.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

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


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _asn1(cert: x509.Certificate) -> asn1x509.Certificate:
    return asn1x509.Certificate.load(_der(cert))


# ------------------------------------------------------------------------------------ CMS
@dataclass(frozen=True)
class _CmsTemplate:
    """A SignedData serialised once per key, with the offsets of what changes per document.
    Every field that varies has a fixed length (a SHA-256 digest, an RSA signature as long as
    the modulus), so filling them in never moves a byte."""
    der: bytes
    digest_at: int
    attrs_at: int  # the signed attributes' [0] IMPLICIT tag; they are signed re-tagged as SET
    attrs_end: int
    signature_at: int
    signature_len: int


@lru_cache(maxsize=64)
def _cms_template(cert_der: bytes, chain_der: tuple[bytes, ...], key_bytes: int) -> _CmsTemplate:
    cert = asn1x509.Certificate.load(cert_der)
    digest_mark, signature_mark = os.urandom(32), os.urandom(key_bytes)
    sha256 = algos.DigestAlgorithm({"algorithm": "sha256"})
    attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [digest_mark]}),
        # ESS signing-certificate-v2: binds the signer's certificate (required by PAdES B-B).
        cms.CMSAttribute({"type": "signing_certificate_v2", "values": [tsp.SigningCertificateV2({
            "certs": [tsp.ESSCertIDv2({
                "hash_algorithm": {"algorithm": "sha256"},
                "cert_hash": hashlib.sha256(cert_der).digest(),
                "issuer_serial": {"issuer": [asn1x509.GeneralName({"directory_name": cert.issuer})],
                                  "serial_number": cert.serial_number}})]})]}),
    ])
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber(
            {"issuer": cert.issuer, "serial_number": cert.serial_number})}),
        "digest_algorithm": sha256,
        "signed_attrs": attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
        "signature": signature_mark,
    })
    signed_data = cms.SignedData({
        "version": "v1", "digest_algorithms": [sha256],
        "encap_content_info": {"content_type": "data"},
        "certificates": [cert, *(asn1x509.Certificate.load(c) for c in chain_der)],
        "signer_infos": [signer],
    })
    der = cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump(force=True)
    attrs_der = attrs.dump(force=True)
    attrs_at = der.index(attrs_der[1:]) - 1
    if der[attrs_at] != 0xA0:
        raise AssertionError("signed attributes not found in the CMS template")
    return _CmsTemplate(der, der.index(digest_mark), attrs_at, attrs_at + len(attrs_der),
                        der.index(signature_mark), key_bytes)


def _template_for(signing_key: SigningKey) -> _CmsTemplate:
    return _cms_template(_der(signing_key.certificate), tuple(_der(c) for c in signing_key.chain),
                         (signing_key.key.key_size + 7) // 8)


def _signed_data(signing_key: SigningKey, template: _CmsTemplate, digest: bytes) -> bytes:
    der = bytearray(template.der)
    der[template.digest_at:template.digest_at + 32] = digest
    attrs = b"\x31" + bytes(der[template.attrs_at + 1:template.attrs_end])
    signature = signing_key.key.sign(attrs, padding.PKCS1v15(), hashes.SHA256())
    der[template.signature_at:template.signature_at + template.signature_len] = signature
    return bytes(der)


# ------------------------------------------------------------------------------ the PDF
_TRAILER = re.compile(rb"trailer\s*<<(.*?)>>\s*startxref\s+(\d+)\s+%%EOF\s*$", re.S)
_XREF_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])")


def _tail(pdf: bytes) -> tuple[dict[str, bytes], int, dict[int, int]]:
    """The trailer's entries, the last xref's offset and every in-use object's offset. Only the
    classic cross-reference table ReportLab writes is read: anything else is refused."""
    found = _TRAILER.search(pdf, max(0, len(pdf) - 2048))
    if found is None:
        raise ValueError("the PDF has no classic trailer")
    trailer = {name.decode(): value for name, value in
               re.findall(rb"/(Root|Info|Size)\s+(\d+)", found.group(1))}
    ids = re.search(rb"/ID\s*\[\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*\]", found.group(1))
    if ids:
        trailer["ID"] = ids.group(1)
    startxref = int(found.group(2))
    if not pdf.startswith(b"xref", startxref) or "Root" not in trailer or "Size" not in trailer:
        raise ValueError("the PDF's cross-reference table cannot be read")
    offsets: dict[int, int] = {}
    pos = startxref + 4
    while True:
        header = re.compile(rb"\s*(\d+) (\d+)\s*").match(pdf, pos)
        if header is None:
            break
        first, count = int(header.group(1)), int(header.group(2))
        pos = header.end()
        for number in range(first, first + count):
            entry = _XREF_ENTRY.match(pdf, pos)
            if entry is None:
                raise ValueError("the PDF's cross-reference table is malformed")
            if entry.group(3) == b"n":
                offsets[number] = int(entry.group(1))
            pos = entry.end() + 2
    return trailer, startxref, offsets


def _object(pdf: bytes, offsets: dict[int, int], number: int) -> bytes:
    """The body of object `number` (between `N 0 obj` and `endobj`)."""
    start = offsets[number]
    head = re.compile(rb"%d 0 obj\s*" % number).match(pdf, start)
    end = pdf.find(b"endobj", start)
    if head is None or end < 0:
        raise ValueError(f"object {number} cannot be read")
    return pdf[head.end():end].rstrip()


def _ref(body: bytes, name: bytes) -> int:
    found = re.search(rb"/" + name + rb"\s+(\d+) 0 R", body)
    if found is None:
        raise ValueError(f"no /{name.decode()} reference")
    return int(found.group(1))


def _with_entry(body: bytes, entry: bytes) -> bytes:
    """A dictionary object's body with one more entry, written right after its opening <<."""
    if not body.startswith(b"<<"):
        raise ValueError("not a dictionary")
    return b"<< " + entry + b" " + body[2:]


def _text_string(value: str) -> bytes:
    """A PDF text string: printable ASCII as a literal, anything else UTF-16BE with its BOM."""
    if all(" " <= ch <= "~" for ch in value):
        return b"(" + value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode() + b")"
    return b"<FEFF" + value.encode("utf-16-be").hex().upper().encode() + b">"


def _pdf_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")


def _appearance(lines: Sequence[str], font: int) -> bytes:
    width, height = STAMP_BOX[2] - STAMP_BOX[0], STAMP_BOX[3] - STAMP_BOX[1]
    text = b"".join(b"%s Tj 0 -7 Td " % _text_string(line) for line in lines)
    stream = b"q BT /Helv 6 Tf 2 %d Td 7 TL " % (height - 7) + text + b"ET Q"
    return (b"<< /Type /XObject /Subtype /Form /BBox [ 0 0 %d %d ] /Resources << /Font << /Helv %d 0 R >> >> "
            b"/Length %d >>\nstream\n%s\nendstream" % (width, height, font, len(stream), stream))


def sign(pdf: bytes, signing_key: SigningKey, lgcode: str, serial: str, code: str, location: str,
         now: datetime | None = None) -> bytes:
    """The PDF with a PAdES signature appended; the stamp shows serial and verification code."""
    now = now or datetime.now(UTC)
    trailer, previous_xref, offsets = _tail(pdf)
    root, size = int(trailer["Root"]), int(trailer["Size"])
    catalog = _object(pdf, offsets, root)
    if b"/AcroForm" in catalog:
        raise ValueError("the PDF already has a form")
    kids = re.search(rb"/Kids\s*\[\s*(\d+) 0 R", _object(pdf, offsets, _ref(catalog, b"Pages")))
    if kids is None:
        raise ValueError("the PDF has no pages")
    first_page = int(kids.group(1))
    page = _object(pdf, offsets, first_page)
    signature, widget, appearance, font = size, size + 1, size + 2, size + 3
    if re.search(rb"/Annots\s*\[", page):
        page = re.sub(rb"/Annots\s*\[", b"/Annots [ %d 0 R " % widget, page, count=1)
    elif b"/Annots" in page:
        raise ValueError("the first page's annotations are not an inline array")
    else:
        page = _with_entry(page, b"/Annots [ %d 0 R ]" % widget)
    template = _template_for(signing_key)
    cms_length = len(template.der)
    placeholder = b"[ 0 %s ]" % (b" " * 34)
    x0, y0, x1, y1 = STAMP_BOX
    objects = {
        root: _with_entry(catalog, b"/AcroForm << /Fields [ %d 0 R ] /SigFlags 3 >>" % widget),
        first_page: page,
        signature: b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange "
                   + placeholder + b" /Contents <" + b"0" * (2 * cms_length) + b"> /M "
                   + _text_string(_pdf_date(now)) + b" /Reason " + _text_string(f"Kiban certificate {lgcode} {serial}")
                   + b" /Location " + _text_string(location) + b" >>",
        widget: b"<< /Type /Annot /Subtype /Widget /FT /Sig /T (%s) /V %d 0 R /F 132 /P %d 0 R "
                b"/Rect [ %d %d %d %d ] /AP << /N %d 0 R >> >>"
                % (FIELD.encode(), signature, first_page, x0, y0, x1, y1, appearance),
        appearance: _appearance([f"Digitally signed (PAdES)  serial {lgcode}-{serial}",
                                 f"Verification code {code}  - check at /verify",
                                 now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")], font),
        font: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    out = bytearray(pdf if pdf.endswith(b"\n") else pdf + b"\n")
    written: dict[int, int] = {}
    for number, body in objects.items():
        written[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n"
    for number in sorted(written):
        out += b"%d 1\n%010d 00000 n \n" % (number, written[number])
    document_id = trailer.get("ID", hashlib.md5(pdf).hexdigest().encode())  # noqa: S324 - an identifier
    out += (b"trailer\n<< /Size %d /Root %d 0 R%s /Prev %d /ID [ <%s> <%s> ] >>\nstartxref\n%d\n%%%%EOF\n"
            % (font + 1, root, b" /Info %s 0 R" % trailer["Info"] if "Info" in trailer else b"",
               previous_xref, document_id, hashlib.md5(out).hexdigest().encode(), xref_at))  # noqa: S324
    # The byte range covers everything but the /Contents hex string, which then receives the CMS.
    contents_at = out.index(b"/Contents <", written[signature]) + len(b"/Contents ")
    contents_end = contents_at + 2 * cms_length + 2
    byte_range = b"[ 0 %d %d %d ]" % (contents_at, contents_end, len(out) - contents_end)
    range_at = out.index(placeholder, written[signature])
    out[range_at:range_at + len(placeholder)] = byte_range.ljust(len(placeholder))
    digest = hashlib.sha256(bytes(out[:contents_at]) + bytes(out[contents_end:])).digest()
    out[contents_at + 1:contents_end - 1] = _signed_data(signing_key, template, digest).hex().upper().encode()
    return bytes(out)


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
