"""Staff pages of the exchange hub (/console/linkage): the member and permission registers,
exchange volumes per member and day, refused exchanges, publishing a new table; and a
resident's exchanges (やりとり履歴), shown at the counter with their log proofs."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kiban.core.clock import today_jst
from kiban.core.errors import KibanError
from kiban.linkage.service import parse_rules_file
from kiban.platform.auth import Permission
from kiban.web.deps import PostedForm, check_csrf, services
from kiban.web.pages import PageAuth, field_errors, render

router = APIRouter(prefix="/console/linkage", include_in_schema=False)
DAYS = 14


def chart(volumes: list[dict[str, Any]], today: date) -> dict[str, Any]:
    """Exchanges per requesting member and day (last DAYS days) as bars: provided and refused."""
    days = [(today - timedelta(days=DAYS - 1 - i)).isoformat() for i in range(DAYS)]
    rows: dict[str, dict[str, dict[str, int]]] = {}
    for v in volumes:
        day = str(v["day"])[:10]
        if day in days:
            cell = rows.setdefault(v["client"], {}).setdefault(day, {"provided": 0, "refused": 0})
            cell["refused" if v["outcome"] == "refused" else "provided"] += int(v["n"])
    peak = max([sum(c.values()) for r in rows.values() for c in r.values()] or [1])
    return {"days": days, "peak": peak, "members": [
        {"id": member, "cells": [by_day.get(d, {"provided": 0, "refused": 0}) for d in days]}
        for member, by_day in sorted(rows.items())]}


def _page(request: Request, session: Any, status: int = 200, **extra: Any) -> Response:
    svc = services(request)
    hub = svc.linkage
    overview = hub.overview(session.staff, DAYS)
    return render(request, "linkage.html", session, status=status, members=hub.members(),
                  table=hub.permissions(), versions=hub.permission_versions(),
                  chart=chart(overview["volumes"], today_jst(svc.clock)), refused=overview["refused"],
                  tree_size=overview["tree_size"], can_publish=session.staff.can(Permission.PLATFORM_MANAGE),
                  **extra)


@router.get("", response_class=HTMLResponse)
def console(request: Request, session: PageAuth) -> Response:
    return _page(request, session, rules_text="", errors={})


@router.post("/permissions", response_class=HTMLResponse)
def publish(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    text = str(form.get("rules", ""))
    try:
        services(request).linkage.publish_permissions(session.staff, parse_rules_file(text),
                                                      str(form.get("note", "")))
    except KibanError as exc:
        return _page(request, session, status=exc.status, rules_text=text, errors=field_errors(exc))
    return _page(request, session, rules_text="", errors={}, published=True)


@router.get("/residents/{resident_id}", response_class=HTMLResponse)
def resident(request: Request, session: PageAuth, resident_id: str) -> Response:
    staff = session.staff
    lgcode = staff.lgcode or ""
    svc = services(request)
    person = svc.registry.get(staff, lgcode, resident_id)
    view = svc.linkage.resident_exchanges(staff, lgcode, resident_id)
    return render(request, "linkage_resident.html", session, person=person, view=view)
