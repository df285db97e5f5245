"""The resident record domain: pure dataclasses, validation and the rules of each change (異動).

Requirement IDs (JR-...) refer to docs/registry.md, which maps them to chapter 3 of the
住民記録システム標準仕様書.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from kiban.core.checkdigits import is_valid_juminhyo_code, is_valid_lgcode, is_valid_my_number
from kiban.core.errors import FieldError, RuleViolation, ValidationFailed
from kiban.core.text import clean_name, fold_kana, fold_kanji, is_kana_reading

NOTICE_DEADLINE = timedelta(days=14)  # 住民基本台帳法 22条 (転入), 23条 (転居)
SPECIAL_MOVE_IN_WINDOW = timedelta(days=30)  # 特例転入: within 30 days of the planned move-out
HEAD = "世帯主"
RELATIONSHIPS = (
    HEAD, "妻", "夫", "子", "父", "母", "孫", "祖父", "祖母", "兄", "姉", "弟", "妹",
    "子の妻", "子の夫", "妻の父", "妻の母", "夫の父", "夫の母", "叔父", "叔母", "甥", "姪",
    "縁故者", "同居人", "妻(未届)", "夫(未届)",
)
SEXES = {"1": "男", "2": "女"}
_BANCHI = re.compile(r"^[0-9０-９一二三四五六七八九十百千番地号の\-－ー−]{1,40}$")


class ChangeKind(StrEnum):
    MOVE_IN = "move_in"  # 転入 (JR-0401)
    MOVE_IN_FROM_ABROAD = "move_in_from_abroad"  # 国外からの転入 (JR-0402)
    SPECIAL_MOVE_IN = "special_move_in"  # 特例転入 (JR-0403)
    RELOCATION = "relocation"  # 転居 (JR-0404)
    MOVE_OUT = "move_out"  # 転出 (JR-0405)
    BIRTH = "birth"  # 出生 (JR-0406)
    DEATH = "death"  # 死亡 (JR-0407)
    HOUSEHOLD_SPLIT = "household_split"  # 世帯分離 (JR-0408)
    HOUSEHOLD_MERGE = "household_merge"  # 世帯合併 (JR-0409)
    HEAD_CHANGE = "head_change"  # 世帯主変更 (JR-0410)
    AUTHORITY_ENTRY = "authority_entry"  # 職権記載 (JR-0411)
    AUTHORITY_REMOVAL = "authority_removal"  # 職権消除 (JR-0412)
    AUTHORITY_CORRECTION = "authority_correction"  # 職権修正 (JR-0413)
    CANCELLATION = "cancellation"  # 異動の取消 (JR-0414)
    JUMINHYO_CODE_CHANGE = "juminhyo_code_change"  # 住民票コードの変更請求 (JR-0421)


CHANGE_LABELS = {
    ChangeKind.MOVE_IN: "転入", ChangeKind.MOVE_IN_FROM_ABROAD: "国外からの転入",
    ChangeKind.SPECIAL_MOVE_IN: "特例転入", ChangeKind.RELOCATION: "転居",
    ChangeKind.MOVE_OUT: "転出", ChangeKind.BIRTH: "出生", ChangeKind.DEATH: "死亡",
    ChangeKind.HOUSEHOLD_SPLIT: "世帯分離", ChangeKind.HOUSEHOLD_MERGE: "世帯合併",
    ChangeKind.HEAD_CHANGE: "世帯主変更", ChangeKind.AUTHORITY_ENTRY: "職権記載",
    ChangeKind.AUTHORITY_REMOVAL: "職権消除", ChangeKind.AUTHORITY_CORRECTION: "職権修正",
    ChangeKind.CANCELLATION: "異動の取消",
    ChangeKind.JUMINHYO_CODE_CHANGE: "住民票コードの変更",
}
ADDITIONS = {
    ChangeKind.MOVE_IN, ChangeKind.MOVE_IN_FROM_ABROAD, ChangeKind.SPECIAL_MOVE_IN,
    ChangeKind.BIRTH, ChangeKind.AUTHORITY_ENTRY,
}
REMOVALS = {ChangeKind.MOVE_OUT, ChangeKind.DEATH, ChangeKind.AUTHORITY_REMOVAL}
# A removed record (除票) changes only by correction or by cancelling the change that removed it.
ALLOWED_ON_REMOVED = {ChangeKind.AUTHORITY_CORRECTION, ChangeKind.CANCELLATION}
NOTIFIED_KINDS = {
    ChangeKind.MOVE_IN, ChangeKind.MOVE_IN_FROM_ABROAD, ChangeKind.SPECIAL_MOVE_IN,
    ChangeKind.RELOCATION,
}
# The changes the 14-day notice rule applies to (JR-0415: flagged as late_notice).
LATE_NOTICE_KINDS = frozenset({
    ChangeKind.MOVE_IN, ChangeKind.RELOCATION, ChangeKind.MOVE_IN_FROM_ABROAD,
    ChangeKind.BIRTH, ChangeKind.DEATH,
})
LATE_NOTICE_POLICIES = ("flag", "require_reason")  # JR-0415 switch: standard, deviation
CERTIFICATE_FORMS = ("household", "individual")  # JR-0504 option: 世帯連記式 (default), 個人票
FOREIGN_FIELDS = ("nationality", "residence_status", "period", "expiry", "card_number", "alias",
                  "category")
# 住民票記載事項証明書 (JR-0506): the items that may be certified, by the standard's item names.
# The 個人番号 is not among them.
KISAI_JIKO_ITEMS = (
    "address", "household.head", "person.family_name", "person.given_name",
    "person.family_kana", "person.given_kana", "person.former_surname", "person.birth_date",
    "person.sex", "person.relationship", "person.resident_since", "person.address_since",
    "person.notified_on", "person.previous_address", "person.honseki", "person.hittosha",
    "person.juminhyo_code", "person.nationality", "person.foreign_category",
    "person.residence_status", "person.residence_period", "person.residence_expiry",
    "person.residence_card_number", "person.alias",
)
REQUESTER_KINDS = ("self", "third_party")  # 本人等 (住基法12条), 本人等以外の者 (12条の3)


class Status(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"  # 除票
    VOID = "void"  # created by a change that was later cancelled


@dataclass(frozen=True)
class Address:
    town_code: str  # 町字 ID in the municipality's master
    banchi: str  # 番地 ("1番地2", "3-4")
    katagaki: str = ""  # 方書 (building, room)


@dataclass(frozen=True)
class ForeignStatus:
    nationality: str  # 国籍・地域
    residence_status: str  # 在留資格
    period: str  # 在留期間 ("3年")
    expiry: date  # 在留期間の満了の日
    card_number: str  # 在留カード等の番号
    alias: str = ""  # 通称
    category: str = "中長期在留者"  # 30条の45 の区分


@dataclass(frozen=True)
class Resident:
    id: str
    lgcode: str
    juminhyo_code: str
    family_name: str
    given_name: str
    family_kana: str
    given_kana: str
    birth_date: date
    sex: str
    household_id: str
    relationship: str
    resident_since: date  # 住民となった年月日
    address_since: date  # 住所を定めた年月日
    notified_on: date | None  # 届出の年月日
    status: Status = Status.ACTIVE
    my_number: str | None = None
    former_surname: str = ""  # 旧氏
    honseki: str = ""  # 本籍 (Japanese nationals)
    hittosha: str = ""  # 筆頭者
    previous_address: str = ""  # 前住所
    foreign: ForeignStatus | None = None
    removed_on: date | None = None
    removal_reason: str = ""
    version: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.family_name} {self.given_name}".strip()

    @property
    def full_kana(self) -> str:
        return f"{self.family_kana} {self.given_kana}".strip()

    @property
    def is_head(self) -> bool:
        return self.relationship == HEAD

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    def search_keys(self) -> dict[str, str]:
        return {
            "family_kana_key": fold_kana(self.family_kana),
            "given_kana_key": fold_kana(self.given_kana),
            "full_kana_key": fold_kana(self.family_kana + self.given_kana),
            "family_name_key": fold_kanji(self.family_name),
            "given_name_key": fold_kanji(self.given_name),
            "full_name_key": fold_kanji(self.family_name + self.given_name),
        }


@dataclass(frozen=True)
class Household:
    id: str
    lgcode: str
    address: Address
    head_id: str
    status: Status = Status.ACTIVE
    version: int = 1


@dataclass
class Change:
    """What one change does: the rows it writes, with the rows as they were (for cancelling)."""

    kind: ChangeKind
    occurred_on: date
    notified_on: date | None
    residents: list[Resident] = field(default_factory=list)
    households: list[Household] = field(default_factory=list)
    late_notice: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


# --- validation -------------------------------------------------------------------------------


def _err(errors: list[FieldError], name: str, ja: str, en: str) -> None:
    errors.append(FieldError(name, ja, en))


def validate_person(data: dict[str, Any], today: date, prefix: str = "") -> list[FieldError]:
    """Every error in one person's fields, named (JR-0101: 管理項目)."""
    errors: list[FieldError] = []
    for name, ja in (("family_name", "氏"), ("family_kana", "氏のフリガナ"),
                     ("given_kana", "名のフリガナ")):
        value = data.get(name)
        cleaned = clean_name(value) if isinstance(value, str) else ""
        if not cleaned:
            _err(errors, prefix + name, f"{ja}を入力してください。", f"{name} is required.")
        elif len(cleaned) > 100:
            _err(errors, prefix + name, f"{ja}が長すぎます。", f"{name} is too long.")
        elif name != "family_name" and not is_kana_reading(cleaned):
            _err(errors, prefix + name, "フリガナはカタカナで入力してください。",
                 f"{name} must be written in kana.")
    given = data.get("given_name", "")
    if not isinstance(given, str) or len(given) > 100:
        _err(errors, prefix + "given_name", "名が不正です。", "given_name is invalid.")
    birth = data.get("birth_date")
    if not isinstance(birth, date):
        _err(errors, prefix + "birth_date", "生年月日を正しく入力してください。",
             "birth_date must be a date (YYYY-MM-DD).")
    elif birth > today:
        _err(errors, prefix + "birth_date", "生年月日が未来の日付です。",
             "birth_date is in the future.")
    elif birth.year < 1873:
        _err(errors, prefix + "birth_date", "生年月日が古すぎます。", "birth_date is too early.")
    if data.get("sex") not in SEXES:
        _err(errors, prefix + "sex", "性別は 1(男) か 2(女) です。", "sex must be '1' or '2'.")
    my_number = data.get("my_number")
    if my_number not in (None, "") and not (
        isinstance(my_number, str) and is_valid_my_number(my_number)
    ):
        _err(errors, prefix + "my_number", "個人番号の検査用数字が一致しません。",
             "my_number is not a valid 12-digit 個人番号 (check digit).")
    relationship = data.get("relationship")
    if relationship is not None and relationship not in RELATIONSHIPS:
        _err(errors, prefix + "relationship", "続柄が不正です。", "relationship is not allowed.")
    foreign = data.get("foreign")
    if foreign is not None:
        if not isinstance(foreign, dict):
            _err(errors, prefix + "foreign", "外国人住民の項目が不正です。", "foreign is invalid.")
        else:
            for name in sorted(set(foreign) - set(FOREIGN_FIELDS)):
                _err(errors, f"{prefix}foreign.{name}", "外国人住民の項目にない項目です。",
                     f"foreign.{name} is not an item of a foreign resident.")
            for name in ("nationality", "residence_status", "period", "card_number"):
                value = foreign.get(name)
                if not isinstance(value, str) or not value.strip():
                    _err(errors, f"{prefix}foreign.{name}", "外国人住民の必須項目です。",
                         f"foreign.{name} is required.")
                elif len(value) > 100:
                    _err(errors, f"{prefix}foreign.{name}", "外国人住民の項目が長すぎます。",
                         f"foreign.{name} is too long.")
            for name in ("alias", "category"):
                if not isinstance(foreign.get(name) or "", str):
                    _err(errors, f"{prefix}foreign.{name}", "外国人住民の項目が不正です。",
                         f"foreign.{name} is invalid.")
            if not isinstance(foreign.get("expiry"), date):
                _err(errors, f"{prefix}foreign.expiry", "在留期間の満了日を入力してください。",
                     "foreign.expiry must be a date.")
            if data.get("honseki"):
                _err(errors, prefix + "honseki", "外国人住民に本籍は記載しません。",
                     "foreign residents have no honseki.")
    return errors


