"""`kiban registry ...`: the registry from the command line, acting as a named staff member."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from kiban.clikit import acting, fail, out
from kiban.core.errors import KibanError

app = typer.Typer(help="住民記録: residents, changes, certificates.", no_args_is_help=True)

CHANGES = {
    "move-in": "move_in", "special-move-in": "special_move_in", "relocation": "relocate",
    "move-out": "move_out", "birth": "birth", "death": "death",
    "household-split": "split_household", "household-merge": "merge_households",
    "head-change": "change_head", "authority-removal": "authority_removal",
    "correction": "correct", "cancellation": "cancel",
}
As = Annotated[str, typer.Option("--as", help="staff username the action is recorded under")]


@app.command("change")
def change(kind: Annotated[str, typer.Argument(help=", ".join(CHANGES))], lgcode: str,
           data_file: Path, username: As) -> None:
    """Record a change (異動) from a JSON file shaped like the API's request body."""
    if kind not in CHANGES and kind != "authority-entry":
        typer.echo(f"error: unknown change {kind}", err=True)
        raise typer.Exit(2)
    svc, member = acting(username)
    data = json.loads(data_file.read_text(encoding="utf-8"))
    if kind == "authority-entry":
        data["authority"] = True
    try:
        out(getattr(svc.registry, CHANGES.get(kind, "move_in"))(member, lgcode, data))
    except KibanError as exc:
        fail(exc)


@app.command("search")
def search(lgcode: str, username: As, name: str = "", birth_date: str = "",
           juminhyo_code: str = "", include_removed: bool = False, page: int = 1) -> None:
    """Find residents by name (kanji or kana), date of birth or 住民票コード."""
    from datetime import date

    svc, member = acting(username)
    try:
        result = svc.registry.search(
            member, lgcode, name=name or None,
            birth_date=date.fromisoformat(birth_date) if birth_date else None,
            juminhyo_code=juminhyo_code or None, include_removed=include_removed, page=page)
    except KibanError as exc:
        fail(exc)
    for r in result["items"]:
        typer.echo(f"{r['id']}\t{r['full_name']}\t{r['full_kana']}\t{r['birth_date']}\t"
                   f"{(r['address'] or {}).get('text', '')}\t{r['status']}")
    typer.echo(f"{result['total']} found", err=True)


@app.command("show")
def show(lgcode: str, resident_id: str, username: As) -> None:
    svc, member = acting(username)
    try:
        out(svc.registry.get(member, lgcode, resident_id))
    except KibanError as exc:
        fail(exc)


@app.command("certificate")
def certificate(lgcode: str, resident_ids: list[str], username: As,
                output: Annotated[Path, typer.Option("-o")] = Path("juminhyo.pdf"),
                form: str = "household", kind: str = "juminhyo",
                honseki: bool = False, juminhyo_code: bool = False,
                my_number: bool = False, head_and_relationship: bool = True) -> None:
    """Issue a 住民票の写し (or 除票の写し with --kind joshu) as PDF."""
    svc, member = acting(username)
    try:
        serial, pdf = svc.registry.issue_certificate(member, lgcode, {
            "resident_ids": resident_ids, "form": form, "kind": kind, "honseki": honseki,
            "juminhyo_code": juminhyo_code, "my_number": my_number,
            "head_and_relationship": head_and_relationship})
    except KibanError as exc:
        fail(exc)
    output.write_bytes(pdf)
    typer.echo(f"{serial} -> {output}")


# --- migration (docs/migration-format.md) -----------------------------------------------------

Format = Annotated[str, typer.Option("--format", help="jsonl or csv")]


@app.command("export")
def export(lgcode: str, file: Annotated[Path, typer.Argument(help="output file, or - for stdout")],
           username: As, fmt: Format = "jsonl") -> None:
    """Export the whole registry (除票 included) in the standard migration format."""
    import os
    import sys

    from kiban.registry.migration import RegistryMigration

    svc, member = acting(username)
    migration = RegistryMigration(svc.db, svc.clock)
    try:
        if str(file) == "-":
            count = migration.export(member, lgcode, sys.stdout, fmt)
        else:
            # Written aside and renamed: a refused or failed export leaves no partial file of
            # personal data behind.
            part = file.with_name(file.name + ".part")
            try:
                with part.open("w", encoding="utf-8", newline="") as out_file:
                    count = migration.export(member, lgcode, out_file, fmt)
                os.replace(part, file)
            finally:
                part.unlink(missing_ok=True)
    except KibanError as exc:
        fail(exc)
    typer.echo(f"exported {count} residents of {lgcode} to {file}", err=True)


@app.command("import")
def import_(lgcode: str, file: Annotated[Path, typer.Argument(help="input file, or - for stdin")],
            username: As, fmt: Format = "jsonl",
            partial: Annotated[bool, typer.Option(
                "--partial", help="import the valid households, skip the others")] = False,
            validate_only: Annotated[bool, typer.Option(
                "--validate-only", help="check the file, write nothing")] = False,
            from_lgcode: Annotated[str | None, typer.Option(
                "--from-lgcode", help="accept a file exported by this other municipality")]
            = None) -> None:
    """Import a migration file: all-or-nothing unless --partial. Prints every bad line and
    field; exits 2 when there are any."""
    import sys

    from kiban.registry.migration import RegistryMigration

    svc, member = acting(username)
    migration = RegistryMigration(svc.db, svc.clock)
    try:
        if str(file) == "-":
            sys.stdin.reconfigure(encoding="utf-8-sig", newline="")  # type: ignore[union-attr]
            src = sys.stdin
        else:
            src = file.open(encoding="utf-8-sig", newline="")
        with src:
            if validate_only:
                report = migration.validate(member, lgcode, src, fmt, source_lgcode=from_lgcode)
            else:
                report = migration.import_(member, lgcode, src, fmt, partial,
                                           source_lgcode=from_lgcode)
    except KibanError as exc:
        fail(exc)
    except UnicodeDecodeError:
        typer.echo("error: the file is not UTF-8 / ファイルが UTF-8 ではありません", err=True)
        raise typer.Exit(2) from None
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(2)
