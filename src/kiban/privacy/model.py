"""Pure rules of personal-information handling: purposes of use, the file register's
declarations, and the screening rules of anonymised-data proposals. Each refusal names the
rule it applies, so a proposer, a staff member or an auditor can look it up."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from kiban.core.errors import FieldError

# --- purposes of use (利用目的) -----------------------------------------------------------------

# Purpose code -> (Japanese, English). A role is granted the purposes its work serves
# (個人情報保護法 第61条: 保有は利用目的の達成に必要な範囲内; 第69条: 目的外利用の制限).
PURPOSES: dict[str, tuple[str, str]] = {
    "resident_registration": ("住民基本台帳事務", "Resident registration"),
    "certificate_issue": ("証明書の交付", "Issuing certificates"),
    "system_integration": ("庁内システム連携", "In-house system integration"),
    "tax_assessment": ("個人住民税の賦課", "Resident tax assessment"),
    "audit": ("個人情報保護の監査・苦情処理", "Privacy audit and complaints"),
    "municipality_administration": ("団体の管理", "Municipality administration"),
}

ROLE_PURPOSES: dict[str, frozenset[str]] = {
    "counter_clerk": frozenset({"resident_registration", "certificate_issue"}),
    "registry_supervisor": frozenset({"resident_registration", "certificate_issue",
                                      "system_integration"}),
    "tax_officer": frozenset({"tax_assessment"}),
    "privacy_officer": frozenset({"audit"}),
    "municipality_admin": frozenset({"municipality_administration", "audit"}),
}

RULE_PURPOSE = "個人情報保護法第69条(利用目的以外の利用の制限)"
REASON_MAX = 500


def purposes_of(roles: frozenset[str] | set[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PURPOSES.get(str(role), frozenset())
    return frozenset(granted)


@dataclass(frozen=True)
class AccessDecision:
    purpose: str
    flagged: bool  # outside the staff member's purposes, allowed on a stated reason
    reason: str


def decide_access(roles: frozenset[str] | set[str], purpose: str, reason: str) -> AccessDecision:
    """A read for `purpose`: within the roles' purposes, recorded; outside them, allowed only
    with a stated reason and flagged to the privacy officer; an unknown purpose, refused."""
    reason = reason.strip()
    if purpose not in PURPOSES:
        raise PurposeRefused(FieldError(
            "purpose", f"利用目的「{purpose}」は定められていません({RULE_PURPOSE})。",
            f"Unknown purpose of use {purpose!r} ({RULE_PURPOSE})."))
    if len(reason) > REASON_MAX:
        raise PurposeRefused(FieldError("reason", f"理由は{REASON_MAX}文字以内です。",
                                        f"The reason is at most {REASON_MAX} characters."))
    if purpose in purposes_of(roles):
        return AccessDecision(purpose, False, reason)
    if not reason:
        raise PurposeRefused(FieldError(
            "reason", f"担当外の利用目的です。理由を記入してください({RULE_PURPOSE})。",
            f"This purpose is outside your roles; state a reason ({RULE_PURPOSE})."))
    return AccessDecision(purpose, True, reason)


class PurposeRefused(Exception):
    def __init__(self, error: FieldError) -> None:
        super().__init__(error.en)
        self.error = error


# --- the 個人情報ファイル簿 ------------------------------------------------------------------------

@dataclass(frozen=True)
class FileDeclaration:
    """What the data model cannot tell about a personal information file (個人情報ファイル):
    the items of 個人情報保護法 第74条第1項 (via 第75条第1項) that are decisions, not columns.
    The recorded items (記録項目) come from the tables' columns."""
    file_id: str
    name: str  # 第74条第1項第1号 個人情報ファイルの名称
    organisation: str  # 第2号 事務をつかさどる組織の名称
    purpose: str  # 第3号 利用目的
    legal_basis: str  # the statute the work rests on (利用目的の根拠)
    scope: str  # 第4号 記録範囲
    collection: str  # 第5号 収集方法
    recipients: tuple[str, ...]  # 第7号 経常的提供先 (empty: none)
    tables: tuple[str, ...]  # the tables that hold the file
    labels: dict[str, str]  # column -> 記録項目 name; columns not listed are technical
    sensitive: str = ""  # 第6号 要配慮個人情報が含まれるときはその旨
    anonymisation_open: bool = False  # 施行令第21条: 提案募集の対象である旨
    kind: str = "電算処理ファイル"  # 施行令第21条: ファイルの種別 (法第60条第2項第1号)
    # Columns that are keys and bookkeeping, not recorded items about the person.
    technical: tuple[str, ...] = ("lgcode", "id", "version")
    # Items named in the tables' JSON columns (e.g. 外国人住民の在留資格).
    nested_items: tuple[str, ...] = ()


