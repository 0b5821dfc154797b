"""Helpers the accounts tests share: creating records through Envoy, polling merge jobs and
reading the events a tenant's changes published to NATS JetStream."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from services import ALL_SERVICES
from services.devstack import DevStack
from tests.integration.test_contacts_rest import h

DEALS_DEPLOYED = "deals" in ALL_SERVICES
ACTIVITIES_DEPLOYED = "activities" in ALL_SERVICES


def account(api: httpx.Client, t: dict[str, str], name: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/accounts", headers=h(t), json={"name": name, **fields})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def contact(api: httpx.Client, t: dict[str, str], first_name: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/contacts", headers=h(t), json={"firstName": first_name, **fields})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def errors(r: httpx.Response) -> list[tuple[str, str]]:
    """(field, code) of each error of an envelope."""
    return [(e["field"], e["code"]) for e in r.json()["errors"]]


def wait_merge(api: httpx.Client, t: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(300):
        r = api.get(f"/v1/accounts/merge/{job_id}", headers=h(t))
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()["data"]
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("merge job did not finish")


def events(stack: DevStack, tenant_id: str, wanted: set[str], subject: str = "crm.accounts.>",
           timeout: float = 10.0) -> list[dict[str, Any]]:
    """The tenant's CloudEvents on `subject`, once every type in `wanted` has arrived."""

    async def read() -> list[dict[str, Any]]:
        nc = await nats.connect(stack.nats_url)
        try:
            deadline = time.monotonic() + timeout
            while True:
                found: list[dict[str, Any]] = []
                sub = await nc.jetstream().subscribe(
                    subject, ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
                while True:
                    try:
                        msg = await sub.next_msg(timeout=0.3)
                    except TimeoutError:
                        break
                    event = json.loads(msg.data)
                    if event.get("tenantid") == tenant_id:
                        found.append(event)
                await sub.unsubscribe()
                if wanted <= {e["type"] for e in found} or time.monotonic() > deadline:
                    return found
                await asyncio.sleep(0.2)
        finally:
            await nc.close()

    return asyncio.run(read())
