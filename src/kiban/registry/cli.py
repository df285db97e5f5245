"""`kiban registry ...`: the registry from the command line, acting as a named staff member."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from kiban.clikit import fail, out, services
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


def _context(username: str) -> tuple[Any, Any]:
    svc = services()
    member = next((m for m in svc.accounts.list(None) if m.username == username), None)
    if member is None:
        typer.echo(f"error: no staff member {username}", err=True)
        raise typer.Exit(2)
    return svc, member


_fail = fail
_out = out


@app.command("change")
def change(kind: Annotated[str, typer.Argument(help=", ".join(CHANGES))], lgcode: str,
           data_file: Path, username: As) -> None:
    """Record a change (異動) from a JSON file shaped like the API's request body."""
    if kind not in CHANGES and kind != "authority-entry":
        typer.echo(f"error: unknown change {kind}", err=True)
        raise typer.Exit(2)
    svc, member = _context(username)
    data = json.loads(data_file.read_text(encoding="utf-8"))
    if kind == "authority-entry":
        data["authority"] = True
    try:
        _out(getattr(svc.registry, CHANGES.get(kind, "move_in"))(member, lgcode, data))
    except KibanError as exc:
        _fail(exc)


@app.command("search")
def search(lgcode: str, username: As, name: str = "", birth_date: str = "",
           juminhyo_code: str = "", include_removed: bool = False, page: int = 1) -> None:
    """Find residents by name (kanji or kana), date of birth or 住民票コード."""
    from datetime import date

    svc, member = _context(username)
    try:
        result = svc.registry.search(
            member, lgcode, name=name or None,
            birth_date=date.fromisoformat(birth_date) if birth_date else None,
            juminhyo_code=juminhyo_code or None, include_removed=include_removed, page=page)
    except KibanError as exc:
        _fail(exc)
    for r in result["items"]:
        typer.echo(f"{r['id']}\t{r['full_name']}\t{r['full_kana']}\t{r['birth_date']}\t"
                   f"{(r['address'] or {}).get('text', '')}\t{r['status']}")
    typer.echo(f"{result['total']} found", err=True)


@app.command("show")
def show(lgcode: str, resident_id: str, username: As) -> None:
    svc, member = _context(username)
    try:
        _out(svc.registry.get(member, lgcode, resident_id))
    except KibanError as exc:
        _fail(exc)


@app.command("certificate")
def certificate(lgcode: str, resident_ids: list[str], username: As,
                output: Annotated[Path, typer.Option("-o")] = Path("juminhyo.pdf"),
                form: str = "household", kind: str = "juminhyo",
                honseki: bool = False, juminhyo_code: bool = False,
                my_number: bool = False, head_and_relationship: bool = True) -> None:
    """Issue a 住民票の写し (or 除票の写し with --kind joshu) as PDF."""
    svc, member = _context(username)
    try:
        serial, pdf = svc.registry.issue_certificate(member, lgcode, {
            "resident_ids": resident_ids, "form": form, "kind": kind, "honseki": honseki,
            "juminhyo_code": juminhyo_code, "my_number": my_number,
            "head_and_relationship": head_and_relationship})
    except KibanError as exc:
        _fail(exc)
    output.write_bytes(pdf)
    typer.echo(f"{serial} -> {output}")
