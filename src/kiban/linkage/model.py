"""The exchange hub's rules (pure): member and item names, agency-specific codes, the
permission table, request parsing, refusals and the log entry.

Names follow X-Road: a subsystem is INSTANCE/CLASS/MEMBER/SUBSYSTEM (for example
`JP/LG/131016/jumin`, the resident registry of 千代田区); a data item is `AREA/ITEM` (for
example `jumin/household-composition`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kiban.core.errors import FieldError

MEMBER_RE = re.compile(r"^[A-Z]{2,8}/[A-Z]{2,8}/[A-Za-z0-9-]{1,64}/[a-z0-9-]{1,64}$")
MEMBER_PATTERN_RE = re.compile(r"^[A-Z]{2,8}/[A-Z]{2,8}/(\*|[A-Za-z0-9-]{1,64})/[a-z0-9-]{1,64}$")
ITEM_RE = re.compile(r"^[a-z0-9-]{1,32}/[a-z0-9-]{1,64}$")
PROCEDURE_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")
CODE_RE = re.compile(r"^[A-Z2-7]{24}$")
MEMBER_KINDS = ("municipality", "agency")
MAX_PARAMS_BYTES = 2_000
PROTOCOL_VERSION = "kiban-linkage/1"


def canonical(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def municipality_member(lgcode: str, subsystem: str = "jumin", instance: str = "JP") -> str:
    return f"{instance}/LG/{lgcode}/{subsystem}"


# --- agency-specific codes (機関別符号) ----------------------------------------------------

def person_key(secret: bytes, juminhyo_code: str) -> str:
    """The hub's own pseudonym for a person. Derived from the 住民票コード, which stays
    inside the hub: no member ever receives it or this key."""
    return hmac.new(secret, b"kiban-linkage/person|" + juminhyo_code.encode(), hashlib.sha256).hexdigest()[:32]


def agency_code(secret: bytes, member: str, person: str) -> str:
    """The member's own code for the person (24 base32 characters). Without the secret, the
    codes of two members for the same person cannot be linked or computed from each other."""
    mac = hmac.new(secret, f"kiban-linkage/code|{member}|{person}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac[:15]).decode()


def subject_commitment(secret: bytes, person: str, client: str, request_id: str) -> str:
    """What the public log says about the person: a per-entry value that links no two entries
    and names nobody, but that the hub can show a resident to be theirs."""
    return hmac.new(secret, f"kiban-linkage/subject|{person}|{client}|{request_id}".encode(),
                    hashlib.sha256).hexdigest()


# --- refusals -------------------------------------------------------------------------

class Refusal(StrEnum):
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_MEMBER = "unknown-member"
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    UNKNOWN_PROVIDER = "unknown-provider"
    UNKNOWN_ITEM = "unknown-item"
    NOT_PERMITTED = "not-permitted"
    UNKNOWN_CODE = "unknown-code"
    PROVIDER_FAILED = "provider-failed"
    NOT_FOUND = "not-found"


REFUSALS: dict[Refusal, tuple[int, str, str]] = {
    Refusal.UNSIGNED: (401, "署名がありません。", "The message is not signed."),
    Refusal.BAD_SIGNATURE: (401, "署名を検証できません。", "The signature does not verify."),
    Refusal.UNKNOWN_MEMBER: (403, "登録されていない機関です。", "The client is not a registered member."),
    Refusal.MALFORMED: (400, "メッセージの形式が不正です。", "The message is malformed."),
    Refusal.OVERSIZED: (413, "メッセージが大きすぎます。", "The message is too large."),
    Refusal.EXPIRED: (400, "メッセージの日時が有効範囲外です。",
                      "The message timestamp is outside the allowed window."),
    Refusal.REPLAYED: (409, "同じ要求IDのメッセージは受け付け済みです。",
                       "This request ID was already used."),
    Refusal.UNKNOWN_PROVIDER: (404, "提供機関が登録されていません。",
                               "The provider is not a registered member."),
    Refusal.UNKNOWN_ITEM: (404, "提供機関はこの情報を提供していません。",
                           "The provider does not serve this data item."),
    Refusal.NOT_PERMITTED: (403, "この情報連携は認められていません(連携表にありません)。",
                            "This exchange is not in the permission table."),
    Refusal.UNKNOWN_CODE: (403, "この符号はこの機関のものではありません。",
                           "The code is not one of this member's codes."),
    Refusal.PROVIDER_FAILED: (502, "提供機関から有効な応答がありません。", "The provider gave no valid response."),
    Refusal.NOT_FOUND: (404, "提供機関に該当する情報がありません。", "The provider holds no data for this person."),
}


def refusal_text(reason: Refusal) -> tuple[int, str, str]:
    return REFUSALS[reason]


# --- the permission table (情報連携の根拠: 番号法 別表 / 主務省令) -----------------------

@dataclass(frozen=True)
class Rule:
    requester: str  # a subsystem
    provider: str  # a subsystem, or a pattern with `*` as MEMBER (every municipality)
    item: str
    procedure: str  # 事務 (the task), a procedure code
    legal_basis: str  # the provision that allows it

    def matches(self, requester: str, provider: str, item: str, procedure: str) -> bool:
        if (self.requester, self.item, self.procedure) != (requester, item, procedure):
            return False
        if self.provider == provider:
            return True
        want, got = self.provider.split("/"), provider.split("/")
        return (len(want) == len(got) == 4 and want[2] == "*"
                and want[:2] == got[:2] and want[3] == got[3])


def find_rule(rules: Iterable[Rule], requester: str, provider: str, item: str, procedure: str) -> Rule | None:
    return next((r for r in rules if r.matches(requester, provider, item, procedure)), None)


def check_rules(rows: Sequence[Mapping[str, Any]]) -> tuple[list[Rule], list[FieldError]]:
    """Validates a whole table as published (every bad field named); duplicates refused."""
    rules: list[Rule] = []
    errors: list[FieldError] = []
    seen: set[tuple[str, str, str, str]] = set()
    checks = (("requester", MEMBER_RE, "要求機関", "a subsystem INSTANCE/CLASS/MEMBER/SUBSYSTEM"),
              ("provider", MEMBER_PATTERN_RE, "提供機関", "a subsystem (MEMBER may be *)"),
              ("item", ITEM_RE, "情報項目", "an item AREA/ITEM"),
              ("procedure", PROCEDURE_RE, "事務", "a procedure code"))
    for i, row in enumerate(rows):
        values = {k: str(row.get(k, "") or "").strip() for k in (*[c[0] for c in checks], "legal_basis")}
        bad = False
        for name, pattern, ja, en in checks:
            if not pattern.match(values[name]):
                errors.append(FieldError(f"rules[{i}].{name}", f"{ja}が不正です。", f"{name} must be {en}."))
                bad = True
        if not values["legal_basis"] or len(values["legal_basis"]) > 200:
            errors.append(FieldError(f"rules[{i}].legal_basis", "根拠法令を入力してください(200字以内)。",
                                     "legal_basis is required (at most 200 characters)."))
            bad = True
        key = (values["requester"], values["provider"], values["item"], values["procedure"])
        if not bad and key in seen:
            errors.append(FieldError(f"rules[{i}]", "同じ連携が重複しています。", "Duplicate rule."))
            bad = True
        seen.add(key)
        if not bad:
            rules.append(Rule(**values))
    return rules, errors


def table_digest(rules: Iterable[Rule]) -> str:
    return hashlib.sha256(canonical([asdict(r) for r in rules])).hexdigest()


# --- messages -------------------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    """A requester's message, as signed by the requester."""

    request_id: str
    issued_at: datetime
    client: str
    provider: str
    item: str
    procedure: str
    subject: str  # the requester's own code for the person
    params: dict[str, Any] = field(default_factory=dict)