def validate_address(
    data: Any, towns: dict[str, str], field_name: str = "address"
) -> list[FieldError]:
    """An address must name a 町字 of the municipality's master (JR-0102)."""
    errors: list[FieldError] = []
    if not isinstance(data, dict):
        return [FieldError(field_name, "住所を入力してください。", f"{field_name} is required.")]
    town = data.get("town_code")
    if not town:
        _err(errors, f"{field_name}.town_code", "町字を選んでください。",
             f"{field_name}.town_code is required.")
    elif town not in towns:
        _err(errors, f"{field_name}.town_code", "町字マスタにない町字です。",
             f"{field_name}.town_code is not in the municipality's 町字 master.")
    banchi = data.get("banchi")
    if not isinstance(banchi, str) or not _BANCHI.match(banchi.strip()):
        _err(errors, f"{field_name}.banchi", "番地を正しく入力してください(例: 1番地2、1-2)。",
             f"{field_name}.banchi must look like '1番地2' or '1-2'.")
    katagaki = data.get("katagaki", "")
    if not isinstance(katagaki, str) or len(katagaki) > 100:
        _err(errors, f"{field_name}.katagaki", "方書が不正です。", "katagaki is invalid.")
    return errors


def require(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors)


def check_lgcode(code: str) -> None:
    if not is_valid_lgcode(code):
        raise ValidationFailed([FieldError(
            "lgcode", "地方公共団体コードが不正です(6桁、検査数字)。",
            "lgcode must be a 6-digit 地方公共団体コード with a valid check digit.")])


