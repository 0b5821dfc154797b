"""Helpers of the auth tests: accounts, PKCE pairs, TOTP codes, events from NATS, SQL as owner."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.auth import pkce, totp
from services.devstack import DevStack

PASSWORD = "correct-horse-battery"


def account(api: httpx.Client, *, password: str = PASSWORD) -> dict[str, str]:
    """A fresh tenant, its admin signed in: email, password, tenant, access, refresh, and `h` headers."""
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    r = api.post("/v1/auth/register", json={"email": email, "password": password, "firstName": "Ada",
                                           "lastName": "Admin", "tenantName": "Acme"})
    assert r.status_code == 201, r.text
    tenant = r.json()["data"]["tenantId"]
    data = login(api, email, password)
    return {"email": email, "password": password, "tenant": tenant, "access": data["accessToken"],
            "refresh": data["refreshToken"], "userId": r.json()["data"]["user"]["id"]}


def login(api: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = api.post("/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def h(acct: dict[str, str]) -> dict[str, str]:
    return bearer(acct["access"])


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode().rstrip("=")
    return verifier, pkce.s256(verifier)


def totp_now(secret_b32: str, *, offset_steps: int = 0) -> str:
    secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    return totp.totp(secret, time.time() + offset_steps * totp.STEP)


def body_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None, mail
    return str(part.get_content())


def token_from(mail: EmailMessage) -> str:
    body = body_of(mail)
    found = re.search(r"Token: (\S+)", body)
    assert found, body
    return found.group(1)


def events(stack: DevStack, subject: str, match: Callable[[dict[str, Any]], bool], *, count: int = 1,
           timeout: float = 10.0) -> list[dict[str, Any]]:
    """CloudEvents published on `subject` (wildcards allowed) that satisfy `match`."""

    async def run() -> list[dict[str, Any]]:
        nc = await nats.connect(stack.nats_url)
        try:
            js = nc.jetstream()
            found: list[dict[str, Any]] = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                found.clear()
                sub = await js.subscribe(subject, ordered_consumer=True,
                                         config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
                while True:
                    try:
                        msg = await sub.next_msg(timeout=0.5)
                    except nats.errors.TimeoutError:
                        break
                    event = json.loads(msg.data)
                    if match(event):
                        found.append(event)
                await sub.unsubscribe()
                if len(found) >= count:
                    return found
                await asyncio.sleep(0.2)
            return found
        finally:
            await nc.close()

    return asyncio.run(run())


def sql(stack: DevStack, statement: str, *args: Any) -> list[asyncpg.Record]:
    """Run SQL as the schema owner (to age a code or token past its expiry, or seed a row)."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(stack.migration_database_url)
        try:
            return list(await conn.fetch(statement, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def publish(stack: DevStack, subject: str, event: dict[str, Any]) -> None:
    """Publish a CloudEvent to JetStream as another service's outbox relay would."""

    async def run() -> None:
        nc = await nats.connect(stack.nats_url)
        try:
            await nc.jetstream().publish(subject, json.dumps(event).encode(), headers={"Nats-Msg-Id": str(uuid.uuid4())})
        finally:
            await nc.close()

    asyncio.run(run())
