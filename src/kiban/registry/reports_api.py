"""JSON API of the registry's statistics (JR-0601/0602), integration feeds (JR-0701/0703/0704),
batch reports (JR-0901/0902), migration over HTTP (JR-1001), extraction (JR-1004) and the
町字 master CSV import (JR-1006): /api/v1/municipalities/{lgcode}/...

Permissions are checked by the use cases: statistics need `dashboard`; feeds, extracts and
the migration export `registry.export`; reports and the migration import
`registry.authority`; the 町字 import `municipality.manage`."""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from typing import Annotated, Any, Literal, TextIO, cast

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from kiban.core.errors import FieldError, Forbidden, KibanError, ValidationFailed
from kiban.platform.auth import Session
from kiban.privacy.access import PERSON_FIELDS, PersonalRead, personal_read, resident_ids
from kiban.registry.migration import RegistryMigration
from kiban.registry.reports import FEED_LIMIT, FEED_MAX, Reports
from kiban.web.deps import api_session, idempotent, services

router = APIRouter(prefix="/api/v1/municipalities/{lgcode}", tags=["registry"])
LgCode = Annotated[str, Path(pattern=r"^\d{6}$", description="地方公共団体コード (6 digits)")]
Auth = Annotated[Session, Depends(api_session)]
Since = Annotated[str, Query(min_length=1, max_length=40,
                             description="ISO date (from the start of that day, JST) or date-time")]
AfterSeq = Annotated[int, Query(ge=0, le=2**62, description="next_after_seq of the previous page")]
Limit = Annotated[int, Query(ge=1, le=FEED_MAX, description="change events per page")]
SPOOL = 16 * 1024 * 1024  # bytes kept in memory before a streamed file goes to disk
MAX_LISTED_ERRORS = 200
# Reads of personal data: purpose checked before, the residents read recorded after (issue 9).
FeedRead = Annotated[PersonalRead, Depends(personal_read("system_integration", PERSON_FIELDS))]
ReportRead = Annotated[PersonalRead, Depends(personal_read("resident_registration",
                                                           PERSON_FIELDS))]


def _reports(request: Request) -> Reports:
    svc = services(request)
    return Reports(svc.db, svc.clock)


MAX_BODY = 64 * 1024 * 1024  # a migration file of a large municipality, compressed by nobody


