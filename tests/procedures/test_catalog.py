"""The procedure catalog: every entry valid against the entry schema (issue 7 part 1)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from kiban.procedures import catalog
from kiban.procedures.catalog import CatalogError, load_catalog, validate_entry

REQUIRED = {"juminhyo-request", "tax-certificate-request", "tenshutsu", "jido-teate",
            "kokuho-enrolment", "school-transfer", "inquiry"}


@pytest.mark.parametrize("path", sorted(catalog.CATALOG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_entry_is_valid_against_the_schema(path: Path) -> None:
    entry = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(catalog.entry_schema()).validate(entry)
    jsonschema.Draft202012Validator.check_schema(entry["form_schema"])
    validate_entry(entry, path.name)
    assert entry["id"] == path.stem


def test_the_catalog_holds_the_required_procedures() -> None:
    procs = load_catalog()
    assert REQUIRED <= set(procs)
    assert procs["tenshutsu"].on_approve == "move_out"
    jido = procs["jido-teate"]
    assert set(jido.triggered_by) == {"move_in", "birth"}
    assert "zeimu/income-certificate" in {e.item for e in jido.evidence}
    assert set(procs["kokuho-enrolment"].triggered_by) == {"move_in", "birth"}
    assert procs["school-transfer"].triggered_by == ("move_in",)
    assert {p.id for p in catalog.triggered_by("birth")} >= {"jido-teate", "kokuho-enrolment"}
    for proc in procs.values():
        assert isinstance(proc.fee, int) and proc.legal_basis and proc.steps
        assert all(e.legal_basis for e in proc.evidence)
        hash(proc)


def test_a_bad_entry_is_refused_with_its_path(tmp_path: Path) -> None:
    good = yaml.safe_load((catalog.CATALOG_DIR / "inquiry.yaml").read_text(encoding="utf-8"))
    bad = {**good, "fee": "free"}
    (tmp_path / "inquiry.yaml").write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError, match="fee"):
        load_catalog(tmp_path)
    wrong_id = {**good, "id": "other"}
    (tmp_path / "inquiry.yaml").write_text(yaml.safe_dump(wrong_id, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError, match="file name"):
        load_catalog(tmp_path)
    missing = {**good, "form_schema": {**good["form_schema"], "required": ["nope"]}}
    with pytest.raises(CatalogError, match="nope"):
        validate_entry(missing)


def test_form_errors_name_each_field() -> None:
    proc = load_catalog()["juminhyo-request"]
    errors = catalog.form_errors(proc, {"scope": "everyone", "copies": 9})
    assert {e[0] for e in errors} == {"purpose", "scope", "copies"}
    assert catalog.form_errors(proc, {"purpose": "就職", "scope": "self", "copies": 1}) == []