def parse_request(body: bytes) -> Request | None:
    """The request, or None when it is not a well-formed message (refused as malformed)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("protocol") != PROTOCOL_VERSION:
        return None
    strings = ("request_id", "issued_at", "client", "provider", "item", "procedure", "subject")
    if not all(isinstance(data.get(k), str) for k in strings):
        return None
    params = data.get("params", {})
    if not isinstance(params, dict) or len(canonical(params)) > MAX_PARAMS_BYTES:
        return None
    if set(data) - {*strings, "params", "protocol"}:
        return None
    if not (REQUEST_ID_RE.match(data["request_id"]) and MEMBER_RE.match(data["client"])
            and MEMBER_RE.match(data["provider"]) and ITEM_RE.match(data["item"])
            and PROCEDURE_RE.match(data["procedure"]) and CODE_RE.match(data["subject"])):
        return None
    try:
        issued = datetime.fromisoformat(data["issued_at"])
    except ValueError:
        return None
    if issued.tzinfo is None:
        return None
    return Request(data["request_id"], issued, data["client"], data["provider"], data["item"],
                   data["procedure"], data["subject"], params)


def request_body(request: Request) -> bytes:
    return canonical({"protocol": PROTOCOL_VERSION, "request_id": request.request_id,
                      "issued_at": request.issued_at.isoformat(), "client": request.client,
                      "provider": request.provider, "item": request.item,
                      "procedure": request.procedure, "subject": request.subject,
                      "params": request.params})


def is_fresh(issued_at: datetime, now: datetime, window: timedelta) -> bool:
    """Within `window` either side of the hub's clock (expired or from the future: refused)."""
    return abs(now - issued_at) <= window


def request_hash(body: bytes) -> str:
    """The request hash echoed in the response (as X-Road-Request-Hash): SHA-256, base64."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


# --- the log entry --------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One exchange, allowed or refused, as it is published in the log: no name, no code."""

    at: str  # ISO timestamp (UTC)
    request_id: str
    client: str
    provider: str
    item: str
    procedure: str
    legal_basis: str
    outcome: str  # "provided" or "refused"
    reason: str  # the refusal code, "" when provided
    request_hash: str
    subject: str  # subject_commitment, "" when no person was identified
    table_version: int

    def leaf_input(self) -> bytes:
        return canonical({"v": 1, **asdict(self)})

    @classmethod
    def from_leaf_input(cls, data: bytes) -> Entry:
        raw = json.loads(data)
        raw.pop("v", None)
        return cls(**raw)
