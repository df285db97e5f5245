"""Outbound e-mail for procedure notifications: SMTP (smtplib), configured by
KIBAN_SMTP_URL (`smtp://host:port`, optionally `smtp://user:password@host:port`; unset:
no e-mail) and KIBAN_SMTP_FROM. A message names the application only by its identifier and
sends the resident to the portal: no personal data travels by e-mail, and none is logged."""

from __future__ import annotations

import logging
import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

log = logging.getLogger("kiban.procedures")


@dataclass(frozen=True)
class Mailer:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Mailer | None:
        env = os.environ if env is None else env
        url = env.get("KIBAN_SMTP_URL", "").strip()
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "") or not parts.hostname:
            raise ValueError("KIBAN_SMTP_URL must be smtp://host:port")
        return cls(parts.hostname, parts.port or 25, env.get("KIBAN_SMTP_FROM", "noreply@kiban.example"),
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)

    def send(self, to: str, subject: str, body: str) -> bool:
        """True when the server accepted the message; failures are logged without the address."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.username:
                    smtp.starttls()
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
            return True
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("notification e-mail not sent: %s", type(exc).__name__)
            return False


def state_mail(application_id: str, state_ja: str, state_en: str, portal_url: str) -> tuple[str, str]:
    """Subject and body: the application's identifier and new state, nothing personal."""
    subject = f"[Kiban] 申請の状態が変わりました / Your application was updated ({application_id[:8]})"
    body = (f"申請番号 {application_id} の状態が「{state_ja}」になりました。\n"
            f"詳しくは住民ポータルでご確認ください: {portal_url}\n\n"
            f"The state of application {application_id} is now \"{state_en}\".\n"
            f"See the resident portal for details: {portal_url}\n")
    return subject, body