@dataclass(frozen=True)
class NonFile:
    """A personal-data table that is not a personal information file of its own: why."""
    table: str
    reason: str


# --- anonymised data (行政機関等匿名加工情報) ------------------------------------------------------

MIN_PERSONS = 1000  # at least this many persons in the data (see docs/privacy.md)
MIN_K = 5  # the configured floor of k (a proposer may ask for more, never less)
MIN_L = 2
MIN_OPEN_DAYS = 30  # 提案募集: 30日以上 (施行規則)
RULE_PERIOD = "施行規則(提案の募集期間)"
RULE_ELIGIBLE_FILE = "個人情報保護法第110条・第75条(ファイル簿に提案募集の対象と記載されたファイル)"
RULE_PROPOSER = "個人情報保護法第113条(欠格事由)"
RULE_PERSONS = f"提案の審査基準(本人の数が{MIN_PERSONS}人以上)"
RULE_IDENTIFIERS = "個人情報保護法施行規則第62条第1号・第2号(個人を識別する記述・個人識別符号の削除)"
RULE_LINK_CODES = "個人情報保護法施行規則第62条第3号(連結する符号の削除)"
RULE_K = f"提案の審査基準(k匿名性 k≥{MIN_K})"
RULE_L = f"提案の審査基準(l多様性 l≥{MIN_L})"
RULE_ITEMS = "提案の審査基準(提供できる項目)"
RULE_PURPOSE_USE = "個人情報保護法第114条第1項(新たな産業の創出・豊かな国民生活の実現に資する利用)"

# 第113条 disqualifications a proposer declares (each refuses the proposal).
DISQUALIFICATIONS = {
    "minor_guardianship": "心身の故障により適正に利用できない者として規則で定めるもの等(第113条第1号)",
    "imprisonment_within_2y": "禁錮以上の刑に処せられ、執行を終わってから2年を経過しない者(第2号)",
    "penalty_under_act_2y": "この法律等の規定により罰金刑に処せられ2年を経過しない者(第3号)",
    "contract_cancelled_2y": "行政機関等匿名加工情報の利用契約を解除され2年を経過しない者(第4号)",
    "organised_crime": "暴力団員等(第113条各号に準ずる審査基準)",
}


@dataclass(frozen=True)
class Item:
    """An item a data user may ask for, and how it is treated in processing."""
    name: str
    label: str
    kind: str  # "quasi" (generalised), "sensitive" (kept, l-diversity), "numeric" (top-coded)


# The items of the resident-registry file that an anonymised dataset may carry. Everything
# else (names, readings, 住民票コード, 個人番号, 番地, 方書, 本籍, 在留カード番号, IDs) is refused:
# the proposal names the rule.
REGISTRY_ITEMS: dict[str, Item] = {i.name: i for i in (
    Item("age", "年齢", "quasi"),
    Item("sex", "性別", "quasi"),
    Item("town_code", "町字", "quasi"),
    Item("relationship", "続柄", "quasi"),
    Item("household_size", "世帯人員", "quasi"),
    Item("resident_years", "居住年数", "quasi"),
    Item("foreign", "外国人住民の別", "quasi"),
    Item("nationality", "国籍・地域", "sensitive"),
    Item("residence_status", "在留資格", "sensitive"),
)}
IDENTIFYING_ITEMS = {
    "family_name": RULE_IDENTIFIERS, "given_name": RULE_IDENTIFIERS,
    "family_kana": RULE_IDENTIFIERS, "given_kana": RULE_IDENTIFIERS,
    "former_surname": RULE_IDENTIFIERS, "birth_date": RULE_IDENTIFIERS,
    "banchi": RULE_IDENTIFIERS, "katagaki": RULE_IDENTIFIERS, "honseki": RULE_IDENTIFIERS,
    "hittosha": RULE_IDENTIFIERS, "previous_address": RULE_IDENTIFIERS,
    "my_number": RULE_IDENTIFIERS, "card_number": RULE_IDENTIFIERS,
    "juminhyo_code": RULE_LINK_CODES, "id": RULE_LINK_CODES, "household_id": RULE_LINK_CODES,
}