def check_juminhyo_code(code: str) -> None:
    if not is_valid_juminhyo_code(code):
        raise ValidationFailed([FieldError(
            "juminhyo_code", "住民票コードが不正です(11桁、検査数字)。",
            "juminhyo_code must be 11 digits with a valid check digit.")])


def parse_address(data: dict[str, Any]) -> Address:
    return Address(
        town_code=str(data["town_code"]),
        banchi=clean_name(str(data["banchi"])),
        katagaki=clean_name(str(data.get("katagaki") or "")),
    )


def parse_foreign(data: dict[str, Any] | None) -> ForeignStatus | None:
    if not data:
        return None
    return ForeignStatus(
        nationality=clean_name(data["nationality"]),
        residence_status=clean_name(data["residence_status"]),
        period=clean_name(data["period"]),
        expiry=data["expiry"],
        card_number=clean_name(data["card_number"]).upper(),
        alias=clean_name(data.get("alias") or ""),
        category=clean_name(data.get("category") or "中長期在留者"),
    )


def build_resident(
    data: dict[str, Any], *, id: str, lgcode: str, juminhyo_code: str, household_id: str,
    relationship: str, resident_since: date, notified_on: date | None,
) -> Resident:
    """A new record from validated input (validate_person first)."""
    return Resident(
        id=id, lgcode=lgcode, juminhyo_code=juminhyo_code,
        family_name=clean_name(data["family_name"]), given_name=clean_name(data.get("given_name") or ""),
        family_kana=fold_kana(data["family_kana"]), given_kana=fold_kana(data["given_kana"]),
        birth_date=data["birth_date"], sex=data["sex"], household_id=household_id,
        relationship=relationship, resident_since=resident_since, address_since=resident_since,
        notified_on=notified_on, my_number=data.get("my_number") or None,
        former_surname=clean_name(data.get("former_surname") or ""),
        honseki=clean_name(data.get("honseki") or ""), hittosha=clean_name(data.get("hittosha") or ""),
        previous_address=clean_name(data.get("previous_address") or ""),
        foreign=parse_foreign(data.get("foreign")),
    )


