"""Publishing open data from the staff console (/console/opendata): a CSV upload (a
multipart form; UTF-8 or Shift_JIS, detected) and editing the current version's rows in a
form (change, add, delete rows; add an own `x-` column). Both go through the same service
call and checks as the JSON upload route: every bad row and field is shown, beside its cell,
and nothing is published until everything passes; each publication is a new version, and the
history is on the page.

Staff act only for their own municipality (the page takes no municipality from the request),
need `opendata.publish` (団体管理者, DX推進担当), and every form carries the session's CSRF
token. A refused upload is shown in the row editor, so the bad rows can be fixed there."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from kiban.core.errors import KibanError, NotFound
from kiban.opendata import model
from kiban.opendata.api import opendata
from kiban.opendata.service import CONSOLE_FILENAME, UploadRejected
from kiban.platform.auth import Permission, Session
from kiban.web.deps import check_csrf, services
from kiban.web.pages import PageAuth, render

router = APIRouter(prefix="/console/opendata", include_in_schema=False)
EDIT_MAX_ROWS = 500  # more rows than this: edit the CSV and upload it
BLANK_ROWS = 3  # empty rows offered at the end of the editor (more with 「行を追加」)
FORM_OVERHEAD = 64 * 1024  # multipart boundaries, the other fields
MAX_EDIT_BODY = 4 * model.MAX_UPLOAD_BYTES  # the row editor's form, URL-encoded
MAX_COLUMNS = 100
FILLED = ("全国地方公共団体コード", "地方公共団体名")  # pre-filled in new rows


class TooLarge(KibanError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"送信されたデータが大きすぎます(上限 {limit:,} バイト)。",
                         f"request too large (limit {limit} bytes)", status=413,
                         code="too-large", field="file")


class BadForm(KibanError):
    def __init__(self) -> None:
        super().__init__("フォームの内容を読み取れません。", "malformed form", status=400,
                         code="bad-request", field="file")


def _lgcode(session: Session) -> str:
    """The staff member's own municipality, if they may publish its open data."""
    staff = session.staff
    staff.require(Permission.OPENDATA_PUBLISH, staff.lgcode)
    if staff.lgcode is None:  # pragma: no cover - OPENDATA_PUBLISH roles belong to one
        raise NotFound("地方公共団体が見つかりません。", "No municipality.")
    return str(staff.lgcode)


async def _limited_form(request: Request, limit: int, *, multipart: bool,
                        max_fields: int) -> FormData:
    """The posted form, read only up to `limit` bytes (a larger body is refused before it
    is parsed or spooled anywhere)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)
        chunks.append(chunk)
    body = b"".join(chunks)

    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if multipart:
            if kind != "multipart/form-data":
                raise BadForm()
            return await MultiPartParser(request.headers, replay(), max_files=1,
                                         max_fields=max_fields,
                                         max_part_size=FORM_OVERHEAD).parse()
        if kind != "application/x-www-form-urlencoded":
            raise BadForm()
        return await FormParser(request.headers, replay(), max_fields=max_fields,
                                max_part_size=limit).parse()
    except MultiPartException as exc:
        raise BadForm() from exc


async def _refusal(request: Request, session: Session, schema_name: str,
                   error: KibanError) -> Response:
    return await run_in_threadpool(lambda: _page(request, session, schema_name,
                                                 status=error.status, error=error))


def _municipality_name(request: Request, lgcode: str) -> str:
    muni = services(request).municipalities.get(lgcode)
    return f"{muni['prefecture']}{muni['name']}"


def _blank(columns: list[str], defaults: dict[str, str]) -> list[str]:
    return [defaults.get(c, "") for c in columns]


def _is_blank(row: list[str], columns: list[str]) -> bool:
    return all(not v.strip() for c, v in zip(columns, row, strict=False) if c not in FILLED)


def _cell_errors(problems: list[model.Problem]) -> tuple[dict[str, str], dict[int, list[str]]]:
    """Problems by cell ("row:column") and by row (for a row-level problem)."""
    cells: dict[str, str] = {}
    rows: dict[int, list[str]] = {}
    for p in problems:
        if p.row:
            if p.field == "row":
                rows.setdefault(p.row, []).append(p.ja)
            else:
                cells.setdefault(f"{p.row}:{p.field}", p.ja)
    return cells, rows


def _page(request: Request, session: Session, schema_name: str, *, status: int = 200,
          columns: list[str] | None = None, rows: list[list[str]] | None = None,
          problems: list[model.Problem] | None = None, source: str = "",
          title: str | None = None, notes: str | None = None, message: str = "",
          error: KibanError | None = None, blank: int = BLANK_ROWS) -> Response:
    """The dataset's console page. Without `rows`, the editor holds the current version."""
    lgcode = _lgcode(session)
    svc = opendata(request)
    schema = svc.schema(schema_name)
    current_columns, records, found = svc.current_table(lgcode, schema.name)
    defaults = {"全国地方公共団体コード": lgcode,
                "地方公共団体名": _municipality_name(request, lgcode)}
    if rows is None:
        columns = current_columns
        rows = [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in records]
    assert columns is not None
    editable = len(rows) <= EDIT_MAX_ROWS and len(columns) <= MAX_COLUMNS
    if editable:
        rows = [*rows, *(_blank(columns, defaults) for _ in range(blank))]
    cells, row_errors = _cell_errors(problems or [])
    required = {f.name for f in schema.fields if f.required}
    return render(request, "opendata_console_dataset.html", session, status=status,
                  schema=schema, d=found, columns=columns, rows=rows if editable else [],
                  row_count=len(rows), editable=editable, max_rows=EDIT_MAX_ROWS,
                  problems=problems or [], cells=cells, row_errors=row_errors,
                  source=source, message=message, error=error, required=required,
                  title=found["title"] if title is None and found else (title or ""),
                  notes=found["notes"] if notes is None and found else (notes or ""),
                  max_bytes=model.MAX_UPLOAD_BYTES, console_filename=CONSOLE_FILENAME,
                  own_columns=[c for c in columns if model.is_extra_column(c)])


