"""Pages of the assistant: the public help page with the chat widget (/assist/{lgcode}, which
also works without JavaScript), the inquiry hand-off page, and the console pages where a
municipality's administrators keep their FAQs, shared-bank choices and settings
(/console/assist)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from kiban.assist.model import MAX_CSV_BYTES
from kiban.core.errors import FieldError, Forbidden, KibanError, ValidationFailed
from kiban.platform.auth import Permission, Session
from kiban.web.deps import PostedForm, check_csrf, optional_session, services
from kiban.web.pages import PageAuth, act, field_errors, render

router = APIRouter(include_in_schema=False)
FAQ_FIELDS = ("question", "answer", "category", "department", "last_reviewed", "review_state",
              "keywords", "url")


# -- public ----------------------------------------------------------------------------

def _public(request: Request, lgcode: str, status: int = 200, **context: Any) -> Response:
    info = services(request).assist.public_settings(lgcode)
    return render(request, "assist_public.html", optional_session(request), status=status,
                  info=info, **{"result": None, "error": None, "question": "", **context})


@router.get("/assist/{lgcode}", response_class=HTMLResponse)
def public_page(request: Request, lgcode: str) -> Response:
    return _public(request, lgcode)


@router.post("/assist/{lgcode}", response_class=HTMLResponse)
def public_ask(request: Request, lgcode: str, form: PostedForm) -> Response:
    """The widget's fallback without JavaScript: the same answer, rendered on the page."""
    question = str(form.get("question", ""))
    try:
        result = services(request).assist.ask(lgcode, question, str(form.get("lang") or "") or None)
    except ValidationFailed as exc:
        return _public(request, lgcode, status=exc.status, error=exc, question=question[:500])
    return _public(request, lgcode, result=result, question=question)


@router.get("/assist/{lgcode}/inquiry", response_class=HTMLResponse)
def inquiry(request: Request, lgcode: str) -> Response:
    info = services(request).assist.public_settings(lgcode)
    return render(request, "assist_inquiry.html", optional_session(request), info=info)


# -- console ---------------------------------------------------------------------------

def _lgcode(session: Session) -> str:
    staff = session.staff
    if staff.lgcode is None or not staff.can(Permission.MUNICIPALITY_MANAGE):
        raise Forbidden("FAQの管理は団体管理者が行います。",
                        "FAQs are kept by the municipality's administrators.")
    return staff.lgcode


@router.get("/console/assist", response_class=HTMLResponse)
def console(request: Request, session: PageAuth, imported: str = "") -> Response:
    lgcode = _lgcode(session)
    assist = services(request).assist
    return render(request, "assist_console.html", session, lgcode=lgcode,
                  faqs=assist.faqs(session.staff, lgcode),
                  unanswered=assist.unanswered(session.staff, lgcode),
                  usage=assist.usage(session.staff, lgcode), import_problems=[],
                  imported=imported)