# --- rules ------------------------------------------------------------------------------------


def is_late_notice(occurred_on: date, notified_on: date | None) -> bool:
    """JR-0415: a notice more than 14 days after the move is flagged (22条・23条), not refused."""
    return notified_on is not None and notified_on - occurred_on > NOTICE_DEADLINE


def check_dates(occurred_on: date, notified_on: date | None, today: date) -> None:
    """A change that has happened cannot be dated in the future, nor notified before today."""
    if occurred_on > today:
        raise RuleViolation("異動日が未来の日付です。", "The change date is in the future.",
                            field="occurred_on")
    if notified_on is not None and notified_on > today:
        raise RuleViolation("届出日が未来の日付です。", "The notice date is in the future.",
                            field="notified_on")


def check_special_move_in(planned_move_out: date, moved_on: date, notified_on: date) -> None:
    """特例転入 (24条の2): within 30 days of the planned move-out and 14 days of moving."""
    if moved_on < planned_move_out - SPECIAL_MOVE_IN_WINDOW or (
        notified_on - planned_move_out > SPECIAL_MOVE_IN_WINDOW
    ):
        raise RuleViolation(
            "転出予定日から30日を過ぎているため特例転入はできません。",
            "A special move-in must follow within 30 days of the planned move-out date.",
            field="occurred_on")
    if notified_on - moved_on > NOTICE_DEADLINE:
        raise RuleViolation(
            "転入した日から14日を過ぎているため特例転入はできません。",
            "A special move-in must be notified within 14 days of moving.",
            field="notified_on")


