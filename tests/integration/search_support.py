"""Helpers of the search tests: calls through Envoy, waiting for the index, records of the types
whose services are built elsewhere (their events, published as those services publish them)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import nats

from services.devstack import DevStack
from tests.integration.test_contacts_rest import h
from tests.polling import until

SERVICES = {"account": "accounts", "lead": "leads", "deal": "deals", "activity": "activities", "contact": "contacts"}


def post(api: httpx.Client, t: dict[str, str], path: str, body: dict[str, Any]) -> httpx.Response:
    return api.post(f"/v1/search/{path}", headers=h(t), json=body)


def found(api: httpx.Client, t: dict[str, str], query: str, path: str = "global", **extra: Any) -> list[dict[str, Any]]:
    r = post(api, t, path, {"query": query, **extra})
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["data"]
    return results


def ids(results: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in results]


def wait_found(api: httpx.Client, t: dict[str, str], query: str, record_id: str, timeout: float = 10.0,
               **extra: Any) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = until(lambda: found(api, t, query, **extra), lambda v: record_id in ids(v), timeout=timeout)
    assert record_id in ids(results), f"{record_id} not found by {query!r}: {results}"
    return results


def wait_gone(api: httpx.Client, t: dict[str, str], query: str, record_id: str, timeout: float = 10.0) -> None:
    results = until(lambda: found(api, t, query), lambda v: record_id not in ids(v), timeout=timeout)
    assert record_id not in ids(results)


def contact(api: httpx.Client, t: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/contacts", headers=h(t), json=fields)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def user_id(t: dict[str, str]) -> str:
    """The user a sign-up's token is for (its `sub`)."""
    import base64

    payload = t["authorization"].split()[1].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def cloudevent(tenant_id: str, record_type: str, action: str, record: dict[str, Any], *,
               extra: dict[str, Any] | None = None, at: dt.datetime | None = None) -> dict[str, Any]:
    """An event as the owning service's outbox writes it (services/kernel/events.py)."""
    service = SERVICES[record_type]
    return {
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": f"crm/{service}",
        "type": f"crm.{service}.{record_type}.{action}", "subject": record.get("id", ""),
        "time": (at or dt.datetime.now(dt.UTC)).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json", "tenantid": tenant_id, "actorid": "", "requestid": "",
        "data": {record_type: record, **(extra or {})},
    }


def publish(stack: DevStack, *events: dict[str, Any], msg_id: Callable[[dict[str, Any]], str] | None = None) -> None:
    """Publish events to JetStream with the event id as Nats-Msg-Id (or another id: a replay)."""

    async def run() -> None:
        nc = await nats.connect(stack.nats_url)
        js = nc.jetstream()
        for e in events:
            mid = msg_id(e) if msg_id else e["id"]
            await js.publish(e["type"], json.dumps(e).encode(), headers={"Nats-Msg-Id": mid})
        await nc.close()

    asyncio.run(run())


def record(record_type: str, owner_id: str = "", **fields: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    out: dict[str, Any] = {"id": str(uuid.uuid4()), "createdAt": now, "updatedAt": now, **fields}
    if owner_id:
        out["ownerId"] = owner_id
    return out
