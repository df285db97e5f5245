"""The `kiban` command line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from kiban import demo as demo_module
from kiban.assist import cli as assist_cli
from kiban.clikit import fail, services
from kiban.core.errors import KibanError
from kiban.identity import cli as identity_cli
from kiban.linkage import cli as linkage_cli
from kiban.opendata import cli as opendata_cli
from kiban.platform import settings as settings_module
from kiban.registry import cli as registry_cli
from kiban.standard import cli as standard_cli
from kiban.talent import cli as talent_cli
from kiban.tax import cli as tax_cli

app = typer.Typer(help="Kiban (基盤): the shared municipal platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
muni_app = typer.Typer(help="Municipalities (tenants).", no_args_is_help=True)
staff_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
ledger_app = typer.Typer(help="The tamper-evident ledger.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(muni_app, name="municipality")
app.add_typer(staff_app, name="staff")
app.add_typer(ledger_app, name="ledger")
app.add_typer(registry_cli.app, name="registry")
app.add_typer(talent_cli.app, name="talent")
app.add_typer(opendata_cli.app, name="opendata")
app.add_typer(tax_cli.app, name="tax")
app.add_typer(standard_cli.app, name="standard")
app.add_typer(standard_cli.conformance_app, name="conformance")
app.add_typer(demo_module.app, name="demo")
app.add_typer(identity_cli.app, name="identity")
app.add_typer(identity_cli.pki_app, name="pki")
app.add_typer(linkage_cli.app, name="linkage")
app.add_typer(assist_cli.app, name="assist")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (as the table owner)."""
    from kiban.platform.migrate import upgrade

    upgrade(settings_module.load())
    typer.echo("schema is up to date")


@muni_app.command("create")
def municipality_create(lgcode: str, name: str, prefecture: str,
                        name_kana: Annotated[str, typer.Option()] = "") -> None:
    """Register a municipality by its 地方公共団体コード."""
    svc = services()
    try:
        svc.municipalities.create(lgcode, name, prefecture, svc.clock.now(), name_kana)
    except KibanError as exc:
        fail(exc)
    typer.echo(f"created {lgcode} {prefecture}{name}")


@muni_app.command("list")
def municipality_list() -> None:
    for m in services().municipalities.list():
        typer.echo(f"{m['lgcode']}\t{m['prefecture']}\t{m['name']}")


@muni_app.command("towns")
def municipality_towns(lgcode: str, csv_file: Path) -> None:
    """Replace the 町字 master from a CSV with columns code,name[,name_kana,postcode]."""
    import csv

    svc = services()
    with csv_file.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    try:
        count = svc.municipalities.set_towns(lgcode, rows, svc.clock.now(), "cli")
    except KibanError as exc:
        fail(exc)
    typer.echo(f"{count} towns")


@staff_app.command("create")
def staff_create(username: str, display_name: str,
                 roles: Annotated[str, typer.Option(help="comma-separated roles")],
                 lgcode: Annotated[str | None, typer.Option()] = None,
                 password: Annotated[str | None, typer.Option(
                     help="omit to be prompted")] = None) -> None:
    """Create a staff account (roles: counter_clerk, registry_supervisor, tax_officer,
    privacy_officer, municipality_admin, digital_officer; platform_admin and specialist
    belong to no municipality)."""
    svc = services()
    secret = password or typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        if lgcode:
            svc.municipalities.get(lgcode)
        svc.accounts.create(username, secret, display_name, roles.split(","), lgcode,
                            svc.clock.now())
    except KibanError as exc:
        fail(exc)
    typer.echo(f"created {username}")


@staff_app.command("list")
def staff_list(lgcode: Annotated[str | None, typer.Option()] = None) -> None:
    for m in services().accounts.list(lgcode):
        typer.echo(f"{m.username}\t{m.lgcode or '-'}\t{','.join(sorted(m.roles))}")


