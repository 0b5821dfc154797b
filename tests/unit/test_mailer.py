"""The kernel's mailer against a real SMTP server (aiosmtpd), and its settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.devstack import free_port
from services.kernel.errors import ConfigurationError, Unavailable
from services.kernel.mailer import Mailer, SmtpTarget
from services.kernel.settings import Settings
from services.mailsink import MailSink


def settings(**env: str) -> Settings:
    return Settings.from_env({"CRM_DATABASE_URL": "postgresql://u@h/db", "CRM_JWKS_FILE": "/x", **env})


async def test_mail_reaches_the_server_and_the_sink_folder(tmp_path: Path) -> None:
    sink = MailSink(tmp_path / "mail", free_port()).start()
    try:
        await Mailer(settings(CRM_SMTP_URL=sink.url, CRM_MAIL_FROM="CRM <crm@example.com>")).send(
            "ann@example.com", "Hello", "A link: https://crm.example.com/x?token=abc=def\n")
        msg = sink.wait_for("ann@example.com", subject="Hello", timeout=5)
        assert msg["From"] == "CRM <crm@example.com>"
        body = msg.get_body(preferencelist=("plain",))
        assert body is not None and "token=abc=def" in body.get_content()
        assert "token=abc=def" in next((tmp_path / "mail").glob("*.eml")).read_text()  # readable on disk
    finally:
        sink.stop()


async def test_unreachable_or_missing_server_is_unavailable() -> None:
    with pytest.raises(Unavailable):
        await Mailer(settings(CRM_SMTP_URL=f"smtp://127.0.0.1:{free_port()}")).send("a@example.com", "s", "t")
    with pytest.raises(Unavailable):
        await Mailer(settings()).send("a@example.com", "s", "t")
    with pytest.raises(ConfigurationError):
        Mailer(settings(CRM_ENV="production", CRM_PUBLIC_URL="https://crm.example.com"))


def test_smtp_urls() -> None:
    t = SmtpTarget.parse("smtps://user%40x:p%3Ass@mail.example.com")
    assert (t.host, t.port, t.username, t.password, t.use_tls, t.start_tls) == (
        "mail.example.com", 465, "user@x", "p:ss", True, None)
    assert SmtpTarget.parse("smtp://relay:2525?starttls=required").start_tls is True
    with pytest.raises(ConfigurationError):
        settings(CRM_SMTP_URL="http://relay")
    with pytest.raises(ConfigurationError):
        settings(CRM_ENV="production", CRM_PUBLIC_URL="http://crm.example.com")
