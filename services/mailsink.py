"""A local SMTP server that keeps every message it receives, for `make run` and the tests.

It is a real SMTP peer (aiosmtpd), so the services send mail exactly as they would to a
production relay. Each message is written to `<folder>/<time>-<n>.eml` (open it with any mail
program, or read the links in it as text) and kept in memory for tests (`wait_for`).
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _Keeper:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        self.sink.keep(raw if isinstance(raw, bytes) else raw.encode(), list(envelope.rcpt_tos))
        return "250 Message accepted"


class MailSink:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.messages: list[EmailMessage] = []
        self._lock = threading.Condition()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=off"

    def start(self) -> MailSink:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(_Keeper(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def keep(self, raw: bytes, recipients: list[str]) -> None:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self._lock:
            n = len(self.messages) + 1
            (self.folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{n:04d}.eml").write_bytes(raw)
            self.messages.append(msg)
            self._lock.notify_all()

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def wait_for(self, address: str, *, count: int = 1, subject: str = "", timeout: float = 15.0) -> EmailMessage:
        """The `count`-th message to `address` (whose subject holds `subject`), waiting for it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [m for m in self.messages
                         if address.lower() in str(m["To"]).lower() and subject in str(m["Subject"])]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no message #{count} to {address} after {timeout}s")
                self._lock.wait(left)
