"""The public /verify page: upload a certificate PDF, or type the municipality code, serial and
verification code printed on it. No sign-in, and no state change (so no CSRF token is needed:
a forged request can learn nothing the requester could not ask directly)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from kiban.documents.signing import MAX_PDF_BYTES
from kiban.identity.verify_api import check_code_rate
from kiban.web.deps import optional_session, services
from kiban.web.pages import render

router = APIRouter(include_in_schema=False)

REASONS = {
    "ok": "真正な証明書です。",
    "withdrawn": "この証明書は発行元により取り消されています。",
    "no_match": "一致する証明書がありません(地方公共団体コード・証明書番号・検証コードを確認してください)。",
    "not_pdf": "PDFファイルではありません。",
    "oversized": "ファイルが大きすぎます(10MBまで)。",
    "unsigned": "電子署名がありません。",
    "multiple_signatures": "署名が複数あり、発行時の文書ではありません。",
    "unknown_document": "Kibanが発行した証明書ではありません。",
    "unknown_signer": "発行元の文書署名鍵による署名ではありません。",
    "bad_signature": "署名が検証できません(改ざんされた可能性があります)。",
    "altered": "署名の後に変更が加えられています。",
    "not_issued": "発行記録と一致しません。",
}


@router.get("/verify", response_class=HTMLResponse)
def form(request: Request) -> Response:
    return render(request, "verify.html", optional_session(request), result=None, reasons=REASONS, given={})


@router.post("/verify", response_class=HTMLResponse)
async def check(request: Request) -> Response:
    form = await request.form(max_files=1, max_fields=10)
    upload = form.get("pdf")
    given = {k: str(form.get(k) or "").strip() for k in ("lgcode", "serial", "code")}
    result: dict[str, Any]
    registry = services(request).registry
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_PDF_BYTES + 1)
        result = await run_in_threadpool(registry.verify_pdf, data)
    elif (re.fullmatch(r"\d{6}", given["lgcode"]) and re.fullmatch(r"[0-9A-Za-z-]{1,20}", given["serial"])
          and 0 < len(given["code"]) <= 20):
        check_code_rate(request)
        result = await run_in_threadpool(registry.verify_code, given["lgcode"], given["serial"], given["code"])
    else:
        result = {"authentic": False, "reason": "no_match"}
    return render(request, "verify.html", optional_session(request), result=result, reasons=REASONS,
                  given=given)