@router.post("/console/assist/import", response_class=HTMLResponse)
def import_csv(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    lgcode = _lgcode(session)
    assist = services(request).assist
    upload = form.get("file")
    problems: list[FieldError] = []
    if not isinstance(upload, UploadFile):
        problems = [FieldError("file", "CSVファイルを選んでください。", "Choose a CSV file.")]
    else:
        data = upload.file.read(MAX_CSV_BYTES + 1)
        if len(data) > MAX_CSV_BYTES:
            problems = [FieldError("file", "ファイルが大きすぎます(5MBまで)。", "File too large.")]
        else:
            try:
                done = assist.import_csv(session.staff, lgcode, data)
            except ValidationFailed as exc:
                problems = exc.errors
            else:
                return RedirectResponse(
                    f"/console/assist?imported={done['created']}+{done['updated']}",
                    status_code=303)
    return render(request, "assist_console.html", session, status=422, lgcode=lgcode,
                  faqs=assist.faqs(session.staff, lgcode),
                  unanswered=assist.unanswered(session.staff, lgcode),
                  usage=assist.usage(session.staff, lgcode), import_problems=problems,
                  imported="")


def _faq_values(form: FormData) -> dict[str, str]:
    return {name: str(form.get(name, "")) for name in FAQ_FIELDS}


def _faq_page(request: Request, session: Session, values: dict[str, Any], faq_id: str | None,
              status: int = 200, error: KibanError | None = None) -> Response:
    lgcode = _lgcode(session)
    categories = services(request).assist.settings(session.staff, lgcode)["categories"]
    return render(request, "assist_faq.html", session, status=status, values=values,
                  faq_id=faq_id, error=error, errors=field_errors(error) if error else {},
                  categories=categories)


@router.get("/console/assist/faqs/new", response_class=HTMLResponse)
def new_faq(request: Request, session: PageAuth) -> Response:
    _lgcode(session)
    today = services(request).clock.now().date().isoformat()
    return _faq_page(request, session, {"last_reviewed": today, "review_state": "draft"}, None)


@router.post("/console/assist/faqs/new", response_class=HTMLResponse)
def create_faq(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    values = _faq_values(form)
    try:
        services(request).assist.save_faq(session.staff, _lgcode(session), values)
    except KibanError as exc:
        return _faq_page(request, session, values, None, exc.status, exc)
    return RedirectResponse("/console/assist", status_code=303)


@router.get("/console/assist/faqs/{faq_id}", response_class=HTMLResponse)
def edit_faq(request: Request, session: PageAuth, faq_id: str) -> Response:
    _lgcode(session)
    return _faq_page(request, session, services(request).assist.faq(session.staff, faq_id),
                     faq_id)


@router.post("/console/assist/faqs/{faq_id}", response_class=HTMLResponse)
def save_faq(request: Request, session: PageAuth, faq_id: str, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    values = _faq_values(form)
    try:
        services(request).assist.save_faq(session.staff, _lgcode(session), values, faq_id)
    except KibanError as exc:
        return _faq_page(request, session, values, faq_id, exc.status, exc)
    return RedirectResponse("/console/assist", status_code=303)


@router.post("/console/assist/faqs/{faq_id}/delete")
def delete_faq(request: Request, session: PageAuth, faq_id: str, form: PostedForm) -> Response:
    return act(request, session, form, "/console/assist",
               lambda: services(request).assist.delete_faq(session.staff, faq_id))


@router.get("/console/assist/shared", response_class=HTMLResponse)
def shared(request: Request, session: PageAuth) -> Response:
    lgcode = _lgcode(session)
    return render(request, "assist_shared.html", session,
                  rows=services(request).assist.shared_bank(session.staff, lgcode))


@router.post("/console/assist/shared/{faq_id}")
def adopt(request: Request, session: PageAuth, faq_id: str, form: PostedForm) -> Response:
    lgcode = _lgcode(session)
    mode = str(form.get("mode", "")) or None
    return act(request, session, form, "/console/assist/shared",
               lambda: services(request).assist.adopt(
                   session.staff, lgcode, faq_id, None if mode == "default" else mode,
                   str(form.get("answer", ""))))


@router.get("/console/assist/settings", response_class=HTMLResponse)
def settings_page(request: Request, session: PageAuth) -> Response:
    lgcode = _lgcode(session)
    values = services(request).assist.settings(session.staff, lgcode)
    return render(request, "assist_settings.html", session, values=values, errors={},
                  error=None)


@router.post("/console/assist/settings", response_class=HTMLResponse)
def save_settings(request: Request, session: PageAuth, form: PostedForm) -> Response:
    check_csrf(request, session, str(form.get("csrf_token", "")))
    lgcode = _lgcode(session)
    raw_threshold = str(form.get("threshold", "")).strip()
    threshold: object
    try:
        threshold = float(raw_threshold)
    except ValueError:
        threshold = raw_threshold
    values: dict[str, Any] = {
        "greeting_ja": str(form.get("greeting_ja", "")),
        "greeting_en": str(form.get("greeting_en", "")),
        "tone": str(form.get("tone", "polite")),
        "categories": [c.strip() for c in str(form.get("categories", "")).splitlines()
                       if c.strip()],
        "adopt_shared": form.get("adopt_shared") == "1",
        "threshold": threshold,
        "inquiry_url": str(form.get("inquiry_url", "")),
    }
    try:
        services(request).assist.save_settings(session.staff, lgcode, values)
    except KibanError as exc:
        return render(request, "assist_settings.html", session, status=exc.status,
                      values=values, errors=field_errors(exc), error=exc)
    return RedirectResponse("/console/assist/settings?saved=1", status_code=303)
