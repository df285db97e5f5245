"""`kiban standard ...` (the spec) and `kiban conformance run` (the kit)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kiban.standard import spec as spec_module
from kiban.standard.kit import core
from kiban.standard.kit import report as report_module
from kiban.standard.kit.runner import SetupFailed, run

app = typer.Typer(help="標準仕様: the standard as data.", no_args_is_help=True)
conformance_app = typer.Typer(help="The conformance kit.", no_args_is_help=True)


@app.command("lint")
def lint() -> None:
    """Validate the spec files against their schema and check the cross-references: every
    mandatory requirement has a conformance test, every test cites a requirement."""
    problems = spec_module.validate_files()
    if not problems:
        spec = spec_module.load()
        problems = spec_module.lint(spec, core.implemented())
    for p in problems:
        typer.echo(p, err=True)
    if problems:
        raise typer.Exit(1)
    spec = spec_module.current()
    kinds = {k: sum(1 for r in spec.requirements.values() if r.kind == k)
             for k in spec_module.KINDS}
    typer.echo(f"standard {spec.version}: {len(spec.requirements)} requirements "
               f"({', '.join(f'{v} {k}' for k, v in kinds.items())}), "
               f"{len(core.implemented())} conformance tests, {len(spec.items)} items, "
               f"{len(spec.forms)} forms: ok")


@app.command("show")
def show(domain: Annotated[str | None, typer.Option(help="registry or tax")] = None) -> None:
    """List the requirements."""
    spec = spec_module.current()
    for r in sorted(spec.requirements.values(), key=lambda r: r.id):
        if domain is None or r.domain == domain:
            typer.echo(f"{r.id}\t{r.kind}\t{r.section}\t{r.title}")


@conformance_app.command("run")
def conformance_run(
        target: Annotated[str, typer.Option(help="base URL of the system under test")],
        token: Annotated[str, typer.Option(help="a platform administrator's API token")],
        domain: Annotated[list[str] | None, typer.Option(help="registry, tax (repeatable)")] = None,
        deviations_of: Annotated[str | None, typer.Option(
            help="show this municipality's recorded deviations")] = None,
        json_out: Annotated[Path | None, typer.Option("--json", help="write JSON here")] = None,
        html_out: Annotated[Path | None, typer.Option("--html", help="write HTML here")] = None,
) -> None:
    """Run the black-box conformance checks against a system's standard API. Exits 0 when
    every mandatory requirement passes (or is publicly deviated), 1 otherwise."""
    try:
        report = run(target, token, domain or ("registry", "tax"), deviations_of=deviations_of)
    except SetupFailed as exc:
        typer.echo(f"error: could not set up the test municipalities: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(report_module.table(report))
    if json_out:
        json_out.write_text(report_module.as_json(report), encoding="utf-8")
    if html_out:
        html_out.write_text(report_module.as_html(report), encoding="utf-8")
    raise typer.Exit(0 if report.mandatory_ok else 1)
