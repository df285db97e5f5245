"""`kiban opendata ...`: the scheduled generation of 地域・年齢別人口 (run it from cron or a
systemd timer, e.g. monthly) and the list of published datasets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from kiban.clikit import fail, services
from kiban.core.errors import KibanError
from kiban.opendata import model, outlines
from kiban.opendata.service import OUTLINES_ENV, OpenData

app = typer.Typer(help="オープンデータ: generated datasets, catalog.", no_args_is_help=True)


@app.command("generate-population")
def generate_population(
        lgcode: Annotated[list[str] | None, typer.Option(
            "--lgcode", help="municipality (repeat); default: every municipality")] = None,
        threshold: Annotated[int, typer.Option(
            "--threshold", help="suppress counts below this")] = model.SUPPRESSION_THRESHOLD,
        dp_epsilon: Annotated[float | None, typer.Option(
            "--dp-epsilon", help="release differentially private counts instead, spending this "
                                 "ε from the opendata_population privacy budget")] = None,
) -> None:
    """Generate 地域・年齢別人口 from the registry (small cells suppressed) as a new version."""
    svc = services()
    od = OpenData(svc.db, svc.clock)
    codes = lgcode or [m["lgcode"] for m in svc.municipalities.list()]
    try:
        for code in codes:
            done = od.generate_population(code, threshold, epsilon=dp_epsilon)
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


outlines_app = typer.Typer(help="Municipality outlines for the catalog map (no tile server).",
                           no_args_is_help=True)
app.add_typer(outlines_app, name="outlines")


@outlines_app.command("import")
def import_outlines(
        file: Annotated[Path, typer.Argument(help="国土数値情報 行政区域 (N03) GeoJSON file")],
        out_dir: Annotated[Path | None, typer.Option(
            "--out", help=f"directory to write to; default ${OUTLINES_ENV}, else the "
                          "package's bundled outlines")] = None,
        lgcode: Annotated[list[str] | None, typer.Option(
            "--lgcode", help="only this municipality (6 digits; repeat)")] = None,
        tolerance: Annotated[float, typer.Option(
            "--tolerance", help="simplification in degrees (0.0005 = about 50 m)")
        ] = outlines.DEFAULT_TOLERANCE,
) -> None:
    """Import municipality outlines from N03 GeoJSON: simplified, one file per municipality."""
    try:
        data = json.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        typer.echo(f"error: cannot read {file} as GeoJSON ({type(exc).__name__}) / "
                   "GeoJSON として読めません", err=True)
        raise typer.Exit(2) from exc
    try:
        found = outlines.import_n03(data, tolerance, only=set(lgcode) if lgcode else None)
    except outlines.OutlineError as exc:
        typer.echo(f"error: {exc.en} / {exc.ja}", err=True)
        raise typer.Exit(2) from exc
    if not found:
        typer.echo("error: no municipality found / 該当する市区町村がありません", err=True)
        raise typer.Exit(2)
    target = out_dir or (Path(os.environ[OUTLINES_ENV]) if os.environ.get(OUTLINES_ENV)
                         else outlines.BUNDLED)
    for code, outline in sorted(found.items()):
        outlines.save(outline, target)
        points = sum(len(r) for r in outline.rings)
        typer.echo(f"{code}\t{outline.name}\t{len(outline.rings)} rings, {points} points")


@outlines_app.command("derive")
def derive_outlines(
        lgcode: Annotated[list[str], typer.Option("--lgcode", help="municipality (repeat)")],
        out_dir: Annotated[Path, typer.Option("--out", help="directory to write to")
                           ] = outlines.BUNDLED,
) -> None:
    """Write an APPROXIMATE outline (convex hull of the published points, not a boundary)
    for municipalities that have no boundary data."""
    svc = services()
    od = OpenData(svc.db, svc.clock)
    for code in lgcode:
        records = []
        for name in sorted(od.point_schemas):
            records += od.find_records(lgcode=code, schema=name, limit=5000)
        try:
            name = str(svc.municipalities.get(code)["name"])
        except KibanError:
            name = code
        found = outlines.approximate(code, name,
                                     [(r["緯度"], r["経度"]) for r in records])
        if found is None:
            typer.echo(f"{code}\tno published points, skipped")
            continue
        outlines.save(found, out_dir)
        typer.echo(f"{code}\tapproximate, {len(found.rings[0])} points")


@outlines_app.command("list")
def list_outlines() -> None:
    """The outlines the map uses: code, name, source, approximate or not."""
    svc = services()
    for code, o in sorted(OpenData(svc.db, svc.clock).outlines().items()):
        typer.echo(f"{code}\t{o.name}\t{'approximate' if o.approximate else 'boundary'}\t"
                   f"{o.source}")
