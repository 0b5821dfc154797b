"""Helpers of the users tests: users with given roles and their tokens, polling, NATS events."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import nats

PASSWORD = "correct-horse-battery"


def h(t: dict[str, str]) -> dict[str, str]:
    """Request headers of a sign_up()/login() result (drops the refresh token)."""
    return {k: v for k, v in t.items() if k != "refresh"}


def login(api: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, str]:
    r = api.post("/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    return {"authorization": f"Bearer {data['accessToken']}", "x-tenant-id": data["tenantId"],
            "refresh": data["refreshToken"]}


def refresh(api: httpx.Client, t: dict[str, str]) -> httpx.Response:
    return api.post("/v1/auth/token/refresh", json={"refreshToken": t["refresh"]})


def refreshed(api: httpx.Client, t: dict[str, str]) -> dict[str, str]:
    """New tokens after a role change. Tokens carry whole-second `iat`s and a revocation refuses
    tokens issued before its (fractional) moment, so wait for the next second first."""
    time.sleep(1.1)
    r = refresh(api, t)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    return {"authorization": f"Bearer {data['accessToken']}", "x-tenant-id": data["tenantId"],
            "refresh": data["refreshToken"]}


def make_user(api: httpx.Client, admin: dict[str, str], roles: list[str] | None = None,
              **fields: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A user of the admin's tenant with a password, and their tokens."""
    email = fields.pop("email", f"u-{uuid.uuid4().hex[:10]}@example.com")
    body = {"email": email, "password": PASSWORD, "firstName": "Uma", "lastName": "User", **fields}
    if roles is not None:
        body["roles"] = roles
    r = api.post("/v1/users", headers=h(admin), json=body)
    assert r.status_code == 201, r.text
    return r.json()["data"], login(api, email)


def find_event(nats_url: str, event_type: str, match: Callable[[dict[str, Any]], bool],
               timeout: float = 10.0) -> dict[str, Any] | None:
    """The first CloudEvent of `event_type` on JetStream whose envelope satisfies `match`."""

    async def run() -> dict[str, Any] | None:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            found: list[dict[str, Any]] = []

            async def on_msg(msg: Any) -> None:
                event = json.loads(msg.data)
                if match(event):
                    found.append(event)

            sub = await js.subscribe(event_type, cb=on_msg, ordered_consumer=True)
            deadline = time.monotonic() + timeout
            while not found and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await sub.unsubscribe()
            return found[0] if found else None
        finally:
            await nc.close()

    return asyncio.run(run())
