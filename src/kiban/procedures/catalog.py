"""The procedure catalog (手続カタログ) as data: one YAML file per procedure in `catalog/`,
checked against `catalog/entry.schema.json` when loaded. Pure: no storage, no web.

To add a procedure, add `catalog/<id>.yaml` (see docs/procedures.md); nothing else changes.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CATALOG_DIR = Path(__file__).parent / "catalog"
ENTRY_SCHEMA = CATALOG_DIR / "entry.schema.json"
TRIGGERS = ("move_in", "birth")


class CatalogError(Exception):
    """A catalog file that is not a valid entry (named, with the failing path)."""


@dataclass(frozen=True)
class Evidence:
    """A data item obtained through the exchange hub instead of an attachment."""

    item: str            # e.g. "jumin/household-composition"
    source: str          # the provider member, `*` for the applicant's municipality
    legal_basis: str

    def provider_for(self, lgcode: str) -> str:
        return self.source.replace("*", lgcode)

    def as_json(self) -> dict[str, str]:
        return {"item": self.item, "source": self.source, "legal_basis": self.legal_basis}


@dataclass(frozen=True)
class Procedure:
    id: str
    name_ja: str
    name_en: str
    department: str
    applicants: tuple[str, ...]
    form_schema: dict[str, Any]
    fee: int
    evidence: tuple[Evidence, ...]
    steps: tuple[str, ...]
    legal_basis: str
    triggered_by: tuple[str, ...]
    on_approve: str | None
    delivers: str | None = None

    def __hash__(self) -> int:  # form_schema is a dict: hash by identity of the id
        return hash(self.id)

    def fields(self) -> list[dict[str, Any]]:
        """The form's fields in order, each with its name and whether it is required."""
        required = set(self.form_schema.get("required", []))
        return [{"name": name, "required": name in required, **spec}
                for name, spec in self.form_schema["properties"].items()]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name_ja": self.name_ja, "name_en": self.name_en,
                "department": self.department, "applicants": list(self.applicants),
                "form_schema": self.form_schema, "fee": self.fee,
                "evidence": [e.as_json() for e in self.evidence], "steps": list(self.steps),
                "legal_basis": self.legal_basis, "triggered_by": list(self.triggered_by),
                "on_approve": self.on_approve, "delivers": self.delivers}


@functools.cache
def entry_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(ENTRY_SCHEMA.read_text(encoding="utf-8"))
    return schema