@dataclass
class ProposalIn:
    purpose: str
    items: list[str]
    sensitive: str | None
    k: int
    l: int  # noqa: E741 - the name the literature uses
    use_from: date
    use_to: date
    disqualifications: list[str] = field(default_factory=list)


def screen_items(p: ProposalIn) -> list[FieldError]:
    """The rules that need no data: items, k, l, period, disqualifications, purpose."""
    errors: list[FieldError] = []
    if len(p.purpose.strip()) < 10:
        errors.append(FieldError("purpose", f"利用目的を具体的に記載してください({RULE_PURPOSE_USE})。",
                                 f"Describe the purpose of use ({RULE_PURPOSE_USE})."))
    if not p.items:
        errors.append(FieldError("items", f"項目を1つ以上指定してください({RULE_ITEMS})。",
                                 f"Ask for at least one item ({RULE_ITEMS})."))
    for i, name in enumerate(p.items):
        if name in IDENTIFYING_ITEMS:
            rule = IDENTIFYING_ITEMS[name]
            errors.append(FieldError(f"items[{i}]", f"「{name}」は提供できません({rule})。",
                                     f"{name!r} cannot be provided ({rule})."))
        elif name not in REGISTRY_ITEMS:
            errors.append(FieldError(f"items[{i}]", f"「{name}」は提供できる項目ではありません({RULE_ITEMS})。",
                                     f"{name!r} is not an item that can be provided ({RULE_ITEMS})."))
    quasi = [n for n in p.items if n in REGISTRY_ITEMS and REGISTRY_ITEMS[n].kind == "quasi"]
    if p.items and not quasi and not errors:
        errors.append(FieldError("items", f"準識別子となる項目が必要です({RULE_ITEMS})。",
                                 f"Ask for at least one quasi-identifier ({RULE_ITEMS})."))
    if p.sensitive is not None and p.sensitive not in p.items:
        errors.append(FieldError("sensitive", f"機微項目は請求項目から選んでください({RULE_L})。",
                                 f"The sensitive item must be one of the items ({RULE_L})."))
    if p.k < MIN_K:
        errors.append(FieldError("k", f"kは{MIN_K}以上です({RULE_K})。",
                                 f"k must be at least {MIN_K} ({RULE_K})."))
    if p.l < MIN_L:
        errors.append(FieldError("l", f"lは{MIN_L}以上です({RULE_L})。",
                                 f"l must be at least {MIN_L} ({RULE_L})."))
    if p.l > p.k:
        errors.append(FieldError("l", f"lはk以下です({RULE_L})。", f"l cannot exceed k ({RULE_L})."))
    if p.use_to <= p.use_from:
        errors.append(FieldError("use_to", "利用期間の終了日は開始日より後です。",
                                 "The period of use must end after it starts."))
    for i, code in enumerate(p.disqualifications):
        if code in DISQUALIFICATIONS:
            errors.append(FieldError(f"disqualifications[{i}]",
                                     f"提案者が欠格事由に該当します: {DISQUALIFICATIONS[code]}({RULE_PROPOSER})。",
                                     f"The proposer is disqualified: {code} ({RULE_PROPOSER})."))
        else:
            errors.append(FieldError(f"disqualifications[{i}]", "不明な欠格事由です。",
                                     f"Unknown disqualification {code!r}."))
    return errors


def screen_call(opens_on: date, closes_on: date, files: list[str],
                eligible: set[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if (closes_on - opens_on).days + 1 < MIN_OPEN_DAYS:
        errors.append(FieldError("closes_on", f"募集期間は{MIN_OPEN_DAYS}日以上です({RULE_PERIOD})。",
                                 f"A call stays open at least {MIN_OPEN_DAYS} days ({RULE_PERIOD})."))
    if not files:
        errors.append(FieldError("files", "対象ファイルを指定してください。", "Name at least one file."))
    for i, f in enumerate(files):
        if f not in eligible:
            errors.append(FieldError(
                f"files[{i}]", f"「{f}」は提案募集の対象ファイルではありません({RULE_ELIGIBLE_FILE})。",
                f"{f!r} is not open to proposals ({RULE_ELIGIBLE_FILE})."))
    return errors
