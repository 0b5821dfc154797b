"""Outgoing mail over SMTP (aiosmtplib), for any service that needs to send some.

`CRM_SMTP_URL` says where: `smtp://[user:password@]host[:port]` (STARTTLS when the server
offers it; `?starttls=required` insists, `?starttls=off` never tries) or `smtps://` (TLS from
the first byte, port 465). `make run` points it at a local sink that keeps every message
under `<data-dir>/mail/`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from services.kernel.errors import ConfigurationError, Unavailable
from services.kernel.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None  # None: if the server offers it

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigurationError(f"bad SMTP URL {url!r} (want smtp://host:port or smtps://host:port)")
        implicit = parts.scheme == "smtps"
        mode = parse_qs(parts.query).get("starttls", ["auto"])[0]
        if mode not in ("auto", "required", "off"):
            raise ConfigurationError("starttls must be auto, required or off")
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit,
            start_tls=None if implicit or mode == "auto" else mode == "required",
        )


class Mailer:
    """Sends one message per call; raises Unavailable when the server cannot take it."""

    TIMEOUT = 15.0

    def __init__(self, settings: Settings) -> None:
        self.sender = settings.mail_from
        self.target = SmtpTarget.parse(settings.smtp_url) if settings.smtp_url else None
        if self.target is None and settings.environment == "production":
            raise ConfigurationError("CRM_SMTP_URL is required in production")

    @staticmethod
    def build(sender: str, to: str, subject: str, text: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip("> ") or "localhost")
        # Plain 7bit when it can be (links stay readable and clickable in any viewer).
        msg.set_content(text, cte="7bit" if text.isascii() and max(map(len, text.splitlines() or [""])) < 990
                        else "quoted-printable")
        return msg

    async def send(self, to: str, subject: str, text: str) -> None:
        if self.target is None:
            raise Unavailable("no SMTP server is configured (CRM_SMTP_URL)", reason="MAIL_NOT_CONFIGURED")
        t = self.target
        try:
            await aiosmtplib.send(
                self.build(self.sender, to, subject, text),
                hostname=t.host, port=t.port, username=t.username, password=t.password,
                use_tls=t.use_tls, start_tls=t.start_tls, timeout=self.TIMEOUT,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("mail to %s not sent: %s", to.split("@")[-1], exc)
            raise Unavailable("the mail server did not take the message", reason="MAIL_FAILED") from None
