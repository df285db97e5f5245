"""`kiban tax …`: the calculator (`kiban tax calc INPUT.json`) and, from the annual assessment,
import and assessment commands (added beside these)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from kiban.core.errors import KibanError
from kiban.tax.calculator import calculator_output

app = typer.Typer(help="個人住民税 (individual resident tax).", no_args_is_help=True)


def _fail(message: str, field: str) -> None:
    typer.echo(f"error: {field}: {message}", err=True)
    raise typer.Exit(2)


@app.command("calc")
def calc(input_file: Annotated[Path, typer.Argument(
        metavar="INPUT.json", help="the calculator input; '-' reads standard input")]) -> None:
    """Compute one taxpayer's resident tax and print every intermediate amount as JSON.
    Invalid input exits with status 2 and names the field."""
    try:
        text = sys.stdin.read() if str(input_file) == "-" else input_file.read_text(
            encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read the input ({exc.__class__.__name__})", "INPUT.json")
    try:
        body = json.loads(text)
    except ValueError as exc:
        _fail(f"not valid JSON ({exc})", "INPUT.json")
    try:
        result = calculator_output(body)
    except KibanError as exc:
        for error in exc.errors or []:
            typer.echo(f"error: {error.field}: {error.en} / {error.ja}", err=True)
        if not exc.errors:
            typer.echo(f"error: {exc.field or 'input'}: {exc.en} / {exc.ja}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))


# The annual assessment's commands: import, assess, worker (kiban.tax.batch_cli).
from kiban.tax.batch_cli import register as _register_batch  # noqa: E402

_register_batch(app)
