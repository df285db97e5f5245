"""`kiban linkage ...`: run the hub as its own process, keep the member register and the
permission table, issue codes, and check the log."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from kiban.clikit import acting, fail, out, services
from kiban.core.errors import KibanError
from kiban.linkage import merkle
from kiban.linkage.service import parse_rules_file

app = typer.Typer(help="情報連携: the inter-agency exchange hub.", no_args_is_help=True)
As = Annotated[str, typer.Option("--as", help="username the action is taken as (platform administrator)")]


@app.command("serve")
def serve(host: str = "127.0.0.1", port: int = 8100) -> None:
    """Run the hub as its own process (the in-process hub of `kiban serve` must then be unused)."""
    import uvicorn

    from kiban.linkage.api import create_hub_app

    uvicorn.run(create_hub_app(), host=host, port=port, log_level="warning", access_log=False,
                proxy_headers=True,
                forwarded_allow_ips=os.environ.get("KIBAN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1"))


@app.command("members")
def members() -> None:
    """The member register: subsystem, kind, status, items provided."""
    for m in services().linkage.members():
        typer.echo(f"{m['id']}\t{m['kind']}\t{m['status']}\t{m['name']}\t{','.join(m['items'])}")


@app.command("join")
def join(member_id: str, name: str, certificate: Path,
         kind: Annotated[str, typer.Option(help="agency or municipality")] = "agency",
         endpoint: Annotated[str, typer.Option(help="provider URL the hub POSTs to")] = "",
         item: Annotated[list[str] | None, typer.Option(help="an item provided, AREA/ITEM=description")] = None
         ) -> None:
    """Register an outside agency's subsystem with its certificate (PEM)."""
    items = {i.partition("=")[0]: i.partition("=")[2] or i for i in item or []}
    try:
        found = services().linkage.register_member(member_id, kind, name, certificate=certificate.read_text(),
                                                   endpoint=endpoint, items=items)
    except KibanError as exc:
        fail(exc)
    typer.echo(f"registered {found['id']}")


@app.command("join-municipality")
def join_municipality(lgcode: str) -> None:
    """Make a municipality's registry a member serving jumin/... in-process."""
    svc = services()
    try:
        found = svc.municipalities.get(lgcode)
        member = svc.linkage.register_municipality(lgcode, str(found["name"]))
    except KibanError as exc:
        fail(exc)
    typer.echo(f"registered {member['id']}")


@app.command("publish")
def publish(rules: Path, username: As, note: str = "") -> None:
    """Publish a new version of the permission table from a JSON file (a list of rules)."""
    svc, staff = acting(username)
    try:
        table = svc.linkage.publish_permissions(staff, parse_rules_file(rules.read_text()), note)
    except KibanError as exc:
        fail(exc)
    typer.echo(f"published version {table['version']} ({len(table['rules'])} rules, sha256 {table['digest']})")


@app.command("permissions")
def permissions(version: int | None = None) -> None:
    """Print the permission table (current version unless --version)."""
    try:
        out(services().linkage.permissions(version))
    except KibanError as exc:
        fail(exc)


@app.command("enrol")
def enrol(member_id: str, lgcode: str, resident_id: str) -> None:
    """Issue a member's code for a resident (符号の取得): print it for delivery to that member only."""
    try:
        typer.echo(services().linkage.enrol(member_id, lgcode, resident_id))
    except KibanError as exc:
        fail(exc)


@app.command("sth")
def sth() -> None:
    """Print the current signed tree head (publish it: auditors compare later heads with it)."""
    out(services().linkage.sth())


@app.command("verify")
def verify(expect: Annotated[Path | None, typer.Option(help="a tree head published earlier (JSON)")] = None) -> None:
    """Recompute every leaf and the published head; with --expect, also prove the current log
    extends the earlier head. Exit status 1 on any problem."""
    hub = services().linkage
    problems = hub.verify_log()
    if expect is not None:
        old = json.loads(expect.read_text())
        current = hub.sth()
        proof = [base64.b64decode(p) for p in hub.consistency(int(old["tree_size"]),
                                                               int(current["tree_size"]))["consistency"]]
        if not merkle.verify_consistency(int(old["tree_size"]), int(current["tree_size"]),
                                         base64.b64decode(old["sha256_root_hash"]),
                                         base64.b64decode(current["sha256_root_hash"]), proof):
            problems.append("the log does not extend the expected tree head")
    for p in problems:
        typer.echo(p, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo("log intact")
