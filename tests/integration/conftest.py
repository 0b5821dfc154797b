"""The whole stack for REST tests: embedded PostgreSQL, nats-server, the services, real Envoy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack import DevStack, free_port
from services.mailsink import MailSink

# Far above what the suite spends (every sign-up's public calls share 127.0.0.1's budget), and
# distinct per budget so tests can tell which one a call counted against. Exhaustion is tested in
# tests/edge/test_edge_ratelimit.py with a service of its own.
STACK_RATE_LIMITS = "standard=100000/h,premium=200000/h,api_integration=300000/h,bulk=50000/h"


@pytest.fixture(scope="session")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    """A real SMTP server (aiosmtpd) receiving what the services send; tests read it."""
    sink = MailSink(Path(tmp_path_factory.mktemp("mail")), free_port()).start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, mailbox: MailSink) -> Iterator[DevStack]:
    data = Path(tmp_path_factory.mktemp("stack"))
    # Automation webhooks may reach the tests' own loopback servers (never private or metadata
    # addresses), and idle-deal rules are checked every second.
    env = {"CRM_AUTOMATION_ALLOW_LOOPBACK_WEBHOOKS": "true", "CRM_AUTOMATION_IDLE_CHECK_SECONDS": "1"}
    s = DevStack(data, http_port=free_port(), grpc_port=free_port(), nats_port=free_port(), admin_port=free_port(),
                 rate_limits=STACK_RATE_LIMITS, smtp_url=mailbox.url, env=env)
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


def mint(stack: DevStack, *, tenant_id: str, user_id: str | None = None, perms: list[str] | None = None,
         roles: list[str] | None = None, lifetime: int = 300, **extra: object) -> str:
    """An access token signed with the stack's real key, for cases sign-up cannot produce
    (expired tokens, roles without permissions). Verified by the services like any other."""
    import time

    import jwt

    from services.auth.keys import SigningKey

    key = SigningKey.load(stack.key_file)
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "crm-auth", "aud": "crm-api", "sub": user_id or str(uuid.uuid4()), "tid": tenant_id,
        "sid": str(uuid.uuid4()), "roles": roles or [], "iat": now, "nbf": now, "exp": now + lifetime,
    }
    if perms is not None:
        claims["perms"] = perms
    claims.update(extra)
    return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})


def account(api: httpx.Client, t: dict[str, str], name: str = "Acct") -> str:
    """A real account of the tenant, for records that link to one (links are checked)."""
    r = api.post("/v1/accounts", headers={k: v for k, v in t.items() if k != "refresh"}, json={"name": name})
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])
