"""A reference data provider for an outside agency: a small HTTP service that answers the hub.

It checks the hub's signature on every forwarded request, looks the person up by its own
agency-specific code, and answers with a signed reply echoing the request's hash. It records
each exchange it answered (番号法 第23条: both sides keep a record). The test suite and the
benchmark run it as a separate process:

    python -m kiban.linkage.provider CONFIG.json

CONFIG: {"member": "...", "key_pem": "...", "hub_certificate": "...", "port": 0,
         "records": {"<the provider's code>": {...data...}}, "port_file": "optional path"}
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI, Request
from fastapi.responses import Response

from kiban.linkage import model, protocol


def create_provider_app(member: str, key: ed25519.Ed25519PrivateKey, hub_certificate: str,
                        records: dict[str, dict[str, Any]]) -> FastAPI:
    hub_key = protocol.certificate_key(hub_certificate)
    app = FastAPI(title=f"Provider {member}", openapi_url=None)
    received: list[dict[str, str]] = []

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/received")
    def received_log() -> list[dict[str, str]]:
        """This provider's own record of the exchanges it answered."""
        return received

    @app.post("/exchange")
    async def exchange(request: Request) -> Response:
        body = await request.body()
        from_hub = request.headers.get(protocol.CLIENT_HEADER) == protocol.HUB_MEMBER
        if len(body) > protocol.MAX_MESSAGE_BYTES or not from_hub \
                or not protocol.verify(hub_key, body, request.headers.get(protocol.SIGNATURE_HEADER, "")):
            return Response(b'{"error":"not signed by the hub"}', status_code=401,
                            media_type="application/json")
        message = json.loads(body)
        if message.get("provider") != member or message.get("protocol") != model.PROTOCOL_VERSION:
            return Response(b'{"error":"not for this provider"}', status_code=400, media_type="application/json")
        received.append({"request_id": message["request_id"], "client": message["client"],
                         "item": message["item"], "subject": message["subject"],
                         "legal_basis": message["legal_basis"]})
        data = records.get(message["subject"])
        reply = protocol.provider_body(body, "ok" if data is not None else "not-found", data or {})
        return Response(reply, media_type="application/json",
                        headers={protocol.SIGNATURE_HEADER: protocol.sign(key, reply)})

    return app


def main(argv: list[str]) -> None:
    import uvicorn

    config = json.loads(Path(argv[0]).read_text())
    app = create_provider_app(config["member"], protocol.load_key(config["key_pem"].encode()),
                              config["hub_certificate"], config["records"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(config.get("port", 0))))
    if config.get("port_file"):
        Path(config["port_file"]).write_text(str(sock.getsockname()[1]))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
