"""Usage from real counts: users from the identity store, records from the services' events
(counted once, however often delivered), API calls from every process's meter."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import nats

from services.devstack import DevStack
from tests.integration.tenants_support import add_user, h


def wait_for(fetch: Callable[[], dict[str, Any]], ok: Callable[[dict[str, Any]], bool], timeout: float = 25.0
             ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = fetch()
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def test_usage_counts_users_records_and_api_calls(stack: DevStack, api: httpx.Client,
                                                  tenant: dict[str, str]) -> None:
    tid = tenant["x-tenant-id"]

    def usage() -> dict[str, Any]:
        r = api.get(f"/v1/tenants/{tid}/usage", headers=h(tenant))
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()["data"]
        return data

    first = usage()
    assert first["users"] == {"used": 1, "limit": 50, "percent": "2.00"}
    assert first["records"]["used"] == 0 and first["recordsByType"] == {}
    assert first["storage"]["usedBytes"] == "0" and first["storage"]["limitBytes"] == str(10_240 * 1024 * 1024)

    ids = [api.post("/v1/contacts", headers=h(tenant), json={"firstName": f"C{i}"}).json()["data"]["id"]
           for i in range(3)]
    assert api.delete(f"/v1/contacts/{ids[0]}", headers=h(tenant)).status_code == 200
    r = api.post("/v1/contacts/bulk", headers=h(tenant), json={"items": [{"firstName": "B1"}, {"firstName": "B2"}]})
    assert r.status_code == 200
    r = api.post("/v1/contacts/import", headers={**h(tenant), "content-type": "text/csv"},
                 content="First Name,Email\nImp,imp@x.example\nOrt,ort@x.example\n")
    assert r.status_code == 202
    add_user(stack, tid, ["sales_rep"])

    got = wait_for(usage, lambda u: u["records"]["used"] == 6)
    assert got["records"] == {"used": 6, "limit": 100_000, "percent": "0.01"}
    assert got["recordsByType"] == {"contacts.contact": 6}
    assert got["users"]["used"] == 2
    # Every authenticated call so far is counted once the processes' meters flush.
    got = wait_for(usage, lambda u: u["apiCalls"]["used"] >= 8)
    assert got["apiCalls"]["used"] >= 8 and got["apiCallsToday"] == got["apiCalls"]["used"]
    assert got["apiCalls"]["limit"] == 500_000
    limits = {x["key"]: x["used"] for x in api.get(f"/v1/tenants/{tid}/limits", headers=h(tenant))
              .json()["data"]["limits"]}
    assert limits["records"] == 6 and limits["users"] == 2


async def test_a_redelivered_event_counts_once(stack: DevStack, api: httpx.Client, tenant: dict[str, str]) -> None:
    tid = tenant["x-tenant-id"]
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "crm/contacts",
             "type": "crm.contacts.contact.created", "subject": str(uuid.uuid4()), "tenantid": tid,
             "data": {"contact": {}}}
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        # Twice under different message ids: JetStream's dedup window does not catch it, the
        # consumer's record of event ids must.
        for _ in range(2):
            await js.publish("crm.contacts.contact.created", json.dumps(event).encode(),
                             headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await js.publish("crm.files.file.created", json.dumps(
            {**event, "id": str(uuid.uuid4()), "type": "crm.files.file.created", "data": {"sizeBytes": 2048}}).encode())
    finally:
        await nc.close()

    def usage() -> dict[str, Any]:
        data: dict[str, Any] = api.get(f"/v1/tenants/{tid}/usage", headers=h(tenant)).json()["data"]
        return data

    got = wait_for(usage, lambda u: u["storage"]["usedBytes"] == "2048")
    assert got["storage"]["usedBytes"] == "2048"
    # The file event was published after both copies: by now both were consumed.
    assert got["records"]["used"] == 1
