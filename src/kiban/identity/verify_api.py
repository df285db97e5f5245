"""Public verification of issued certificate documents (issue 5 part 6): /api/v1/verify.

No sign-in and no state change: anyone holding a certificate (a bank, an employer) can check
it. POST takes the PDF itself as the body; GET takes the municipality, serial and verification
code printed on it. A wrong code and an unknown serial get the same answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from kiban.core.errors import KibanError
from kiban.core.ratelimit import SlidingWindow
from kiban.documents.signing import MAX_PDF_BYTES
from kiban.web.deps import services

router = APIRouter(prefix="/api/v1/verify", tags=["verify"])

_VERDICT = {
    "description": "authentic: issued by this platform and unaltered; reason says why not (no_match, not_pdf, "
                   "unsigned, bad_signature, altered, unknown_signer, not_issued, ...) or 'withdrawn'",
}


# A verification code has 40 bits; limiting each client address to 30 code checks a minute
# (shared by the API and the page) makes guessing one hopeless while a bank checking a pile
# of paper copies is not slowed.
CODE_CHECKS_PER_MINUTE = 30


def check_code_rate(request: Request) -> None:
    limiter: SlidingWindow | None = getattr(request.app.state, "verify_code_limiter", None)
    if limiter is None:
        limiter = request.app.state.verify_code_limiter = SlidingWindow(CODE_CHECKS_PER_MINUTE)
    limiter.hit(request.client.host if request.client else "unknown")


class TooLarge(KibanError):
    def __init__(self) -> None:
        super().__init__(ja="ファイルが大きすぎます(10MBまで)。", en="The PDF is too large (10 MB at most).",
                         status=413, code="too-large")


async def read_limited(request: Request, limit: int = MAX_PDF_BYTES) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("", summary="Verify a certificate PDF (the body: application/pdf)",
             responses={200: _VERDICT},
             openapi_extra={"requestBody": {"required": True,
                                            "content": {"application/pdf": {"schema": {"type": "string",
                                                                                       "format": "binary"}}}}})
async def verify_pdf(request: Request) -> dict[str, Any]:
    pdf = await read_limited(request)
    return await run_in_threadpool(services(request).registry.verify_pdf, pdf)


@router.get("", summary="Verify a certificate by its serial and verification code", responses={200: _VERDICT})
def verify_code(request: Request,
                lgcode: Annotated[str, Query(pattern=r"^\d{6}$", description="地方公共団体コード")],
                serial: Annotated[str, Query(pattern=r"^[0-9A-Za-z-]{1,20}$")],
                code: Annotated[str, Query(min_length=1, max_length=20, description="検証コード XXXX-XXXX")],
                ) -> dict[str, Any]:
    check_code_rate(request)
    return services(request).registry.verify_code(lgcode, serial, code)
