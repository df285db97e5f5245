"""Identity on the JPKI model, the pure part: rejection reasons, the validation policy, and the
rules a certificate path must obey, applied to facts already extracted from certificates.

Nothing here parses DER or touches a key: `validation` extracts `CertFacts` from certificates
with `cryptography` and checks signatures; this module decides. Standard library only.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class Reason(StrEnum):
    """Why a signature or certificate is rejected. The values are a stable contract: they are
    printed by `kiban identity verify`, returned by the service and cited by tests."""

    OK = "ok"
    # input
    MALFORMED = "malformed"  # the signature (CMS) is not parseable DER of the right shape
    MALFORMED_CERTIFICATE = "malformed_certificate"  # a certificate in the path cannot be parsed
    OVERSIZED = "oversized"  # the signature or a certificate is over the size limit
    EMPTY = "empty"  # no signature bytes at all
    NOT_SIGNED_DATA = "not_signed_data"  # a CMS ContentInfo of another type
    NO_SIGNER = "no_signer"  # SignedData with no SignerInfo
    MULTIPLE_SIGNERS = "multiple_signers"  # more than one SignerInfo (not supported)
    SIGNER_CERTIFICATE_MISSING = "signer_certificate_missing"  # sid names no included certificate
    # the signature itself
    DIGEST_MISMATCH = "digest_mismatch"  # message-digest attribute differs from the data's hash
    BAD_SIGNATURE = "bad_signature"  # the RSA signature over the data (or attributes) is wrong
    WEAK_ALGORITHM = "weak_algorithm"  # SHA-1, MD5, RSA < 2048 bits, or not on the allow-list
    # the certificate path
    UNTRUSTED = "untrusted"  # no path to a configured trust anchor
    CHAIN_LOOP = "chain_loop"  # the issuers form a cycle without reaching an anchor
    CHAIN_TOO_LONG = "chain_too_long"  # more certificates than the policy allows
    BAD_CERTIFICATE_SIGNATURE = "bad_certificate_signature"  # a certificate's issuer signature
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    NOT_A_CA = "not_a_ca"  # an issuer without basicConstraints cA=TRUE or keyCertSign
    PATH_LENGTH_EXCEEDED = "path_length_exceeded"  # basicConstraints pathLenConstraint broken
    WRONG_KEY_USAGE = "wrong_key_usage"  # the end certificate may not be used for this purpose
    POLICY_MISMATCH = "policy_mismatch"  # none of the required certificate policies
    UNSUPPORTED_CRITICAL_EXTENSION = "unsupported_critical_extension"
    # revocation
    REVOKED = "revoked"
    CRL_STALE = "crl_stale"  # the only CRL for the issuer is past its nextUpdate (or has none)
    CRL_NOT_YET_VALID = "crl_not_yet_valid"  # thisUpdate in the future
    CRL_BAD_SIGNATURE = "crl_bad_signature"  # a CRL for the issuer not signed by the issuer
    OCSP_INVALID = "ocsp_invalid"  # an OCSP response that is malformed, unsigned or stale
    REVOCATION_UNKNOWN = "revocation_unknown"  # no CRL or OCSP answer could be obtained
    # usage of the command or the service
    INTERNAL_ERROR = "internal_error"  # a bug: never expected, never raised to the user


class Purpose(StrEnum):
    SIGNING = "signing"  # 署名用電子証明書: digitalSignature or nonRepudiation
    AUTHENTICATION = "authentication"  # 利用者証明用電子証明書: digitalSignature


class RevocationMode(StrEnum):
    REQUIRE = "require"  # no status obtainable -> revocation_unknown
    SOFT = "soft"  # check what is available; accept when nothing is
    OFF = "off"  # no revocation check (tests, benchmarks of the path alone)


# JPKI (J-LIS certificate profile): the 基本4情報 in subjectAltName otherName entries.
OID_JPKI_NAME = "1.2.392.200149.8.5.5.1"
OID_JPKI_NAME_SUBSTITUTE = "1.2.392.200149.8.5.5.2"
OID_JPKI_SEX = "1.2.392.200149.8.5.5.3"
OID_JPKI_BIRTH_DATE = "1.2.392.200149.8.5.5.4"
OID_JPKI_ADDRESS = "1.2.392.200149.8.5.5.5"
OID_JPKI_ADDRESS_SUBSTITUTE = "1.2.392.200149.8.5.5.6"

# Signature algorithms accepted on certificates and CRLs (by dotted OID).
SHA256_RSA = "1.2.840.113549.1.1.11"
SHA384_RSA = "1.2.840.113549.1.1.12"
SHA512_RSA = "1.2.840.113549.1.1.13"
DEFAULT_SIGNATURE_ALGORITHMS = frozenset({SHA256_RSA, SHA384_RSA, SHA512_RSA})
DEFAULT_DIGESTS = frozenset({"sha256", "sha384", "sha512"})

KU_DIGITAL_SIGNATURE = "digital_signature"
KU_NON_REPUDIATION = "content_commitment"  # cryptography's name for nonRepudiation
KU_KEY_CERT_SIGN = "key_cert_sign"

# Critical extensions this validator understands (dotted OIDs).
KNOWN_CRITICAL = frozenset({
    "2.5.29.15",  # keyUsage
    "2.5.29.19",  # basicConstraints
    "2.5.29.17",  # subjectAltName
    "2.5.29.32",  # certificatePolicies
    "2.5.29.37",  # extKeyUsage
    "2.5.29.14", "2.5.29.35",  # key identifiers
    "2.5.29.31",  # CRL distribution points
})


@dataclass(frozen=True)
class ValidationPolicy:
    max_chain_length: int = 5  # certificates, anchor included
    min_rsa_bits: int = 2048
    signature_algorithms: frozenset[str] = DEFAULT_SIGNATURE_ALGORITHMS
    digests: frozenset[str] = DEFAULT_DIGESTS
    required_policies: frozenset[str] = frozenset()  # empty: no policy check
    revocation: RevocationMode = RevocationMode.REQUIRE
    use_ocsp: bool = False
    fetch_crls: bool = True  # from the CRL distribution point, cached until nextUpdate
    max_signature_bytes: int = 1_000_000
    max_certificate_bytes: int = 64_000


@dataclass(frozen=True)
class CertFacts:
    """What the rules need to know about one certificate (extracted, not parsed, here)."""

    serial: int
    not_before: datetime
    not_after: datetime
    signature_algorithm: str  # dotted OID
    key_type: str  # "rsa", "ec", ...
    key_bits: int
    is_ca: bool
    path_length: int | None
    key_usage: frozenset[str] | None  # None: no keyUsage extension
    policies: frozenset[str]
    critical_extensions: frozenset[str]


def check_validity(facts: CertFacts, now: datetime) -> Reason | None:
    if now < facts.not_before:
        return Reason.NOT_YET_VALID
    if now > facts.not_after:
        return Reason.EXPIRED
    return None


def check_algorithms(facts: CertFacts, policy: ValidationPolicy, *, anchor: bool) -> Reason | None:
    """The key must be RSA of at least `min_rsa_bits`; the issuer's signature (not checked for
    an anchor, which is trusted as configured) must be on the allow-list."""
    if facts.key_type != "rsa" or facts.key_bits < policy.min_rsa_bits:
        return Reason.WEAK_ALGORITHM
    if not anchor and facts.signature_algorithm not in policy.signature_algorithms:
        return Reason.WEAK_ALGORITHM
    return None


def check_issuer(facts: CertFacts, below: int) -> Reason | None:
    """An issuing certificate with `below` non-self-issued CA certificates under it (the end
    certificate not counted)."""
    if not facts.is_ca:
        return Reason.NOT_A_CA
    if facts.key_usage is not None and KU_KEY_CERT_SIGN not in facts.key_usage:
        return Reason.NOT_A_CA
    if facts.path_length is not None and below > facts.path_length:
        return Reason.PATH_LENGTH_EXCEEDED
    return None


def check_end_entity(facts: CertFacts, purpose: Purpose, policy: ValidationPolicy) -> Reason | None:
    usage = facts.key_usage
    if usage is None:
        return Reason.WRONG_KEY_USAGE
    wanted = ({KU_DIGITAL_SIGNATURE, KU_NON_REPUDIATION} if purpose is Purpose.SIGNING
              else {KU_DIGITAL_SIGNATURE})
    if not usage & wanted:
        return Reason.WRONG_KEY_USAGE
    if policy.required_policies and not facts.policies & policy.required_policies:
        return Reason.POLICY_MISMATCH
    return None


def check_critical(facts: CertFacts) -> Reason | None:
    if facts.critical_extensions - KNOWN_CRITICAL:
        return Reason.UNSUPPORTED_CRITICAL_EXTENSION
    return None


def check_path(path: list[CertFacts], now: datetime, purpose: Purpose,
               policy: ValidationPolicy) -> Reason | None:
    """Rules over a built path, end certificate first, trust anchor last. Signatures between
    neighbours are checked by the caller (they need the keys)."""
    if len(path) > policy.max_chain_length:
        return Reason.CHAIN_TOO_LONG
    for index, facts in enumerate(path):
        anchor = index == len(path) - 1
        reason = (check_validity(facts, now) or check_algorithms(facts, policy, anchor=anchor)
                  or check_critical(facts))
        if reason:
            return reason
        if index == 0:
            reason = check_end_entity(facts, purpose, policy)
        else:
            reason = check_issuer(facts, below=index - 1)
        if reason:
            return reason
    return None


@dataclass(frozen=True)
class CrlFreshness:
    this_update: datetime
    next_update: datetime | None


def check_crl_time(crl: CrlFreshness, now: datetime) -> Reason | None:
    if crl.this_update > now:
        return Reason.CRL_NOT_YET_VALID
    if crl.next_update is None or crl.next_update < now:
        return Reason.CRL_STALE
    return None


def cache_is_fresh(next_update: datetime | None, now: datetime) -> bool:
    """A cached CRL is reused until its nextUpdate; one without nextUpdate is never reused."""
    return next_update is not None and now <= next_update


@dataclass(frozen=True)
class Signer:
    """The signer as the signing certificate names them (the 基本4情報 and the serial)."""

    serial: str  # hexadecimal, upper case
    name: str | None = None
    address: str | None = None
    birth_date: str | None = None  # ISO 8601
    sex: str | None = None  # "1" male, "2" female, "3" not stated (as on the certificate)
    name_substitute: str | None = None
    address_substitute: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"name": self.name, "address": self.address, "birth_date": self.birth_date,
                "sex": self.sex, "serial": self.serial}


@dataclass(frozen=True)
class Verification:
    valid: bool
    reason: Reason
    signer: Signer | None = None
    detail: str = ""  # English, for logs and operators; never personal data
    chain: list[str] = field(default_factory=list)  # fingerprints, end first

    def as_json(self) -> dict[str, object]:
        return {"valid": self.valid, "reason": self.reason.value,
                "signer": self.signer.as_json() if self.signer else None}


def reject(reason: Reason, detail: str = "", signer: Signer | None = None) -> Verification:
    return Verification(valid=False, reason=reason, signer=signer, detail=detail)


# --- JPKI date of birth: one era digit, then the Gregorian date YYYYMMDD -----------------

ERAS = (  # (digit, first day)
    ("5", date(2019, 5, 1)),  # 令和
    ("4", date(1989, 1, 8)),  # 平成
    ("3", date(1926, 12, 25)),  # 昭和
    ("2", date(1912, 7, 30)),  # 大正
    ("1", date(1868, 1, 25)),  # 明治 (as used for birth dates)
)


def encode_birth_date(born: date) -> str:
    for digit, start in ERAS:
        if born >= start:
            return digit + born.strftime("%Y%m%d")
    raise ValueError("date of birth before 明治")


def decode_birth_date(value: str) -> str | None:
    """The ISO date, or None when the value is not of the JPKI form."""
    digits = value.strip()
    if len(digits) == 9 and digits.isdigit():
        digits = digits[1:]
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).isoformat()
    except ValueError:
        return None


def signing_certificate_expiry(issued: date, born: date, card_expiry: date | None = None) -> date:
    """Valid until the 5th birthday after issue, or the card's expiry if earlier."""
    year = issued.year + 5
    if (issued.month, issued.day) < (born.month, born.day):
        year -= 1
    try:
        birthday = born.replace(year=year)
    except ValueError:  # 29 February
        birthday = date(year, 3, 1)
    if birthday <= issued:
        birthday = birthday.replace(year=birthday.year + 1)
    return min(birthday, card_expiry) if card_expiry else birthday


