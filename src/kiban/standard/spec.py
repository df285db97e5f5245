"""Loading, validating and cross-checking the standard's spec files (specs/*.yaml).

Pure: PyYAML and jsonschema only, so the conformance kit can ship it without the server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

SPECS = Path(__file__).parent / "specs"
KINDS = {"mandatory": "実装必須", "option": "標準オプション", "not_allowed": "実装不可"}


@dataclass(frozen=True)
class Option:
    setting: str
    choices: tuple[str, ...]
    default: str
    not_allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Switch:
    setting: str
    standard: str
    deviations: tuple[str, ...]


@dataclass(frozen=True)
class Requirement:
    id: str
    domain: str
    title: str
    text: str
    kind: str
    section: str
    legal_basis: tuple[tuple[str, str], ...]
    ministry: str
    since: str
    forms: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    option: Option | None = None
    switch: Switch | None = None

    @property
    def kind_label(self) -> str:
        return KINDS[self.kind]


@dataclass(frozen=True)
class Spec:
    name: str
    version: str
    changelog: tuple[dict[str, Any], ...]
    requirements: dict[str, Requirement]
    items: dict[str, dict[str, Any]]
    code_lists: dict[str, dict[str, str]]
    forms: dict[str, dict[str, Any]]
    sources: tuple[str, ...] = field(default_factory=tuple)

    def domain(self, name: str) -> list[Requirement]:
        return [r for r in self.requirements.values() if r.domain == name]

    def options(self) -> dict[str, Requirement]:
        """Setting name -> the requirement that offers it."""
        return {r.option.setting: r for r in self.requirements.values() if r.option}

    def switches(self) -> dict[str, Requirement]:
        return {r.switch.setting: r for r in self.requirements.values() if r.switch}


class SpecError(ValueError):
    """A spec file that does not validate, with every problem listed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def schema() -> dict[str, Any]:
    return dict(json.loads((SPECS / "schema.json").read_text(encoding="utf-8")))


def validate_files(directory: Path = SPECS) -> list[str]:
    """Schema problems of every spec file, as "file: path: message"."""
    validator = Draft202012Validator(schema())
    problems = []
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for error in sorted(validator.iter_errors(data), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.path) or "(top)"
            problems.append(f"{path.name}: {where}: {error.message}")
    return problems


def load(directory: Path = SPECS) -> Spec:
    problems = validate_files(directory)
    if problems:
        raise SpecError(problems)
    standard: dict[str, Any] = {}
    items: dict[str, dict[str, Any]] = {}
    code_lists: dict[str, dict[str, str]] = {}
    forms: dict[str, dict[str, Any]] = {}
    requirements: dict[str, Requirement] = {}
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "standard" in data:
            standard = data["standard"]
        items.update({i["id"]: i for i in data.get("items", [])})
        code_lists.update({k: {str(c): str(v) for c, v in codes.items()}
                           for k, codes in data.get("code_lists", {}).items()})
        for form in data.get("forms", []):
            forms[form["id"]] = form
        for r in data.get("requirements", []):
            if r["id"] in requirements:
                raise SpecError([f"{path.name}: {r['id']} is defined twice"])
            requirements[r["id"]] = Requirement(
                id=r["id"], domain=data["domain"], title=r["title"], text=r["text"],
                kind=r["kind"], section=r["section"],
                legal_basis=tuple((b["law"], b["article"]) for b in r["legal_basis"]),
                ministry=r["ministry"], since=r["since"], forms=tuple(r.get("forms", [])),
                items=tuple(r.get("items", [])), tests=tuple(r.get("tests", [])),
                option=Option(r["option"]["setting"], tuple(r["option"]["choices"]),
                              r["option"]["default"], tuple(r["option"].get("not_allowed", [])))
                if "option" in r else None,
                switch=Switch(r["switch"]["setting"], r["switch"]["standard"],
                              tuple(r["switch"]["deviations"])) if "switch" in r else None)
    return Spec(name=standard.get("name", ""), version=standard.get("version", "0.0.0"),
                changelog=tuple(standard.get("changelog", [])), requirements=requirements,
                items=items, code_lists=code_lists, forms=forms,
                sources=tuple(standard.get("sources", [])))


@cache
def current() -> Spec:
    """The spec shipped with this version of Kiban."""
    return load()


def lint(spec: Spec, implemented_tests: dict[str, tuple[str, ...]]) -> list[str]:
    """Cross-reference problems: `implemented_tests` maps each conformance test the kit has to
    the requirements it cites."""
    problems = []
    cited_by_tests: dict[str, set[str]] = {}
    for test_id, cites in sorted(implemented_tests.items()):
        if not cites:
            problems.append(f"{test_id}: the test cites no requirement")
        for rid in cites:
            if rid not in spec.requirements:
                problems.append(f"{test_id}: cites {rid}, which the spec does not define")
            cited_by_tests.setdefault(rid, set()).add(test_id)
    for r in spec.requirements.values():
        for test_id in r.tests:
            if test_id not in implemented_tests:
                problems.append(f"{r.id}: names test {test_id}, which the kit does not have")
            elif r.id not in implemented_tests[test_id]:
                problems.append(f"{r.id}: names test {test_id}, which does not cite it")
        if r.kind in ("mandatory", "not_allowed") and not (set(r.tests) | cited_by_tests.get(
                r.id, set())):
            problems.append(f"{r.id}: a {r.kind} requirement has no conformance test")
        for item in r.items:
            if item not in spec.items:
                problems.append(f"{r.id}: names item {item}, which items.yaml does not define")
        for form in r.forms:
            if form not in spec.forms:
                problems.append(f"{r.id}: names form {form}, which no spec file defines")
        if _version(r.since) > _version(spec.version):
            problems.append(f"{r.id}: introduced in {r.since}, after this version {spec.version}")
        if r.option and r.option.default not in r.option.choices:
            problems.append(f"{r.id}: the option's default is not one of its choices")
        if r.option and r.kind != "option":
            problems.append(f"{r.id}: only a standard option (kind: option) offers choices")
        if r.switch and r.kind != "mandatory":
            problems.append(f"{r.id}: a behaviour switch belongs to a mandatory requirement")
    for form_def in spec.forms.values():
        for entry in form_def["items"]:
            if entry["item"] not in spec.items:
                problems.append(f"{form_def['id']}: names item {entry['item']}, which items.yaml "
                                "does not define")
    for defined in spec.items.values():
        if defined.get("code_list") and defined["code_list"] not in spec.code_lists:
            problems.append(f"{defined['id']}: names code list {defined['code_list']}, undefined")
    versions = [_version(c["version"]) for c in spec.changelog]
    if versions != sorted(versions):
        problems.append("standard.yaml: the changelog is not in version order")
    if not versions or versions[-1] != _version(spec.version):
        problems.append("standard.yaml: the last changelog entry is not the current version")
    return problems


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))