def ensure_changeable(resident: Resident, kind: ChangeKind) -> None:
    """JR-0416: a removed record changes only by correction or cancellation."""
    if resident.status is Status.VOID:
        raise RuleViolation("取り消された記録です。", "This record was cancelled.",
                            field="resident_id")
    if resident.status is Status.REMOVED and kind not in ALLOWED_ON_REMOVED:
        raise RuleViolation(
            "消除された住民票は修正または取消しでのみ変更できます。",
            "A removed record (除票) changes only by correction or cancellation.",
            field="resident_id")


def ensure_one_head(household: Household, members: list[Resident]) -> None:
    """JR-0417: a household has exactly one head, and it is the household's head_id."""
    active = [m for m in members if m.status is Status.ACTIVE]
    if not active:
        return
    heads = [m for m in active if m.is_head]
    if len(heads) != 1 or heads[0].id != household.head_id:
        raise RuleViolation("世帯には世帯主が1人必要です。",
                            "A household has exactly one head.", field="relationship")


def remove(resident: Resident, on: date, reason: str) -> Resident:
    return replace(resident, status=Status.REMOVED, removed_on=on, removal_reason=reason,
                   version=resident.version + 1)


def correct(resident: Resident, updates: dict[str, Any]) -> Resident:
    """職権修正: only the recorded items may change; identity and status are not corrected here."""
    allowed = {
        "family_name", "given_name", "family_kana", "given_kana", "birth_date", "sex",
        "former_surname", "honseki", "hittosha", "previous_address", "my_number",
        "relationship", "foreign",
    }
    unknown = set(updates) - allowed
    if unknown:
        raise ValidationFailed([FieldError(
            sorted(unknown)[0], "修正できない項目です。", "This item cannot be corrected.")])
    cleaned: dict[str, Any] = {}
    for key, value in updates.items():
        if key == "foreign":  # JR-0422: 在留資格・在留期間・在留カード番号の変更 (validated)
            cleaned[key] = parse_foreign(value)
        elif key in ("family_kana", "given_kana"):
            cleaned[key] = fold_kana(value)
        elif isinstance(value, str) and key not in ("sex", "my_number", "relationship"):
            cleaned[key] = clean_name(value)
        else:
            cleaned[key] = value or (None if key == "my_number" else value)
    return replace(resident, **cleaned, version=resident.version + 1)


def change_juminhyo_code(resident: Resident, new_code: str) -> Resident:
    """住民票コードの変更請求 (JR-0421, 住基法30条の4): a new code, valid and different."""
    if new_code == resident.juminhyo_code or not is_valid_juminhyo_code(new_code):
        raise RuleViolation("新しい住民票コードが不正です。", "The new 住民票コード is not valid.",
                            field="juminhyo_code")
    return replace(resident, juminhyo_code=new_code, version=resident.version + 1)


@dataclass(frozen=True)
class Suppression:
    """支援措置による抑止 (JR-0301..0303): while active, certificates are not issued by the
    normal procedure and staff are warned when they find the resident."""

    id: str
    lgcode: str
    resident_id: str
    reason: str
    starts_on: date
    ends_on: date | None = None
    ended_on: date | None = None

    def active_on(self, day: date) -> bool:
        return (self.ended_on is None and self.starts_on <= day
                and (self.ends_on is None or day <= self.ends_on))


