"""Import of income data (所得資料) on SQLite and PostgreSQL: good lines stored, every bad line
reported by line and field and kept for correction, a bad header refusing the whole file, a
repeated import changing nothing, a corrected line replacing its record; the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from assess_kit import FY, officers, residents, service, taxpayers
from sqlalchemy import func, select
from typer.testing import CliRunner

from kiban.cli import app as cli
from kiban.core.errors import ValidationFailed
from kiban.tax import batch_store
from kiban_testkit import LG_A, World

HEADER = ["record_type", "record_id", "payer_number", "payer_name", "juminhyo_code",
          "my_number", "birth_date", "salary_revenue", "pension_revenue", "social_insurance",
          "spouse_birth_date", "spouse_income", "dependants", "collection", "widow"]


def csv_text(rows: list[dict[str, object]], header: list[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture
def people(world: World) -> list[tuple[object, ...]]:
    residents(world, 60)
    return taxpayers(world)


def salary(person: tuple[object, ...], record_id: str = "s1", **values: object
           ) -> dict[str, object]:
    return {"record_type": "salary", "record_id": record_id, "payer_number": "E0000001",
            "payer_name": "株式会社見本", "juminhyo_code": person[1],
            "salary_revenue": 5_000_000, "social_insurance": 750_000, **values}


def count(world: World, table: object) -> int:
    with world.svc.db.tenant(LG_A) as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_good_and_bad_lines(world: World, people: list[tuple[object, ...]]) -> None:
    a, b, c = people[0], people[1], people[2]
    rows: list[dict[str, object]] = [
        salary(a),  # line 2: good
        salary(b, salary_revenue="5,000,000円"),  # line 3: not a number
        salary(c, juminhyo_code="12345678901"),  # line 4: bad check digit
        {"record_type": "bonus", "record_id": "x", "juminhyo_code": a[1]},  # line 5
        salary(b, "s2", dependants="2010-13-01/0/none/1/0", spouse_income="100000"),  # line 6
        salary(a),  # line 7: same key twice in the file
        {"record_type": "pension", "record_id": "p1", "payer_number": "P1",
         "juminhyo_code": c[1], "pension_revenue": 1_800_000, "widow": "yes"},  # line 8: good
        salary(c, "s3", birth_date="1900-01-01"),  # line 9: not this person's birth date
    ]
    report = service(world).import_csv("t", LG_A, FY, io.StringIO(csv_text(rows)), "r.csv")
    assert (report["lines"], report["added"], report["rejected"]) == (8, 2, 6)
    by_line = {e["line"]: {x["field"] for x in e["errors"]} for e in report["errors"]}
    assert by_line == {3: {"salary_revenue"}, 4: {"juminhyo_code"},
                       5: {"record_type"},
                       6: {"dependants[0].birth_date", "spouse_birth_date"}, 7: {"record_id"},
                       9: {"birth_date"}}
    assert count(world, batch_store.income_records) == 2
    # Nothing lost: each bad line is kept with its cells, to be corrected.
    tax_a, _ = officers(world)
    kept = service(world).import_errors(tax_a, LG_A, FY)
    assert [k["line"] for k in kept] == [3, 4, 5, 6, 7, 9]
    assert kept[0]["raw"]["salary_revenue"] == "5,000,000円"


def test_a_bad_header_refuses_the_whole_file(world: World,
                                             people: list[tuple[object, ...]]) -> None:
    for header, field in (([*HEADER, "bonus"], f"header[{len(HEADER)}]"),
                          ([h for h in HEADER if h != "record_type"], "header"),
                          ([h for h in HEADER if h not in ("juminhyo_code", "my_number")],
                           "header")):
        text = csv_text([], header)
        with pytest.raises(ValidationFailed) as refused:
            service(world).import_csv("t", LG_A, FY, io.StringIO(text))
        assert field in {e.field for e in refused.value.errors}
    with pytest.raises(ValidationFailed) as refused:
        service(world).import_csv("t", LG_A, 1999, io.StringIO(csv_text([salary(people[0])])))
    assert refused.value.field == "fiscal_year"
    assert count(world, batch_store.income_records) == 0


def test_reimport_is_idempotent_and_a_changed_line_is_a_correction(
        world: World, people: list[tuple[object, ...]]) -> None:
    rows = [salary(p, f"s{i}") for i, p in enumerate(people[:5])]
    svc = service(world)
    first = svc.import_csv("t", LG_A, FY, io.StringIO(csv_text(rows)))
    again = svc.import_csv("t", LG_A, FY, io.StringIO(csv_text(rows)))
    assert (first["added"], again["added"], again["unchanged"], again["corrected"]) == (5, 0, 5, 0)
    rows[2] = {**rows[2], "salary_revenue": 6_000_000}
    fixed = svc.import_csv("t", LG_A, FY, io.StringIO(csv_text(rows)))
    assert (fixed["corrected"], fixed["unchanged"]) == (1, 4)
    assert count(world, batch_store.income_records) == 5


def test_a_corrected_bad_line_is_marked_resolved(world: World,
                                                 people: list[tuple[object, ...]]) -> None:
    tax_a, _ = officers(world)
    svc = service(world)
    bad = salary(people[0], salary_revenue="abc")
    svc.import_csv("t", LG_A, FY, io.StringIO(csv_text([bad])))
    assert len(svc.import_errors(tax_a, LG_A, FY)) == 1
    svc.import_csv("t", LG_A, FY, io.StringIO(csv_text([{**bad, "salary_revenue": 4_000_000}])))
    assert svc.import_errors(tax_a, LG_A, FY) == []


def test_someone_not_resident_on_january_1_is_a_bad_line(
        world: World, people: list[tuple[object, ...]]) -> None:
    from kiban.core.checkdigits import with_check_digit
    stranger = with_check_digit("9999999999", "juminhyo")
    report = service(world).import_csv("t", LG_A, FY, io.StringIO(csv_text(
        [salary(people[0], juminhyo_code=stranger)])))
    assert report["rejected"] == 1
    assert report["errors"][0]["errors"][0]["field"] == "juminhyo_code"


def test_cli_import_reports_bad_lines(world: World, people: list[tuple[object, ...]],
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in (("KIBAN_DATABASE_URL", world.backend.settings.database_url),
                       ("KIBAN_DATABASE_ADMIN_URL", world.backend.settings.admin_database_url),
                       ("KIBAN_MODE", "test")):
        monkeypatch.setenv(key, value)
    path = tmp_path / "income.csv"
    path.write_text(csv_text([salary(people[0]), salary(people[1], salary_revenue="-1")]),
                    encoding="utf-8")
    errors = tmp_path / "errors.json"
    result = CliRunner().invoke(cli, ["tax", "import", "--lgcode", LG_A, "--year", str(FY),
                                      str(path), "--errors", str(errors)])
    assert result.exit_code == 1, result.output
    assert "line 3: salary_revenue" in result.output
    assert json.loads(errors.read_text(encoding="utf-8"))[0]["line"] == 3
    good = tmp_path / "good.csv"
    good.write_text(csv_text([salary(people[0])]), encoding="utf-8")
    result = CliRunner().invoke(cli, ["tax", "import", "--lgcode", LG_A, "--year", str(FY),
                                      str(good)])
    assert result.exit_code == 0 and '"unchanged": 1' in result.output
