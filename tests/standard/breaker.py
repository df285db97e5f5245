"""A deliberately non-conforming server for the kit's own test: Kiban behind an ASGI layer
that breaks three named requirements and nothing else.

- JR-0406 (出生): every birth notification is refused.
- JR-0502 (除票の写し): a 除票 certificate is refused.
- JR-1903 (not allowed: physical deletion): DELETE on a household answers 204 as if deleted.
"""

from __future__ import annotations

import json
import re
from typing import Any

BROKEN = ("JR-0406", "JR-0502", "JR-1903")
Scope = dict[str, Any]


def _problem(status: int) -> tuple[int, bytes]:
    body = {"type": "https://vendor.example/problems/refused", "title": "Refused",
            "status": status, "title_ja": "受け付けません。", "title_en": "Refused."}
    return status, json.dumps(body).encode()


class Breaker:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "DELETE" and re.search(r"/households/[^/]+$", path):
            await self._answer(send, 204, b"")
            return
        if method == "POST" and path.endswith(("/changes/birth", "/certificates")):
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                data = {}
            if path.endswith("/changes/birth") or data.get("kind") == "joshu":
                await self._answer(send, *_problem(422))
                return
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/problem+json")] if body else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