@router.get("", response_class=HTMLResponse)
def index(request: Request, session: PageAuth) -> Response:
    lgcode = _lgcode(session)
    svc = opendata(request)
    _, found = svc.search(lgcodes=[lgcode], limit=100, order=[("name", False)])
    by_schema = {d["schema_name"]: d for d in found}
    schemas = sorted(svc.schemas.values(), key=lambda s: s.title)
    return render(request, "opendata_console.html", session, schemas=schemas,
                  datasets=by_schema, lgcode=lgcode, generated="population_by_area_age")


@router.get("/{schema_name}", response_class=HTMLResponse)
def dataset(request: Request, session: PageAuth, schema_name: str,
            published: int = 0) -> Response:
    return _page(request, session, schema_name,
                 message=f"第{published}版を公開しました。" if published > 0 else "")


@router.post("/{schema_name}/upload")
async def upload(request: Request, session: PageAuth, schema_name: str) -> Response:
    """A CSV file from the console. Refused: the page with every problem and, when the file
    could be read as a table, its rows in the editor with the bad cells marked."""
    _lgcode(session)  # the role, before reading the body
    try:
        form = await _limited_form(request, model.MAX_UPLOAD_BYTES + FORM_OVERHEAD,
                                   multipart=True, max_fields=10)
    except (TooLarge, BadForm) as exc:
        # Refused unread, so no CSRF token to check: the answer changes nothing.
        return await _refusal(request, session, schema_name, exc)
    check_csrf(request, session, str(form.get("csrf_token", "")))
    file = form.get("file")
    data = await file.read() if isinstance(file, UploadFile) else b""
    filename = (file.filename or "") if isinstance(file, UploadFile) else ""
    await form.close()
    title, notes = str(form.get("title", "")), str(form.get("notes", ""))
    return await run_in_threadpool(
        lambda: _publish_upload(request, session, schema_name, data, filename, title, notes))


def _publish_upload(request: Request, session: Session, schema_name: str, data: bytes,
                    filename: str, title: str, notes: str) -> Response:
    lgcode = _lgcode(session)
    svc = opendata(request)
    svc.schema(schema_name)  # 404 before anything else
    if not data:
        return _page(request, session, schema_name, status=422, title=title, notes=notes,
                     error=KibanError("CSV ファイルを選んでください。", "choose a CSV file",
                                      status=422, field="file"))
    try:
        done = svc.publish_csv(session.staff, lgcode, schema_name, data, title=title,
                               notes=notes, filename=filename)
    except UploadRejected as exc:
        table = model.read_table(data)
        header_bad = any(p.row == 0 for p in exc.problems)
        if table is None or header_bad:
            return _page(request, session, schema_name, status=422, problems=exc.problems,
                         source="upload", title=title, notes=notes)
        header, rows = table
        schema = svc.schema(schema_name)
        columns = [*schema.field_names, *(h for h in header if model.is_extra_column(h))]
        index = {h: i for i, h in enumerate(header)}
        grid = [[r[index[c]] if c in index and index[c] < len(r) else "" for c in columns]
                for r in rows]
        return _page(request, session, schema_name, status=422, columns=columns, rows=grid,
                     problems=exc.problems, source="upload", title=title, notes=notes,
                     blank=0)
    return RedirectResponse(f"/console/opendata/{schema_name}?published={done.version}",
                            status_code=303)


