"""The whole stack for REST tests: embedded PostgreSQL, nats-server, the services, real Envoy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack import DevStack, free_port
from services.mailsink import MailSink


@pytest.fixture(scope="session")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    """A real SMTP server (aiosmtpd) receiving what the services send; tests read it."""
    sink = MailSink(Path(tmp_path_factory.mktemp("mail")), free_port()).start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, mailbox: MailSink) -> Iterator[DevStack]:
    data = Path(tmp_path_factory.mktemp("stack"))
    s = DevStack(data, http_port=free_port(), grpc_port=free_port(), nats_port=free_port(), admin_port=free_port(),
                 smtp_url=mailbox.url)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def api(stack: DevStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        yield client


def sign_up(api: httpx.Client) -> dict[str, str]:
    """A fresh tenant and its admin's auth headers."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    r = api.post("/v1/auth/register", json={"email": email, "password": "correct-horse-battery",
                                           "firstName": "Ada", "lastName": "Admin", "tenantName": "Acme"})
    assert r.status_code == 201, r.text
    tenant = r.json()["data"]["tenantId"]
    r = api.post("/v1/auth/login", json={"email": email, "password": "correct-horse-battery"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    return {"authorization": f"Bearer {data['accessToken']}", "x-tenant-id": tenant, "refresh": data["refreshToken"]}


@pytest.fixture()
def tenant(api: httpx.Client) -> dict[str, str]:
    return sign_up(api)
