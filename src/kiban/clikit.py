"""Shared pieces of the command line: services from the environment, errors, JSON output."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer

from kiban.core.clock import SystemClock
from kiban.core.errors import KibanError
from kiban.platform import settings as settings_module
from kiban.platform.auth import StaffMember
from kiban.platform.db import Database
from kiban.web.context import Services


def services() -> Services:
    settings = settings_module.load()
    return Services.build(settings, SystemClock(), Database(settings))


def acting(username: str) -> tuple[Services, StaffMember]:
    """Services and the staff member a command acts as (`--as USERNAME`)."""
    svc = services()
    member = next((m for m in svc.accounts.list(None) if m.username == username), None)
    if member is None:
        typer.echo(f"error: no staff member {username}", err=True)
        raise typer.Exit(2)
    return svc, member


def fail(exc: KibanError) -> NoReturn:
    typer.echo(f"error: {exc.en} / {exc.ja}" + (f" [{exc.field}]" if exc.field else ""), err=True)
    for e in exc.errors[1:]:
        typer.echo(f"  {e.field}: {e.en} / {e.ja}", err=True)
    raise typer.Exit(2)


def out(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