@router.post("/{schema_name}/rows")
async def edit_rows(request: Request, session: PageAuth, schema_name: str) -> Response:
    """The row editor: `action` publish (check, then publish as the next version), check
    (only check) or add (more empty rows, and an own column if one is named)."""
    _lgcode(session)  # the role, before reading the body
    try:
        form = await _limited_form(request, MAX_EDIT_BODY, multipart=False,
                                   max_fields=(EDIT_MAX_ROWS + 50) * (MAX_COLUMNS + 1))
    except (TooLarge, BadForm) as exc:
        # Refused unread, so no CSRF token to check: the answer changes nothing.
        return await _refusal(request, session, schema_name, exc)
    check_csrf(request, session, str(form.get("csrf_token", "")))
    return await run_in_threadpool(lambda: _edit(request, session, schema_name, form))


def _edit(request: Request, session: Session, schema_name: str, form: FormData) -> Response:
    lgcode = _lgcode(session)
    svc = opendata(request)
    schema = svc.schema(schema_name)
    columns = [str(c) for c in form.getlist("column")][:MAX_COLUMNS]
    # The standard columns are always there, in the schema's order; own columns after them.
    columns = [*schema.field_names, *(c for c in columns if c not in schema.field_names)]
    try:
        count = int(str(form.get("rows", "0")))
    except ValueError:
        count = -1
    if not 0 <= count <= EDIT_MAX_ROWS + 50:  # never cut rows off silently
        return _page(request, session, schema_name, status=422, error=KibanError(
            f"画面で編集できるのは {EDIT_MAX_ROWS} 行までです。CSV をアップロードしてください。",
            f"rows: 0 to {EDIT_MAX_ROWS} rows in the editor; upload a CSV", status=422,
            field="rows"))
    deleted = {str(v) for v in form.getlist("delete")}
    rows = []
    for i in range(count):
        if str(i) in deleted:
            continue
        row = [str(form.get(f"r{i}c{j}", ""))[:2000] for j in range(len(columns))]
        rows.append(row)
    action = str(form.get("action", "publish"))
    title, notes = str(form.get("title", ""))[:200], str(form.get("notes", ""))[:2000]
    if action == "add":
        rows = [r for r in rows if not _is_blank(r, columns)]  # blank rows are offered anew
        new = str(form.get("new_column", "")).strip()
        if new and not model.is_extra_column(new):
            return _page(request, session, schema_name, status=422, columns=columns,
                         rows=rows, title=title, notes=notes, error=KibanError(
                             f"独自の列名は「{model.EXTRA_PREFIX}」で始め、空白やカンマを含めないでください({new})。",
                             f"an own column starts with {model.EXTRA_PREFIX!r}: {new!r}",
                             status=422, field="new_column"))
        if new and new not in columns and len(columns) < MAX_COLUMNS:
            columns.append(new)
            rows = [[*r, ""] for r in rows]
        return _page(request, session, schema_name, columns=columns, rows=rows, title=title,
                     notes=notes, blank=BLANK_ROWS * 2)
    rows = [r for r in rows if not _is_blank(r, columns)]
    if len(rows) > EDIT_MAX_ROWS:
        return _page(request, session, schema_name, status=422, error=KibanError(
            f"画面で編集できるのは {EDIT_MAX_ROWS} 行までです。CSV をアップロードしてください。",
            f"at most {EDIT_MAX_ROWS} rows in the editor: upload a CSV", status=422,
            field="rows"))
    if action == "check":
        checked = svc.check(lgcode, schema_name, svc.rows_csv(columns, rows))
        return _page(request, session, schema_name, status=200 if checked.ok else 422,
                     columns=columns, rows=rows, problems=checked.problems, source="edit",
                     title=title, notes=notes, blank=0 if checked.problems else BLANK_ROWS,
                     message="問題はありません(まだ公開していません)。" if checked.ok else "")
    try:
        done = svc.publish_rows(session.staff, lgcode, schema_name, columns, rows,
                                title=title, notes=notes)
    except UploadRejected as exc:
        return _page(request, session, schema_name, status=422, columns=columns, rows=rows,
                     problems=exc.problems, source="edit", title=title, notes=notes, blank=0)
    return RedirectResponse(f"/console/opendata/{schema_name}?published={done.version}",
                            status_code=303)