def validate_suppression(data: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(data.get("resident_id"), str) or not data["resident_id"]:
        _err(errors, "resident_id", "対象の住民を選んでください。", "resident_id is required.")
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        _err(errors, "reason", "抑止の理由を入力してください。", "reason is required.")
    elif len(reason.strip()) > 200:
        _err(errors, "reason", "抑止の理由が長すぎます(200文字まで)。", "reason is too long.")
    starts, ends = data.get("starts_on"), data.get("ends_on")
    if not isinstance(starts, date):
        _err(errors, "starts_on", "抑止の開始日を入力してください。",
             "starts_on must be a date (YYYY-MM-DD).")
    if ends is not None and not isinstance(ends, date):
        _err(errors, "ends_on", "抑止の終了予定日が不正です。", "ends_on must be a date (YYYY-MM-DD).")
    elif isinstance(ends, date) and isinstance(starts, date) and ends < starts:
        _err(errors, "ends_on", "終了予定日が開始日より前です。", "ends_on is before starts_on.")
    return errors


def validate_kisai_items(items: Any) -> list[FieldError]:
    """The items a 住民票記載事項証明書 certifies: at least one, each a known item."""
    if not isinstance(items, list) or not items:
        return [FieldError("items", "証明する事項を選んでください。",
                           "items must list at least one item to certify.")]
    return [FieldError(f"items[{i}]", "証明できない事項です。",
                       f"items[{i}] is not an item a 記載事項証明書 can certify.")
            for i, item in enumerate(items) if item not in KISAI_JIKO_ITEMS]


def validate_requester(requester: Any, my_number: bool) -> list[FieldError]:
    """JR-0505: a third party's request names the requester and the purpose; JR-1904: its
    copy never carries the 個人番号."""
    if requester is None:
        return []
    if not isinstance(requester, dict) or requester.get("kind") not in REQUESTER_KINDS:
        return [FieldError("requester.kind", "請求者の区分は self か third_party です。",
                           "requester.kind must be 'self' or 'third_party'.")]
    errors: list[FieldError] = []
    for name, ja in (("name", "申出者の氏名"), ("purpose", "利用目的")):
        value = requester.get(name)
        if value is not None and not isinstance(value, str):
            _err(errors, f"requester.{name}", f"{ja}が不正です。", f"requester.{name} is invalid.")
        elif requester["kind"] == "third_party" and not (value or "").strip():
            _err(errors, f"requester.{name}", f"{ja}を入力してください。",
                 f"requester.{name} is required for a third party's request.")
        elif len((value or "").strip()) > 200:
            _err(errors, f"requester.{name}", f"{ja}が長すぎます。", f"requester.{name} is too long.")
    if requester["kind"] == "third_party" and my_number:
        _err(errors, "my_number", "本人等以外の者の申出による写しには個人番号を記載できません(JR-1904)。",
             "A copy requested by a third party never carries the 個人番号 (JR-1904).")
    return errors


def snapshot(row: Resident | Household) -> dict[str, Any]:
    """A JSON-ready copy of a row, for change history and cancelling."""
    data: dict[str, Any] = _jsonable(asdict(row))
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value


def resident_from_snapshot(data: dict[str, Any]) -> Resident:
    values = dict(data)
    for key in ("birth_date", "resident_since", "address_since", "notified_on", "removed_on"):
        if values.get(key):
            values[key] = date.fromisoformat(values[key])
    values["status"] = Status(values["status"])
    if values.get("foreign"):
        f = dict(values["foreign"])
        f["expiry"] = date.fromisoformat(f["expiry"])
        values["foreign"] = ForeignStatus(**f)
    return Resident(**values)


def household_from_snapshot(data: dict[str, Any]) -> Household:
    values = dict(data)
    values["address"] = Address(**values["address"])
    values["status"] = Status(values["status"])
    return Household(**values)


def age_band(age: int, width: int = 5) -> str:
    if age >= 100:
        return "100+"
    low = age // width * width
    return f"{low}-{low + width - 1}"
