"""`kiban opendata ...`: the scheduled generation of 地域・年齢別人口 (run it from cron or a
systemd timer, e.g. monthly) and the list of published datasets."""

from __future__ import annotations

from typing import Annotated

import typer

from kiban.clikit import fail, services
from kiban.core.errors import KibanError
from kiban.opendata import model
from kiban.opendata.service import OpenData

app = typer.Typer(help="オープンデータ: generated datasets, catalog.", no_args_is_help=True)


@app.command("generate-population")
def generate_population(
        lgcode: Annotated[list[str] | None, typer.Option(
            "--lgcode", help="municipality (repeat); default: every municipality")] = None,
        threshold: Annotated[int, typer.Option(
            "--threshold", help="suppress counts below this")] = model.SUPPRESSION_THRESHOLD,
) -> None:
    """Generate 地域・年齢別人口 from the registry (small cells suppressed) as a new version."""
    svc = services()
    od = OpenData(svc.db, svc.clock)
    codes = lgcode or [m["lgcode"] for m in svc.municipalities.list()]
    try:
        for code in codes:
            done = od.generate_population(code, threshold)
            typer.echo(f"{done.dataset_id}: version {done.version}, {done.rows} rows")
    except KibanError as exc:
        fail(exc)


@app.command("list")
def list_datasets() -> None:
    """Every published dataset: name, current version, title."""
    svc = services()
    od = OpenData(svc.db, svc.clock)
    count, _ = od.search(limit=0)
    for d in od.search(limit=count, order=[("name", False)])[1]:
        typer.echo(f"{d['id']}\tv{d['current_version']}\t{d['title']}")