async def raw_body(request: Request, lgcode: LgCode, session: Auth) -> bytes:
    """The request body as sent (read in the event loop; the handlers are threadpool
    functions). Only after the caller is known to belong to the municipality, and never more
    than MAX_BODY: nobody else can make the server hold a large body."""
    if session.staff.lgcode != lgcode:
        raise Forbidden("この地方公共団体のデータは扱えません。",
                        "You cannot act for this municipality.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> KibanError:
    return KibanError(ja="送信されたデータが大きすぎます。", en="The request body is too large.",
                      status=413, code="too-large")


RawBody = Annotated[bytes, Depends(raw_body)]


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed([FieldError("body", "文字コードは UTF-8 にしてください。",
                                           "The body must be UTF-8 text.")]) from None


def _streamed(write: Callable[[TextIO], Any], media_type: str, filename: str) -> Response:
    """Writes a (possibly large) file to a spooled temporary file, then streams it, so a whole
    registry never has to sit in memory as one string."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL, mode="w+", encoding="utf-8",
                                          newline="")
    try:
        write(cast(TextIO, spool))
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def chunks() -> Iterator[bytes]:
        try:
            while block := spool.read(256 * 1024):
                yield block.encode("utf-8")
        finally:
            spool.close()

    return StreamingResponse(chunks(), media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


# --- statistics (3.6) ------------------------------------------------------------------------------


@router.get("/statistics/population", summary="住民基本台帳人口: by 町字, sex and age band — JR-0601")
def population(request: Request, lgcode: LgCode, session: Auth,
               as_of: Annotated[date | None, Query(description="基準日 (default today)")] = None
               ) -> dict[str, Any]:
    return _reports(request).population(session.staff, lgcode, as_of)


@router.get("/statistics/changes", summary="Changes in a period by kind — JR-0602")
def change_statistics(request: Request, lgcode: LgCode, session: Auth,
                      start: Annotated[date, Query(alias="from", description="first 異動日")],
                      end: Annotated[date, Query(alias="to", description="last 異動日")]
                      ) -> dict[str, Any]:
    return _reports(request).changes(session.staff, lgcode, start, end)


# --- integration (3.7) -----------------------------------------------------------------------------


@router.get("/integration/juki-net/notifications",
            summary="本人確認情報 update notices for the 住基ネット — JR-0701")
def juki_net_notifications(request: Request, lgcode: LgCode, session: Auth, since: Since,
                           read: FeedRead, after_seq: AfterSeq = 0,
                           limit: Limit = FEED_LIMIT) -> dict[str, Any]:
    with read.transaction():  # the read and its record commit together
        result = _reports(request).juki_net_notifications(session.staff, lgcode, since, after_seq,
                                                          limit)
        read.record(resident_ids(result["items"]))
    return result


@router.get("/integration/changes", summary="Change feed for other systems — JR-0703")
def change_feed(request: Request, lgcode: LgCode, session: Auth, since: Since, read: FeedRead,
                after_seq: AfterSeq = 0, limit: Limit = FEED_LIMIT) -> dict[str, Any]:
    with read.transaction():  # the read and its record commit together
        result = _reports(request).change_feed(session.staff, lgcode, since, after_seq, limit)
        read.record(resident_ids(result["items"]))
    return result


@router.get("/integration/fuhyo-notifications",
            summary="Notices to the 本籍地 for the 戸籍の附票 — JR-0704")
def fuhyo_notifications(request: Request, lgcode: LgCode, session: Auth, since: Since,
                        read: FeedRead, after_seq: AfterSeq = 0,
                        limit: Limit = FEED_LIMIT) -> dict[str, Any]:
    with read.transaction():  # the read and its record commit together
        result = _reports(request).fuhyo_notifications(session.staff, lgcode, since, after_seq, limit)
        read.record(resident_ids(result["items"]))
    return result


# --- batch reports (3.9) ---------------------------------------------------------------------------


@router.get("/reports/residence-expired",
            summary="Foreign residents whose period of stay has passed — JR-0901")
def residence_expired(request: Request, lgcode: LgCode, session: Auth, read: ReportRead,
                      as_of: Annotated[date | None, Query(description="基準日 (default today)")]
                      = None) -> dict[str, Any]:
    with read.transaction():  # the read and its record commit together
        result = _reports(request).residence_expired(session.staff, lgcode, as_of)
        read.record(resident_ids(result["items"]))
    return result


@router.get("/reports/daily-changes", summary="Changes recorded on one day — JR-0902")
def daily_changes(request: Request, lgcode: LgCode, session: Auth, read: ReportRead,
                  on: Annotated[date | None, Query(description="the day (default today)")] = None
                  ) -> dict[str, Any]:
    with read.transaction():  # the read and its record commit together
        result = _reports(request).daily_changes(session.staff, lgcode, on)
        read.record(resident_ids(result["items"]))
    return result


# --- migration over HTTP (JR-1001) -----------------------------------------------------------------

# JSON Lines has no registered media type; it goes as UTF-8 text (the file name says .jsonl),
# so clients that parse any "json" media type as one JSON document leave it alone.
_MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


@router.get("/migration/export", summary="The whole registry in the standard migration layout — "
            "JR-1001", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}})
def migration_export(request: Request, lgcode: LgCode, session: Auth, read: FeedRead,
                     format: Literal["jsonl", "csv"] = "jsonl") -> Response:
    svc = services(request)
    migration = RegistryMigration(svc.db, svc.clock)
    written: list[int] = []
    with read.transaction():  # the read and its record commit together
        response = _streamed(lambda out: written.append(migration.export(session.staff, lgcode, out,
                                                                         format)),
                             _MEDIA[format], f"registry-{lgcode}.{format}")
        read.record_bulk({"kind": "migration_export", "format": format, "residents": written[0]})
    return response


@router.post("/migration/import", status_code=201,
             summary="Import a file in the standard migration layout, all or nothing — JR-1001",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-ndjson": {"schema": {"type": "string"}},
                 "text/csv": {"schema": {"type": "string"}}}}})
def migration_import(request: Request, lgcode: LgCode, session: Auth, body: RawBody,
                     format: Literal["jsonl", "csv"] | None = Query(
                         None, description="default: csv for a text/csv body, else jsonl"),
                     validate_only: bool = False) -> Response:
    """Validates every record; any error and nothing is imported (422 naming each bad line
    and field as `lines[N].field`). With `validate_only`, only the report (200)."""
    svc = services(request)
    migration = RegistryMigration(svc.db, svc.clock)
    fmt = format or ("csv" if request.headers.get("content-type", "").lower().startswith(
        "text/csv") else "jsonl")
    text = _text(body)
    if validate_only:
        report = migration.validate(session.staff, lgcode, io.StringIO(text, newline=""), fmt)
        return JSONResponse(report.to_dict())

    def run() -> tuple[int, Any]:
        result = migration.import_(session.staff, lgcode, io.StringIO(text, newline=""), fmt)
        if result.errors:
            raise KibanError(
                ja=f"取込みファイルに誤りが{len(result.errors)}件あります。何も取り込んでいません。",
                en=f"The file has {len(result.errors)} errors; nothing was imported.",
                status=422, code="validation", errors=[
                    FieldError(f"lines[{e.line}].{e.field}", e.ja, e.en)
                    for e in result.errors[:MAX_LISTED_ERRORS]])
        return 201, result.to_dict()

    digest = {"format": fmt, "sha256": hashlib.sha256(body).hexdigest()}
    return idempotent(request, lgcode, digest, run)


# --- extraction (JR-1004) ---------------------------------------------------------------------------


class ExtractConditions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=100,
                             description="prefix of the family or given name, kanji or kana")
    birth_date: date | None = None
    born_from: date | None = None
    born_to: date | None = None
    sex: Literal["1", "2"] | None = None
    town_code: str | None = Field(default=None, pattern=r"^[0-9]{1,12}$")
    status: list[Literal["active", "removed"]] = Field(default=["active"], min_length=1,
                                                       max_length=2)
    foreign: bool | None = Field(default=None, description="only foreign (true) or Japanese (false)")


class ExtractRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conditions: ExtractConditions = Field(default_factory=ExtractConditions)
    format: Literal["csv"] = "csv"
    columns: list[str] = Field(min_length=1, max_length=60,
                               description="standard item IDs: person.family_name, ...")


@router.post("/extracts", summary="Extract records as CSV with the standard item IDs — JR-1004",
             response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
def extract(request: Request, lgcode: LgCode, session: Auth, body: ExtractRequest,
            read: ReportRead) -> Response:
    reports = _reports(request)
    conditions = body.conditions.model_dump()
    with read.transaction():  # the read and its record commit together
        response = _streamed(lambda out: reports.extract_csv(session.staff, lgcode, body.columns,
                                                             conditions, out),
                             "text/csv; charset=utf-8", f"extract-{lgcode}.csv")
        # Which conditions were used, never their values (a name searched for is personal data).
        read.record_bulk({"kind": "extract", "conditions": sorted(
            k for k, v in conditions.items() if v not in (None, [], ["active"]))}, body.columns)
    return response


# --- CSV import of the 町字 master (JR-1006) ----------------------------------------------------------


@router.post("/imports/towns", summary="Replace the 町字 master from CSV, validated, all or "
             "nothing — JR-1006",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}}}}})
def import_towns(request: Request, lgcode: LgCode, session: Auth, body: RawBody
                 ) -> dict[str, Any]:
    return _reports(request).import_towns(session.staff, lgcode, _text(body))
