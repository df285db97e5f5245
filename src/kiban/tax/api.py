"""The resident tax over HTTP.

- Public, no sign-in: `POST /api/v1/tax/calc` — the calculator contract of issue 4 (the same
  input and output as `kiban tax calc`), rate-limited per client address.
- Staff (税務担当 of the municipality), the standard tax API (kiban/standard/kit/tax_checks.py):
  `POST /api/v1/municipalities/{lgcode}/tax/calculations` and
  `GET|PUT /api/v1/municipalities/{lgcode}/tax/settings/{fiscal_year}`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from kiban.core.errors import invalid
from kiban.core.ratelimit import SlidingWindow
from kiban.platform.auth import Session
from kiban.tax.calculator import TaxCalculator, calculator_output
from kiban.web.deps import api_session, services

router = APIRouter(tags=["tax"])
Auth = Annotated[Session, Depends(api_session)]
LgCode = Annotated[str, Path(pattern=r"^\d{6}$")]
MAX_BODY = 64 * 1024  # a calculation request is a few hundred bytes


def calculator(request: Request) -> TaxCalculator:
    state = request.app.state
    found: TaxCalculator | None = getattr(state, "tax_calculator", None)
    if found is None:
        svc = services(request)
        found = TaxCalculator(svc.db, svc.clock)
        state.tax_calculator = found
    return found


def limiter(request: Request) -> SlidingWindow:
    found: SlidingWindow | None = getattr(request.app.state, "tax_calc_limiter", None)
    if found is None:
        found = SlidingWindow()
        request.app.state.tax_calc_limiter = found
    return found


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise invalid("body", "リクエストが大きすぎます。", "The request body is too large.")
    try:
        return json.loads(raw or b"null")
    except (UnicodeDecodeError, ValueError):
        raise invalid("body", "JSON として読めません。", "The body is not valid JSON.") from None


@router.post("/api/v1/tax/calc", summary="Resident tax calculator (public, issue 4 contract)")
async def calc(request: Request) -> dict[str, Any]:
    limiter(request).hit(request.client.host if request.client else "unknown")
    body = await json_body(request)
    return calculator_output(body)


@router.post("/api/v1/municipalities/{lgcode}/tax/calculations",
             summary="Compute one taxpayer's resident tax (stores nothing)")
async def calculations(request: Request, session: Auth, lgcode: LgCode) -> dict[str, Any]:
    body = await json_body(request)
    svc = calculator(request)
    return await run_in_threadpool(svc.calculate, session.staff, lgcode, body)


@router.get("/api/v1/municipalities/{lgcode}/tax/settings/{fiscal_year}",
            summary="The municipality's tax settings for a fiscal year")
def get_settings(request: Request, session: Auth, lgcode: LgCode,
                 fiscal_year: str) -> dict[str, Any]:
    return calculator(request).settings(session.staff, lgcode, fiscal_year)


@router.put("/api/v1/municipalities/{lgcode}/tax/settings/{fiscal_year}",
            summary="Set 級地, 指定都市 and ordinance rates (validated against the law)")
async def put_settings(request: Request, session: Auth, lgcode: LgCode,
                       fiscal_year: str) -> dict[str, Any]:
    body = await json_body(request)
    svc = calculator(request)
    return await run_in_threadpool(svc.update_settings, session.staff, lgcode, fiscal_year, body)