# --- linking a card to the resident record, and revoking it on a change (part 4) ---------

# The items of a registry record a JPKI signing certificate carries (基本4情報): a change of
# any revokes it. The authentication certificate carries none of them.
FOUR_ITEMS = frozenset({"family_name", "given_name", "birth_date", "sex", "address"})
# Changes that end the person's residence without a new one being recorded here (death, or
# 職権消除 for no longer living at the address): the authentication certificate goes too.
# A 転出 keeps it (the card is carried on to the new municipality, 継続利用).
LOSS_OF_RESIDENCE = frozenset({"death", "authority_removal"})


def normalise_text(value: str) -> str:
    """For comparing the 基本4情報 on a certificate with the registry: NFKC (full/half width
    and compatibility forms alike), no spaces. Variation selectors are kept, as everywhere."""
    return "".join(unicodedata.normalize("NFKC", value).split())


@dataclass(frozen=True)
class RecordFacts:
    """A resident record's 基本4情報 as the registry states them (address in full, prefecture
    first, as on the certificate)."""

    name: str
    birth_date: str  # ISO
    sex: str
    address: str


def mismatched_items(signer: Signer, record: RecordFacts) -> list[str]:
    """Which of the 基本4情報 differ between a signing certificate and a record; empty when
    they all agree. Never guesses: a missing item on the certificate is a mismatch."""
    out = []
    if normalise_text(signer.name or "") != normalise_text(record.name):
        out.append("name")
    if signer.birth_date != record.birth_date:
        out.append("birth_date")
    if (signer.sex or "") != record.sex:
        out.append("sex")
    if normalise_text(signer.address or "") != normalise_text(record.address):
        out.append("address")
    return out


def revokes(kind: str, notice: str, changed: list[str], status: str) -> set[Purpose]:
    """Which certificates a registry change revokes (JPKI, 公的個人認証法 第15条・第35条 as
    summarised in the reference): the signing certificate on any change of the 基本4情報 or
    when the record is removed (転出, 死亡, 職権消除); the authentication certificate only on
    death or loss of residence."""
    out: set[Purpose] = set()
    removed = notice == "removal" or (status == "removed" and notice == "update")
    if removed or FOUR_ITEMS & set(changed):
        out.add(Purpose.SIGNING)
    if removed and kind in LOSS_OF_RESIDENCE:
        out.add(Purpose.AUTHENTICATION)
    return out