def validate_entry(entry: Any, name: str = "<entry>") -> None:
    """CatalogError unless `entry` is a valid catalog entry whose form schema is itself a valid
    JSON Schema."""
    validator = jsonschema.Draft202012Validator(entry_schema())
    errors = sorted(validator.iter_errors(entry), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise CatalogError(f"{name}: {where}: {first.message}")
    try:
        jsonschema.Draft202012Validator.check_schema(entry["form_schema"])
    except jsonschema.SchemaError as exc:
        raise CatalogError(f"{name}: form_schema: {exc.message}") from exc
    for field in entry["form_schema"].get("required", []):
        if field not in entry["form_schema"]["properties"]:
            raise CatalogError(f"{name}: form_schema: required field {field} is not defined")


def parse_entry(entry: dict[str, Any]) -> Procedure:
    return Procedure(
        id=entry["id"], name_ja=entry["name_ja"], name_en=entry["name_en"],
        department=entry["department"], applicants=tuple(entry["applicants"]),
        form_schema=entry["form_schema"], fee=int(entry["fee"]),
        evidence=tuple(Evidence(e["item"], e["source"], e["legal_basis"]) for e in entry["evidence"]),
        steps=tuple(entry["steps"]), legal_basis=entry["legal_basis"],
        triggered_by=tuple(entry["triggered_by"]), on_approve=entry.get("on_approve"),
        delivers=entry.get("delivers"))


def load_catalog(directory: Path | None = None) -> dict[str, Procedure]:
    """Every procedure, by id (cached for the packaged catalog). CatalogError on a bad file."""
    if directory is None:
        return dict(_packaged())
    return _load(directory)


@functools.cache
def _packaged() -> dict[str, Procedure]:
    return _load(CATALOG_DIR)


def _load(directory: Path) -> dict[str, Procedure]:
    found: dict[str, Procedure] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            entry = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CatalogError(f"{path.name}: not YAML: {exc}") from exc
        validate_entry(entry, path.name)
        if entry["id"] != path.stem:
            raise CatalogError(f"{path.name}: id {entry['id']} differs from the file name")
        found[entry["id"]] = parse_entry(entry)
    return found


def triggered_by(event: str) -> list[Procedure]:
    """The procedures a life event ('move_in' or 'birth') makes the household need."""
    if event not in TRIGGERS:
        raise ValueError(f"unknown life event {event}")
    return [p for p in _packaged().values() if event in p.triggered_by]


def form_errors(procedure: Procedure, data: Any) -> list[tuple[str, str, str]]:
    """(field, ja, en) for each way `data` fails the procedure's form schema; [] when valid."""
    if not isinstance(data, dict):
        return [("form", "入力内容が不正です。", "The form data must be an object.")]
    validator = _validator(procedure.id, procedure.form_schema)
    props = procedure.form_schema["properties"]
    out: list[tuple[str, str, str]] = []
    for err in validator.iter_errors(data):
        if err.validator == "required":
            name = str(err.message.split("'")[1]) if "'" in err.message else "form"
            label = props.get(name, {})
            out.append((name, f"{label.get('title', name)}を入力してください。",
                        f"{label.get('title_en', name)} is required."))
            continue
        if err.validator == "additionalProperties":
            out.append(("form", "不明な項目が含まれています。", "Unknown fields were sent."))
            continue
        name = str(err.absolute_path[0]) if err.absolute_path else "form"
        label = props.get(name, {})
        title, title_en = label.get("title", name), label.get("title_en", name)
        ja, en = _message(err.validator, label, title, title_en)
        out.append((name, ja, en))
    seen: set[str] = set()
    unique = []
    for item in out:
        if item[0] not in seen:
            seen.add(item[0])
            unique.append(item)
    return unique


_VALIDATORS: dict[tuple[str, int], Any] = {}


def _validator(procedure_id: str, schema: dict[str, Any]) -> Any:
    key = (procedure_id, id(schema))
    found = _VALIDATORS.get(key)
    if found is None:
        found = _VALIDATORS[key] = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    return found


def _message(kind: Any, spec: dict[str, Any], title: str, title_en: str) -> tuple[str, str]:
    if kind == "type":
        word = {"integer": ("整数", "a whole number"), "boolean": ("はい/いいえ", "yes or no")}.get(
            spec.get("type", ""), ("文字列", "text"))
        return f"{title}は{word[0]}で入力してください。", f"{title_en} must be {word[1]}."
    if kind in ("minLength",):
        return f"{title}を入力してください。", f"{title_en} is required."
    if kind in ("maxLength",):
        return (f"{title}は{spec.get('maxLength')}文字以内で入力してください。",
                f"{title_en} must be at most {spec.get('maxLength')} characters.")
    if kind in ("minimum", "maximum"):
        return (f"{title}は{spec.get('minimum')}から{spec.get('maximum')}の範囲で入力してください。",
                f"{title_en} must be between {spec.get('minimum')} and {spec.get('maximum')}.")
    if kind == "enum":
        return f"{title}を選択肢から選んでください。", f"Choose {title_en} from the list."
    if kind == "format":
        return (f"{title}は YYYY-MM-DD の形式で入力してください。",
                f"{title_en} must be a date (YYYY-MM-DD).")
    if kind == "pattern":
        return f"{title}の形式が正しくありません。", f"{title_en} has the wrong format."
    return f"{title}の入力が不正です。", f"{title_en} is invalid."
