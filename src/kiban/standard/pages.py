"""Pages of the standard: public (the spec, its versions, every municipality's deviations)
and for staff (their municipality's options and deviations; change proposals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kiban.core.errors import KibanError
from kiban.platform.auth import Permission
from kiban.web.deps import PostedForm, check_csrf, optional_session, services
from kiban.web.pages import PageAuth, act, field_errors, render

router = APIRouter(include_in_schema=False)


@router.get("/standard", response_class=HTMLResponse)
def home(request: Request) -> Response:
    svc = services(request).standard
    return render(request, "standard_home.html", optional_session(request), spec=svc.spec,
                  log=svc.changelog())


@router.get("/standard/requirements", response_class=HTMLResponse)
def requirements(request: Request, domain: str = "registry") -> Response:
    spec = services(request).standard.spec
    rows = sorted((r for r in spec.requirements.values() if r.domain == domain),
                  key=lambda r: r.id)
    return render(request, "standard_requirements.html", optional_session(request), spec=spec,
                  rows=rows, domain=domain)


@router.get("/standard/deviations", response_class=HTMLResponse)
def deviations(request: Request, lgcode: str = "") -> Response:
    svc = services(request)
    return render(request, "standard_deviations.html", optional_session(request),
                  rows=svc.standard.deviations(lgcode or None), lgcode=lgcode,
                  municipalities=svc.municipalities.list())


@router.get("/console/standard", response_class=HTMLResponse)
def municipality_page(request: Request, session: PageAuth) -> Response:
    return _municipality(request, session, errors={}, values={}, error=None)


def _municipality(request: Request, session: Any, status: int = 200, **context: Any) -> Response:
    staff = session.staff
    staff.require(Permission.DASHBOARD)
    svc = services(request).standard
    lgcode = staff.lgcode
    return render(request, "standard_municipality.html", session, status=status, spec=svc.spec,
                  settings=svc.effective_settings(lgcode), rows=svc.deviations(lgcode),
                  can_manage=staff.can(Permission.MUNICIPALITY_MANAGE),
                  mandatory=[r for r in sorted(svc.spec.requirements.values(), key=lambda r: r.id)
                             if r.kind == "mandatory"], **context)


@router.post("/console/standard/deviations")
def record_deviation(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    values = {k: str(form.get(k, "")) for k in ("requirement", "what", "reason", "decided_by",
                                                "decided_on", "review_on", "value")}
    try:
        services(request).standard.record_deviation(session.staff, session.staff.lgcode or "",
                                                    values)
    except KibanError as exc:
        return _municipality(request, session, status=exc.status, errors=field_errors(exc),
                             values=values, error=exc)
    return RedirectResponse("/console/standard", status_code=303)


@router.post("/console/standard/deviations/{deviation_id}/withdraw")
def withdraw(request: Request, session: PageAuth, deviation_id: str, form: PostedForm) -> Response:
    svc = services(request).standard
    return act(request, session, form, "/console/standard",
                lambda: svc.withdraw_deviation(session.staff, deviation_id))


@router.get("/standard/proposals", response_class=HTMLResponse)
def proposals(request: Request, session: PageAuth, status: str = "") -> Response:
    svc = services(request).standard
    return render(request, "standard_proposals.html", session,
                  rows=svc.proposals(session.staff, status or None), status_filter=status, errors={}, values={},
                  error=None, requirements=sorted(svc.spec.requirements))


@router.post("/standard/proposals")
def propose(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    svc = services(request).standard
    values: dict[str, Any] = {k: str(form.get(k, "")) for k in ("requirement", "title",
                                                                "proposed_text", "rationale")}
    try:
        made = svc.propose(session.staff, {**values, "requirement": values["requirement"] or None})
    except KibanError as exc:
        return render(request, "standard_proposals.html", session, status=exc.status,
                      rows=svc.proposals(session.staff), status_filter="", errors=field_errors(exc),
                      values=values, error=exc, requirements=sorted(svc.spec.requirements))
    return RedirectResponse(f"/standard/proposals/{made['id']}", status_code=303)


@router.get("/standard/proposals/{proposal_id}", response_class=HTMLResponse)
def proposal(request: Request, session: PageAuth, proposal_id: str) -> Response:
    svc = services(request).standard
    return render(request, "standard_proposal.html", session, p=svc.proposal(session.staff, proposal_id),
                  maintainer=session.staff.can(Permission.STANDARD_MAINTAIN))


@router.post("/standard/proposals/{proposal_id}/{verb}")
def proposal_action(request: Request, session: PageAuth, proposal_id: str, verb: str,
                    form: PostedForm) -> Response:
    svc = services(request).standard
    staff = session.staff
    actions: dict[str, Callable[[], Any]] = {
        "endorse": lambda: svc.endorse(staff, proposal_id),
        "comment": lambda: svc.comment(staff, proposal_id, form.get("text", "")),
        "accept": lambda: svc.decide(staff, proposal_id, True, form.get("reason", "")),
        "reject": lambda: svc.decide(staff, proposal_id, False, form.get("reason", "")),
    }
    if verb not in actions:
        return render(request, "error.html", session, status=404, error=KibanError(
            ja="ページが見つかりません。", en="Not found.", status=404))
    return act(request, session, form, f"/standard/proposals/{proposal_id}", actions[verb])
