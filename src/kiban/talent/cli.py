"""`kiban talent ...`: the specialist pool from the command line, acting as a named user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from kiban.clikit import acting, fail, out, services
from kiban.core.errors import KibanError

app = typer.Typer(help="専門人材: skills, profiles, needs, matching, coverage.",
                  no_args_is_help=True)
As = Annotated[str, typer.Option("--as", help="username the action is taken as")]


@app.command("skills")
def skills() -> None:
    """The maintained skill list."""
    for s in services().talent.skills():
        typer.echo(f"{s['code']}\t{s['name_ja']}\t{s['name_en']}" + ("" if s["active"] else
                                                                       "\t(inactive)"))


@app.command("skill-add")
def skill_add(code: str, name_ja: str, name_en: str) -> None:
    """Add a skill to the list every municipality and specialist uses (platform operators)."""
    try:
        services().talent.add_skill(None, code, name_ja, name_en)
    except KibanError as exc:
        fail(exc)
    typer.echo(f"added {code}")


@app.command("profile")
def profile(data_file: Path, username: As) -> None:
    """Register or update a specialist's profile from a JSON file shaped like the API's."""
    svc, member = acting(username)
    try:
        out(svc.talent.save_profile(member, json.loads(data_file.read_text(encoding="utf-8"))))
    except KibanError as exc:
        fail(exc)


@app.command("post-need")
def post_need(data_file: Path, username: As) -> None:
    """Post a need (a joint one when the file lists shares) from a JSON file."""
    svc, member = acting(username)
    try:
        out(svc.talent.post_need(member, json.loads(data_file.read_text(encoding="utf-8"))))
    except KibanError as exc:
        fail(exc)


@app.command("needs")
def needs(username: As, mine: bool = False) -> None:
    """Open needs (or, with --mine, the acting staff member's municipality's)."""
    svc, member = acting(username)
    try:
        for n in svc.talent.needs(member, "mine" if mine else "open"):
            typer.echo(f"{n['id']}\t{n['status']}\t{n['start']}..{n['end']}\t"
                       f"{n['days_per_month']}d\t{n['title']}")
    except KibanError as exc:
        fail(exc)


@app.command("match")
def match(need_id: str, username: As, limit: int = 10) -> None:
    """Specialists ranked for a need, with the reasons for each rank."""
    svc, member = acting(username)
    try:
        ranked = svc.talent.candidates(member, need_id, limit)
    except KibanError as exc:
        fail(exc)
    for c in ranked:
        flag = "" if c["eligible"] else " (条件外)"
        typer.echo(f"{c['rank']:>3}. {c['score']:>3} {c['specialist']['display_name']}{flag}")
        for reason in c["reasons"]:
            typer.echo(f"       - {reason}")


@app.command("offer")
def offer(need_id: str, specialist_id: str, username: As) -> None:
    """Offer a specialist an engagement on a need, for its whole period and shares."""
    svc, member = acting(username)
    try:
        out(svc.talent.offer(member, need_id, {"specialist_id": specialist_id}))
    except KibanError as exc:
        fail(exc)


@app.command("coverage")
def coverage(prefecture: str, username: As,
             month: Annotated[str | None, typer.Option(help="YYYY-MM")] = None) -> None:
    """Which municipalities of a prefecture have a specialist, and which skills are short."""
    svc, member = acting(username)
    try:
        view = svc.talent.coverage(member, prefecture, month)
    except KibanError as exc:
        fail(exc)
    typer.echo(f"{view['prefecture']} {view['month']}: {view['uncovered']} of {view['total']} "
               "municipalities without a specialist")
    for m in view["municipalities"]:
        typer.echo(f"  {m['lgcode']} {m['name']}: {m['days']} days/month, "
                   f"{m['specialists']} specialists")
    for s in view["skills"]:
        if s["demand"] or s["supply"]:
            typer.echo(f"  {s['name']}: demand {s['demand']}, supply {s['supply']}, "
                       f"short {s['short']}")
