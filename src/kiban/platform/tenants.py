"""Municipalities (tenants): one deployment serves many, each with its own settings and
町字 master. A municipality is identified by its 6-digit 地方公共団体コード."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from kiban.core.checkdigits import is_valid_lgcode
from kiban.core.errors import Conflict, FieldError, NotFound, RuleViolation, ValidationFailed
from kiban.core.text import clean_name
from kiban.platform import ledger
from kiban.platform.db import Database
from kiban.platform.tables import municipalities, towns

# Settings a municipality may choose: the options the standard allows, nothing else.
DEFAULT_SETTINGS: dict[str, Any] = {
    "certificate_issuer_title": "市長",  # 証明書の認証者の職名
    "certificate_issuer_name": "",
    "certificate_fee": 300,  # 手数料 (yen), recorded with each certificate issued
}
SETTING_TYPES: dict[str, type] = {
    "certificate_issuer_title": str, "certificate_issuer_name": str,
    "certificate_fee": int,
}


def check_lgcode(code: str) -> None:
    if not isinstance(code, str) or not is_valid_lgcode(code):
        raise ValidationFailed([FieldError(
            "lgcode", "地方公共団体コードが不正です(6桁、最後の1桁は検査数字)。",
            "lgcode must be a 6-digit 地方公共団体コード whose last digit is its check digit.")])


# Checks the settings that the standard defines (its options and behaviour switches): returns
# the errors, naming the requirement; `by_deviation` is True only when a recorded deviation
# sets a switch. Supplied by kiban.standard, which the platform does not import.
StandardSettings = Callable[[dict[str, Any], bool], builtins.list[FieldError]]


def validate_settings(values: dict[str, Any], standard: StandardSettings | None = None,
                      by_deviation: bool = False) -> dict[str, Any]:
    errors = []
    ours = {k: v for k, v in values.items() if k in SETTING_TYPES}
    if standard is not None:
        errors.extend(standard({k: v for k, v in values.items() if k not in SETTING_TYPES},
                               by_deviation))
    for key, value in (ours.items() if standard is not None else values.items()):
        kind = SETTING_TYPES.get(key)
        if kind is None:
            errors.append(FieldError(f"settings.{key}", "設定できない項目です。",
                                     f"{key} is not a municipality setting."))
        elif not isinstance(value, kind) or isinstance(value, bool):
            errors.append(FieldError(f"settings.{key}", "設定値の型が不正です。",
                                     f"{key} must be {kind.__name__}."))
        elif isinstance(value, int) and not 0 <= value <= 100000:
            errors.append(FieldError(f"settings.{key}", "設定値が範囲外です。",
                                     f"{key} is out of range."))
    if errors:
        raise ValidationFailed(errors)
    return values


class Municipalities:
    def __init__(self, db: Database, standard: StandardSettings | None = None) -> None:
        self.db = db
        self.standard = standard

    def create(self, lgcode: str, name: str, prefecture: str, at: datetime,
               name_kana: str = "", actor: str = "system", purpose: str = "") -> dict[str, Any]:
        check_lgcode(lgcode)
        errors = []
        if not clean_name(name or ""):
            errors.append(FieldError("name", "団体名を入力してください。", "name is required."))
        if not clean_name(prefecture or ""):
            errors.append(FieldError("prefecture", "都道府県名を入力してください。",
                                     "prefecture is required."))
        if errors:
            raise ValidationFailed(errors)
        with self.db.tenant(lgcode) as conn:  # the row and its genesis entry together
            if conn.execute(select(municipalities.c.lgcode)
                            .where(municipalities.c.lgcode == lgcode)).first():
                raise Conflict("この地方公共団体は登録済みです。",
                               "This municipality is already registered.", field="lgcode")
            row = {"lgcode": lgcode, "name": clean_name(name), "prefecture": clean_name(prefecture),
                   "name_kana": clean_name(name_kana), "settings": dict(DEFAULT_SETTINGS),
                   "created_at": at, "status": "active", "purpose": purpose}
            conn.execute(insert(municipalities).values(**row))
            ledger.append(conn, lgcode, "municipality.created", lgcode,
                          {"name": row["name"], "prefecture": row["prefecture"]}, actor, at)
        return row

    def list(self, include_retired: bool = False) -> builtins.list[dict[str, Any]]:
        query = select(municipalities).order_by(municipalities.c.lgcode)
        if not include_retired:
            query = query.where(municipalities.c.status == "active")
        with self.db.platform() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def retire(self, lgcode: str, at: datetime, actor: str) -> None:
        """Closes a throwaway municipality of the conformance kit. A real municipality is never
        retired this way: its records and ledger chain stay (a merger is its own procedure)."""
        with self.db.tenant(lgcode) as conn:
            row = self.get_in(conn, lgcode)
            if row["purpose"] != "conformance":
                raise RuleViolation("適合性検査用の団体だけを廃止できます。",
                                    "Only a conformance-test municipality can be retired.",
                                    field="lgcode")
            conn.execute(update(municipalities).where(municipalities.c.lgcode == lgcode)
                         .values(status="retired"))
            ledger.append(conn, lgcode, "municipality.retired", lgcode, {}, actor, at)

    def get(self, lgcode: str) -> dict[str, Any]:
        with self.db.platform() as conn:
            return self.get_in(conn, lgcode)

    @staticmethod
    def get_in(conn: Connection, lgcode: str) -> dict[str, Any]:
        row = conn.execute(select(municipalities)
                           .where(municipalities.c.lgcode == lgcode)).first()
        if row is None:
            raise NotFound("地方公共団体が見つかりません。", "Municipality not found.")
        data = dict(row._mapping)
        data["settings"] = {**DEFAULT_SETTINGS, **(data["settings"] or {})}
        return data

    def update_settings(self, lgcode: str, values: dict[str, Any], at: datetime,
                        actor: str, by_deviation: bool = False) -> dict[str, Any]:
        validate_settings(values, self.standard, by_deviation)
        with self.db.tenant(lgcode) as conn:
            current = self.get_in(conn, lgcode)["settings"]
            merged = {**current, **values}
            conn.execute(update(municipalities).where(municipalities.c.lgcode == lgcode)
                         .values(settings=merged))
            ledger.append(conn, lgcode, "municipality.settings", lgcode, values, actor, at)
        return merged

    # --- 町字 master -----------------------------------------------------------------------

    def set_towns(self, lgcode: str, rows: builtins.list[dict[str, str]], at: datetime,
                  actor: str) -> int:
        errors = []
        seen: set[str] = set()
        for i, row in enumerate(rows):
            code, name = str(row.get("code", "")).strip(), clean_name(str(row.get("name", "")))
            if not code or not code.isdigit() or len(code) > 12 or code in seen:
                errors.append(FieldError(f"towns[{i}].code", "町字コードが不正か重複しています。",
                                         "town code is missing, not digits, or repeated."))
            if not name:
                errors.append(FieldError(f"towns[{i}].name", "町字名を入力してください。",
                                         "town name is required."))
            seen.add(code)
        if errors:
            raise ValidationFailed(errors)
        with self.db.tenant(lgcode) as conn:
            self.get_in(conn, lgcode)
            conn.execute(delete(towns).where(towns.c.lgcode == lgcode))
            if rows:
                conn.execute(insert(towns), [
                    {"lgcode": lgcode, "code": str(r["code"]).strip(),
                     "name": clean_name(str(r["name"])),
                     "name_kana": clean_name(str(r.get("name_kana", ""))),
                     "postcode": str(r.get("postcode", ""))} for r in rows])
            ledger.append(conn, lgcode, "towns.replaced", lgcode, {"count": len(rows)}, actor, at)
        return len(rows)

    @staticmethod
    def towns_in(conn: Connection, lgcode: str) -> dict[str, str]:
        return {r.code: r.name for r in conn.execute(
            select(towns.c.code, towns.c.name).where(towns.c.lgcode == lgcode)
            .order_by(towns.c.code))}

    def towns(self, lgcode: str) -> dict[str, str]:
        with self.db.tenant(lgcode) as conn:
            return self.towns_in(conn, lgcode)