@staff_app.command("deactivate")
def staff_deactivate(username: str) -> None:
    """Close an account: its sessions and API tokens stop working at once."""
    try:
        services().accounts.deactivate(username)
    except KibanError as exc:
        fail(exc)
    typer.echo(f"deactivated {username}")


@staff_app.command("password")
def staff_password(username: str) -> None:
    """Set a new password (prompted); signs the account out everywhere."""
    secret = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        services().accounts.set_password(username, secret)
    except KibanError as exc:
        fail(exc)
    typer.echo(f"password changed for {username}")


@staff_app.command("purge")
def staff_purge() -> None:
    """Drop expired sessions and old login failures (run daily)."""
    svc = services()
    count = svc.accounts.purge(svc.clock.now(), svc.settings.login_window_seconds)
    typer.echo(f"purged {count} rows")


@staff_app.command("token")
def staff_token(username: str) -> None:
    """Issue an API token (Bearer) for a staff member."""
    svc = services()
    try:
        typer.echo(svc.accounts.issue_api_token(username, svc.clock.now()))
    except KibanError as exc:
        fail(exc)


@ledger_app.command("head")
def ledger_head() -> None:
    """Print each chain's head (LGCODE SEQ HASH): publish it outside the database, so a
    rewrite of a whole chain, or of its end, is caught by `verify --expect`."""
    svc = services()
    for m in svc.municipalities.list():
        report = svc.registry.verify_ledger(m["lgcode"])
        typer.echo(f"{m['lgcode']} {report['head_seq']} {report['head_hash']}")


@ledger_app.command("verify")
def ledger_verify(lgcode: Annotated[str | None, typer.Option(
        help="one municipality; all when omitted")] = None,
        expect: Annotated[Path | None, typer.Option(
            help="a file of published heads (the output of `kiban ledger head`)")] = None
                  ) -> None:
    """Check every chain: names each altered, removed, inserted or reordered entry."""
    svc = services()
    codes = [lgcode] if lgcode else [m["lgcode"] for m in svc.municipalities.list()]
    published: dict[str, tuple[int, str]] = {}
    if expect:
        for line in expect.read_text().split("\n"):
            if line.strip():
                code, seq, digest = line.split()
                published[code] = (int(seq), digest)
    # A published chain is checked even if its municipality's row has gone.
    codes += [code for code in published if code not in codes and not lgcode]
    bad = False
    for code in codes:
        report = svc.registry.verify_ledger(code, expected_head=published.get(code))
        if report["ok"]:
            typer.echo(f"{code}: ok ({report['head_seq']} entries, head {report['head_hash']})")
        else:
            bad = True
            for p in report["problems"]:
                typer.echo(f"{code}: entry {p['seq']}: {p['what']}: {p['detail']}")
    raise typer.Exit(1 if bad else 0)


@app.command("serve")
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API and the staff console."""
    import uvicorn

    from kiban.web.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # access_log=False: uvicorn's line would carry query strings (names searched for).
    # Behind a load balancer, KIBAN_FORWARDED_ALLOW_IPS names it, so the login rate limit
    # sees the client's address rather than the balancer's.
    uvicorn.run(create_app(), host=host, port=port, log_level="info", access_log=False,
                proxy_headers=True,
                forwarded_allow_ips=os.environ.get("KIBAN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1"))


@app.command("backup")
def backup(path: Path) -> None:
    """Write the whole database (every municipality) to a JSON Lines file."""
    from kiban.platform import backup as backup_module

    try:
        counts = backup_module.dump(services().db, path)
    except backup_module.BackupRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {sum(counts.values())} rows from {len(counts)} tables to {path}")


@app.command("restore")
def restore(path: Path) -> None:
    """Replace the database's contents with a backup (schema must be up to date)."""
    from kiban.platform import backup as backup_module

    try:
        counts = backup_module.load(services().db, path)
    except backup_module.BackupRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"restored {sum(counts.values())} rows into {len(counts)} tables")


def main() -> None:  # pragma: no cover
    try:
        app()
    except KibanError as exc:
        fail(exc)
        sys.exit(2)
