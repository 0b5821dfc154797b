"""The mails the auth service sends, and sending them off the request path.

Links point at the product's web address (CRM_PUBLIC_URL), whose pages post the token to the
API (`/v1/auth/password/confirm`, `/v1/auth/email/verify`). Mail goes out after the request's
transaction commits, in the background, so an answer takes the same time whether or not a mail
was sent (no account enumeration by timing). A mail lost to a crash in between is asked for
again by its user; mails of invitations are retried by their durable consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from urllib.parse import quote

from services.kernel.mailer import Mailer

log = logging.getLogger(__name__)

PRODUCT = "CRM"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str


def _link(base: str, page: str, token: str) -> str:
    return f"{base}/{page}?token={quote(token)}"


def password_reset(base: str, to: str, token: str, tenant_name: str) -> Mail:
    return Mail(to, f"{PRODUCT}: reset your password", (
        f"Someone (hopefully you) asked to reset the password of {to} at {tenant_name}.\n\n"
        f"Set a new password here (the link works once, for one hour):\n{_link(base, 'reset-password', token)}\n\n"
        "If you did not ask, ignore this mail: your password stays as it is.\n"
        f"Token: {token}\n"))


def email_verification(base: str, to: str, token: str) -> Mail:
    return Mail(to, f"{PRODUCT}: confirm your email address", (
        f"Confirm that {to} is your address (the link works once, for three days):\n"
        f"{_link(base, 'verify-email', token)}\n\nToken: {token}\n"))


def invitation(base: str, to: str, token: str, tenant_name: str) -> Mail:
    return Mail(to, f"{PRODUCT}: you are invited to {tenant_name}", (
        f"You have an account at {tenant_name}. Choose your password to sign in "
        f"(the link works once, for seven days):\n{_link(base, 'set-password', token)}\n\nToken: {token}\n"))


class Postman:
    """Sends mails in background tasks; `stop` waits for the ones under way."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, mail: Mail) -> None:
        await self.mailer.send(mail.to, mail.subject, mail.text)

    def later(self, mail: Mail) -> None:
        async def run() -> None:
            try:
                await self.send(mail)
            except Exception:
                log.warning("mail %r not sent", mail.subject, exc_info=True)

        task = asyncio.create_task(run(), name="auth-mail")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(list(self._tasks), timeout=10)
