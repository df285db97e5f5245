"""Issue 7 pages: the resident fills the accessible form rendered from the JSON Schema, saves
a draft, sees field errors, signs with the (server-side, demo) virtual card; the clerk works
the queue with CSRF-protected forms; state changes reach the portal and an SMTP sink, with no
personal data in the e-mail."""

from __future__ import annotations

import email
import email.policy
import re
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from kiban.identity import testca
from kiban.procedures.catalog import load_catalog
from kiban.procedures.notify import Mailer

from .procedures_kit import Env

HTML = {"Accept": "text/html"}


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_resident_applies_in_the_portal_and_the_clerk_approves(lite: Env, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    card = tmp_path / "demo-card.p12"
    card.write_bytes(testca.write_card(lite.cards["taro"], "KIBANTEST1"))
    monkeypatch.setenv("KIBAN_PROCEDURES_DEMO_CARD", str(card))
    c = lite.client
    assert c.get("/portal/procedures", headers=HTML).status_code == 303  # not signed in
    lite.login()
    home = c.get("/portal/procedures", headers=HTML)
    assert home.status_code == 200 and "住民票の写しの交付請求" in home.text
    for procedure_id in load_catalog():  # every catalog form renders, each field labelled
        page = c.get(f"/portal/procedures/apply/{procedure_id}", headers=HTML)
        assert page.status_code == 200
        assert page.text.count("<label for=") == len(load_catalog()[procedure_id].fields()) + 1  # + e-mail
    form = c.get("/portal/procedures/apply/juminhyo-request", headers=HTML)
    assert form.status_code == 200
    # Every field has a label; required ones are marked.
    for name in ("purpose", "scope", "copies", "include_honseki"):
        assert f'<label for="f-{name}">' in form.text and f'id="f-{name}"' in form.text
    token = csrf(form.text)
    # No CSRF token: refused.
    assert c.post("/portal/procedures/apply/juminhyo-request", data={"purpose": "x"}).status_code == 403
    # Invalid input: errors beside the fields, the input kept.
    bad = c.post("/portal/procedures/apply/juminhyo-request", headers=HTML,
                 data={"csrf_token": token, "purpose": "就職", "scope": "self", "copies": "9", "action": "submit"})
    assert bad.status_code == 422
    assert 'id="e-copies"' in bad.text and 'aria-invalid="true"' in bad.text and 'value="就職"' in bad.text
    draft_id = re.search(r'name="draft_id" value="([0-9a-f]+)"', bad.text)
    assert draft_id
    saved = c.post("/portal/procedures/apply/juminhyo-request", headers=HTML,
                   data={"csrf_token": token, "draft_id": draft_id.group(1), "purpose": "就職", "scope": "self",
                         "copies": "1", "action": "save"})
    assert saved.status_code == 200 and 'id="draft-saved"' in saved.text
    done = c.post("/portal/procedures/apply/juminhyo-request", headers=HTML,
                  data={"csrf_token": token, "draft_id": draft_id.group(1), "purpose": "就職", "scope": "self",
                        "copies": "1", "action": "submit"})
    assert done.status_code == 303, done.text
    status_url = done.headers["location"]
    app_id = status_url.rsplit("/", 1)[1]
    assert app_id == draft_id.group(1)
    assert 'data-state="submitted"' in c.get(status_url, headers=HTML).text
    # The clerk's console.
    assert c.post("/login", data={"username": "clerk-a", "password": "correct-horse-battery"}).status_code == 303
    queue = c.get("/console/procedures", headers=HTML, params={"state": "submitted"})
    assert queue.status_code == 200 and app_id[:8] in queue.text
    page = c.get(f"/console/procedures/{app_id}", headers=HTML)
    assert "山田 太郎" in page.text and "jumin/residence" in page.text
    staff_token = csrf(page.text)
    assert c.post(f"/console/procedures/{app_id}/claim", data={}).status_code == 403  # no CSRF token
    assert c.post(f"/console/procedures/{app_id}/claim", data={"csrf_token": staff_token}).status_code == 303
    assert c.post(f"/console/procedures/{app_id}/approve", data={"csrf_token": staff_token}).status_code == 303
    status = c.get(status_url, headers=HTML).text
    assert 'data-state="approved"' in status and 'id="document"' in status
    pdf = c.get(f"{status_url}/document.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "承認" in c.get("/portal/procedures", headers=HTML).text


class _Sink(socketserver.StreamRequestHandler):
    """A minimal SMTP server that keeps each message's DATA."""

    messages: ClassVar[list[str]] = []

    def handle(self) -> None:
        self.wfile.write(b"220 sink\r\n")
        data: list[str] | None = None
        while line := self.rfile.readline():
            text = line.decode("utf-8", "replace")
            if data is not None:
                if text in (".\r\n", ".\n"):
                    self.messages.append("".join(data))
                    data = None
                    self.wfile.write(b"250 ok\r\n")
                else:
                    data.append(text)
                continue
            verb = text[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 sink\r\n")
            elif verb == "DATA":
                data = []
                self.wfile.write(b"354 go\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_sink() -> Iterator[tuple[str, list[str]]]:
    _Sink.messages = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"smtp://127.0.0.1:{server.server_address[1]}", _Sink.messages
    finally:
        server.shutdown()
        server.server_close()


def test_every_state_change_is_mailed_without_personal_data(lite: Env, smtp_sink: tuple[str, list[str]]) -> None:
    url, messages = smtp_sink
    procedures = lite.client.app.state.services.procedures  # type: ignore[attr-defined]
    procedures.mailer = Mailer.from_env({"KIBAN_SMTP_URL": url})
    lite.login()
    app = lite.submit("inquiry", email="taro@example.jp").json()
    lite.staff_post(app["id"], "claim")
    lite.staff_post(app["id"], "request-correction", reason="件名を具体的に")
    assert len(messages) == 3
    for raw in messages:
        message = email.message_from_string(raw, policy=email.policy.default)
        text = message.get_content()
        assert message["To"] == "taro@example.jp" and app["id"] in text
        assert "山田" not in text and "ごみ" not in text and "件名を具体的に" not in text
    assert Mailer.from_env({}) is None  # disabled when unset
    # An unreachable server is logged (no address) and does not fail the step.
    procedures.mailer = Mailer("127.0.0.1", 1, "noreply@kiban.example", timeout=1)
    assert lite.submit("juminhyo-request", email="taro@example.jp").status_code == 201
    assert len(messages) == 3
