"""The spec files: valid against their schema, cross-references whole, at the granularity of
the national standard; and the linter catches what it should."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from kiban.cli import app
from kiban.standard import spec as spec_module
from kiban.standard.kit import core


def test_spec_files_validate_and_cross_reference() -> None:
    assert spec_module.validate_files() == []
    spec = spec_module.load()
    assert spec_module.lint(spec, core.implemented()) == []
    assert len(spec.domain("registry")) >= 40 and len(spec.domain("tax")) >= 30
    for r in spec.requirements.values():
        assert r.ministry and r.text.strip(), r.id
        if r.kind == "mandatory":
            assert r.legal_basis, r.id
    # Shared items are defined once, with one owner, and the tax domain uses the registry's.
    shared = [i for i in spec.items.values() if "tax" in i.get("used_by", [])]
    assert shared and all(i["owner"] == "registry" for i in shared)
    assert spec.options() and spec.switches()["late_notice_policy"].id == "JR-0415"


def test_kiban_standard_lint_command() -> None:
    result = CliRunner().invoke(app, ["standard", "lint"])
    assert result.exit_code == 0, result.output
    assert "conformance tests" in result.output and ": ok" in result.output


def _broken_copy(tmp_path: Path) -> Path:
    target = tmp_path / "specs"
    shutil.copytree(spec_module.SPECS, target)
    registry = target / "registry.yaml"
    data = yaml.safe_load(registry.read_text(encoding="utf-8"))
    first_mandatory = next(r for r in data["requirements"] if r["kind"] == "mandatory")
    first_mandatory["tests"] = []
    data["requirements"].append({**first_mandatory, "id": "JR-0999", "tests": ["CT-REG-999"],
                                 "since": "9.0.0", "items": ["person.shoe_size"]})
    registry.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return target


def test_lint_names_each_broken_reference(tmp_path: Path) -> None:
    target = _broken_copy(tmp_path)
    spec = spec_module.load(target)
    implemented = dict(core.implemented())
    cited = next(r for r in spec.requirements.values() if r.kind == "mandatory" and not r.tests)
    # Drop every test that cites it, so that it has none at all.
    implemented = {t: c for t, c in implemented.items() if cited.id not in c}
    implemented["CT-REG-998"] = ()
    problems = "\n".join(spec_module.lint(spec, implemented))
    assert f"{cited.id}: a mandatory requirement has no conformance test" in problems
    assert "JR-0999: names test CT-REG-999, which the kit does not have" in problems
    assert "JR-0999: introduced in 9.0.0" in problems
    assert "JR-0999: names item person.shoe_size" in problems
    assert "CT-REG-998: the test cites no requirement" in problems


def test_schema_refuses_malformed_files(tmp_path: Path) -> None:
    target = tmp_path / "specs"
    shutil.copytree(spec_module.SPECS, target)
    registry = target / "registry.yaml"
    data = yaml.safe_load(registry.read_text(encoding="utf-8"))
    data["requirements"][0]["kind"] = "nice_to_have"
    del data["requirements"][1]["legal_basis"]
    registry.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    problems = spec_module.validate_files(target)
    assert any("requirements/0/kind" in p for p in problems)
    assert any("requirements/1" in p and "legal_basis" in p for p in problems)
