"""`kiban tax import`, `kiban tax assess` and `kiban tax worker`: the annual assessment from the
command line (registered on `kiban tax` by kiban.tax.cli). See docs/tax-batch.md."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from kiban.clikit import fail, services
from kiban.core.errors import KibanError

Lgcode = Annotated[str, typer.Option("--lgcode", help="地方公共団体コード (6 digits)")]
Year = Annotated[int, typer.Option("--year", help="課税年度 (fiscal year), e.g. 2026")]


def import_income(file: Annotated[Path, typer.Argument(metavar="FILE.csv")], lgcode: Lgcode,
                  year: Year, errors_out: Annotated[Path | None, typer.Option(
                      "--errors", help="write the bad lines' report (JSON) here")] = None
                  ) -> None:
    """Import income data (給与支払報告書・公的年金等支払報告書・申告) from a CSV file. Bad lines
    are reported by line and field and kept for correction; the rest is stored. Importing
    the same file again changes nothing."""
    svc = services()
    try:
        with file.open(encoding="utf-8-sig", newline="") as handle:
            report = svc.assessments.import_csv("cli", lgcode, year, handle, file.name)
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: FILE.csv: cannot read ({exc.__class__.__name__})", err=True)
        raise typer.Exit(2) from None
    except KibanError as exc:
        fail(exc)
    finally:
        svc.db.dispose()
    bad = report.pop("errors")
    for entry in bad[:50]:
        for error in entry["errors"]:
            typer.echo(f"line {entry['line']}: {error['field']}: {error['en']} / {error['ja']}",
                       err=True)
    if len(bad) > 50:
        typer.echo(f"... and {len(bad) - 50} more bad lines", err=True)
    if errors_out is not None:
        errors_out.write_text(json.dumps(bad, ensure_ascii=False, indent=1), encoding="utf-8")
    typer.echo(json.dumps(report, ensure_ascii=False, default=str))
    if bad:
        raise typer.Exit(1)


def assess(lgcode: Lgcode, year: Year,
           job_size: Annotated[int | None, typer.Option(
               help="taxpayers per job (default KIBAN_TAX_JOB_SIZE or 20,000)")] = None,
           enqueue_only: Annotated[bool, typer.Option(
               "--enqueue-only", help="plan the jobs and leave them to `kiban tax worker`")]
           = False,
           quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False
           ) -> None:
    """Assess every resident of 1 January of the year. Resumes an interrupted run; a taxpayer
    whose inputs did not change gets no new version. On PostgreSQL the run is a set of jobs
    that `kiban tax worker` processes on any machine share with this command."""
    svc = services()
    try:
        run = svc.assessments.plan(lgcode, year, "cli", job_size)
        if enqueue_only:
            typer.echo(json.dumps(svc.assessments.run_summary_system(lgcode, run["id"]),
                                  ensure_ascii=False, default=str))
            return
        summary = svc.assessments.run_summary_system(lgcode, run["id"])
        with typer.progressbar(length=max(summary["jobs"], 1), label="賦課 assess",
                               hidden=quiet) as bar:
            bar.update(summary["jobs_done"])

            def advance(_: dict[str, Any]) -> None:
                bar.update(1)

            svc.assessments.work(run_id=run["id"], lgcode=lgcode, progress=advance)
            seen = svc.assessments.run_summary_system(lgcode, run["id"])["jobs_done"]
            while svc.db.is_postgres:  # jobs other workers hold
                summary = svc.assessments.run_summary_system(lgcode, run["id"])
                bar.update(summary["jobs_done"] - seen)
                seen = summary["jobs_done"]
                if seen >= summary["jobs"]:
                    break
                time.sleep(0.5)
        summary = svc.assessments.run_summary_system(lgcode, run["id"])
    except KibanError as exc:
        fail(exc)
    finally:
        svc.db.dispose()
    typer.echo(json.dumps(summary, ensure_ascii=False, default=str))


def worker(lgcode: Annotated[str | None, typer.Option(
               "--lgcode", help="only this municipality's jobs")] = None,
           once: Annotated[bool, typer.Option(
               "--once", help="stop when the queue is empty")] = False,
           poll: Annotated[float, typer.Option(help="seconds between looks at an empty queue")]
           = 2.0) -> None:
    """Process assessment jobs from the queue (PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED, so
    any number of workers on any number of machines share it)."""
    svc = services()
    total = 0
    try:
        while True:
            done = svc.assessments.work(lgcode=lgcode, progress=lambda s: typer.echo(
                f"job {s['run_id'][:8]}#{s['seq']}: {s['taxpayers']} taxpayers", err=True))
            total += done
            if once:
                break
            if not done:
                time.sleep(poll)
    except KeyboardInterrupt:
        pass
    finally:
        svc.db.dispose()
    typer.echo(json.dumps({"jobs": total}))


def register(app: typer.Typer) -> None:
    app.command("import")(import_income)
    app.command("assess")(assess)
    app.command("worker")(worker)
