"""The test CA's revocation services over HTTP (demo and test mode; 404 in production, where
J-LIS and its platform operators serve them): the CRL at the distribution point written into
every certificate (RFC 5280, DER), and an OCSP responder (RFC 6960: POST, and GET with the
base64 request in the path, appendix A.1)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from kiban.identity import service, testca
from kiban.web.deps import services

router = APIRouter(prefix="/pki", tags=["pki"], include_in_schema=False)
MAX_OCSP_REQUEST = 10_000


def _ca(request: Request) -> testca.TestCA:
    mode = services(request).settings.mode
    if mode == "production":
        raise HTTPException(404, "no test CA in production mode")
    ca = testca.TestCA(service.test_ca_dir(mode))
    if not ca.exists():
        raise HTTPException(404, "no test CA")
    return ca


@router.get("/crl/root.crl")
def crl(request: Request) -> Response:
    ca = _ca(request)
    return Response(ca.crl_der(services(request).clock.now()), media_type="application/pkix-crl",
                    headers={"Cache-Control": "max-age=60"})


def _answer(request: Request, body: bytes) -> Response:
    der = _ca(request).ocsp_response(body, services(request).clock.now())
    return Response(der, media_type="application/ocsp-response", headers={"Cache-Control": "no-store"})


@router.post("/ocsp")
async def ocsp_post(request: Request) -> Response:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_OCSP_REQUEST:
            raise HTTPException(413, "OCSP request too large")
    return await run_in_threadpool(_answer, request, body)


@router.get("/ocsp/{encoded:path}")
def ocsp_get(request: Request, encoded: str) -> Response:
    try:
        body = base64.b64decode(unquote(encoded), validate=True)
    except (binascii.Error, ValueError):
        body = b""  # answered as malformedRequest
    return _answer(request, body[:MAX_OCSP_REQUEST])
