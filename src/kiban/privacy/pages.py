"""Pages: the published 個人情報ファイル簿 (public) and the privacy officer's console
(flagged accesses, proposals in progress, budgets spent), CSRF on every form."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kiban.core.errors import FieldError, ValidationFailed
from kiban.privacy import service as privacy_service
from kiban.web.deps import PostedForm, optional_session, services
from kiban.web.pages import PageAuth, act, render

router = APIRouter(prefix="/privacy", include_in_schema=False)


@router.get("/file-register", response_class=HTMLResponse)
def file_register(request: Request) -> Response:
    return render(request, "privacy_register.html", optional_session(request),
                  columns=privacy_service.REGISTER_COLUMNS,
                  files=privacy_service.register_entries())


@router.get("", response_class=HTMLResponse)
def officer(request: Request, session: PageAuth) -> Response:
    staff = session.staff
    privacy = services(request).privacy
    board = privacy.dashboard(staff, staff.lgcode or "", channel="page:GET /privacy")
    return render(request, "privacy_officer.html", session, lgcode=staff.lgcode,
                  datasets=privacy_service.DATASETS, **board)


@router.post("/budget")
def set_budget(request: Request, session: PageAuth, form: PostedForm) -> Response:
    staff = session.staff

    def run() -> None:
        raw = str(form.get("epsilon_total", "")).strip()
        try:
            total = float(raw)
        except ValueError:
            raise ValidationFailed([FieldError("epsilon_total", "εの上限は数値です。",
                                               "epsilon_total must be a number.")]) from None
        dataset = str(form.get("dataset", "") or privacy_service.DP_DATASET)
        services(request).privacy.set_budget(staff, staff.lgcode or "", total, dataset)

    return act(request, session, form, "/privacy", run)


@router.post("/proposals/{proposal_id}/screening")
def screen(request: Request, proposal_id: str, session: PageAuth, form: PostedForm) -> Response:
    staff = session.staff
    return act(request, session, form, "/privacy",
               lambda: services(request).privacy.screen(staff, staff.lgcode or "", proposal_id))
