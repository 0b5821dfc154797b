"""Delivery guarantees of the index: the services process killed while it indexes, events
replayed under new message ids, NATS restarted with events waiting in the outbox. Each time the
index ends up exact: as many contact documents as ListContacts counts, none of deleted ones.

These tests kill and restart processes, so they run on a stack of their own (this module's
fixture), not on the session's shared one.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest

from services.devstack import DevStack, free_port
from services.kernel.db import asyncpg_dsn
from tests.integration.conftest import STACK_RATE_LIMITS, sign_up
from tests.integration.search_support import found, publish
from tests.integration.test_contacts_rest import h

BATCH = 500


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    s = DevStack(Path(tmp_path_factory.mktemp("search-delivery")), http_port=free_port(), grpc_port=free_port(),
                 nats_port=free_port(), admin_port=free_port(), rate_limits=STACK_RATE_LIMITS)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def own_api(own: DevStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=own.base_url, timeout=60) as client:
        yield client


def _proc(stack: DevStack, marker: str) -> subprocess.Popen[bytes]:
    for p in stack.procs:
        if p.poll() is None and any(marker in str(a) for a in p.args):  # type: ignore[union-attr]
            return p
    raise AssertionError(f"no running {marker}")


def _stop(stack: DevStack, marker: str, sig: int) -> None:
    p = _proc(stack, marker)
    p.send_signal(sig)
    p.wait(timeout=30)
    stack.procs.remove(p)


def _sql(stack: DevStack, query: str, *args: Any) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(asyncpg_dsn(stack.migration_database_url))
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def _indexed(stack: DevStack, tenant_id: str) -> int:
    return int(_sql(stack, "SELECT count(*) FROM search.documents WHERE tenant_id = $1 AND type = 'contact'",
                    uuid.UUID(tenant_id)))


def _source_total(api: httpx.Client, t: dict[str, str]) -> int:
    r = api.get("/v1/contacts?limit=1", headers=h(t))
    assert r.status_code == 200, r.text
    return int(r.json()["meta"]["pagination"]["total"])


def _converges(stack: DevStack, api: httpx.Client, t: dict[str, str], timeout: float = 90.0) -> int:
    """Waits until the index holds exactly the source's contacts and stays so; returns the count.

    A consumer killed with events in hand gets them back after the ack wait (30 s)."""
    deadline = time.monotonic() + timeout
    total = _source_total(api, t)
    while time.monotonic() < deadline:
        if _indexed(stack, t["x-tenant-id"]) == total and _pending(stack) == 0:
            time.sleep(1.0)  # nothing late changes it
            if _indexed(stack, t["x-tenant-id"]) == total:
                return total
        time.sleep(0.2)
    raise AssertionError(f"index holds {_indexed(stack, t['x-tenant-id'])} contacts, the source {total}")


def _pending(stack: DevStack) -> int:
    async def run() -> int:
        nc = await nats.connect(stack.nats_url)
        try:
            info = await nc.jetstream().consumer_info("CRM", "search")
            return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        finally:
            await nc.close()

    return asyncio.run(run())


def _applied(stack: DevStack, event_ids: list[str]) -> int:
    """How many of these events the search consumer has recorded as applied."""
    return int(_sql(stack, "SELECT count(*) FROM search.processed_events WHERE consumer = 'search' "
                    "AND event_id = ANY($1::text[])", event_ids))


def _bulk(api: httpx.Client, t: dict[str, str], count: int, tag: str) -> list[str]:
    out: list[str] = []
    for start in range(0, count, BATCH):
        items = [{"firstName": f"D{i}", "lastName": tag, "email": f"d{i}.{tag}@example.com"}
                 for i in range(start, min(count, start + BATCH))]
        r = api.post("/v1/contacts/bulk", headers=h(t), json={"items": items})
        assert r.status_code == 200, r.text
        out += [x["id"] for x in r.json()["data"]["results"]]
    return out


def _events(stack: DevStack, tenant_id: str, subject: str) -> list[dict[str, Any]]:
    """The tenant's events on `subject` as the stream holds them."""

    async def run() -> list[dict[str, Any]]:
        nc = await nats.connect(stack.nats_url)
        got: list[dict[str, Any]] = []
        try:
            sub = await nc.jetstream().subscribe(subject, ordered_consumer=True)
            while True:
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except TimeoutError:
                    break
                event = json.loads(msg.data)
                if event.get("tenantid") == tenant_id:
                    got.append(event)
        finally:
            await nc.close()
        return got

    return asyncio.run(run())


def test_killed_mid_stream_and_replayed_twice_the_index_stays_exact(own: DevStack, own_api: httpx.Client) -> None:
    t = sign_up(own_api)
    tag = "deliv" + uuid.uuid4().hex[:6]
    created = _bulk(own_api, t, 2000, tag)
    # Kill the process that hosts the consumer while it is indexing (no graceful stop).
    deadline = time.monotonic() + 60
    while _indexed(own, t["x-tenant-id"]) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    _stop(own, "services.main", signal.SIGKILL)
    at_kill = _indexed(own, t["x-tenant-id"])
    assert 0 < at_kill < len(created), f"not killed mid-stream ({at_kill} of {len(created)} indexed)"
    own.start_services()
    assert _converges(own, own_api, t) == 2000

    # Deletions, then every creation and deletion published again under new message ids,
    # twice: the consumer applies each event once, and the index does not move.
    gone = created[:25]
    r = own_api.request("DELETE", "/v1/contacts/bulk", headers=h(t), json={"ids": gone})
    assert r.status_code == 200, r.text
    assert _converges(own, own_api, t) == 2000 - len(gone)
    replay = _events(own, t["x-tenant-id"], "crm.contacts.contact.*")
    assert len(replay) == 2000 + len(gone)
    for _ in range(2):
        publish(own, *replay, msg_id=lambda e: str(uuid.uuid4()))
    assert _converges(own, own_api, t) == 2000 - len(gone)
    assert _applied(own, [e["id"] for e in replay]) == len(replay), "each event once"
    # The same events re-emitted as new ones (a producer replaying its history): the deleted
    # records stay deleted (tombstones), the others stay as they are.
    again = [{**e, "id": str(uuid.uuid4())} for e in replay]
    publish(own, *again)
    assert _converges(own, own_api, t) == 2000 - len(gone)
    assert _applied(own, [e["id"] for e in again]) == len(again)
    r = own_api.post("/v1/search/advanced", headers=h(t), json={
        "limit": 100, "filters": [{"field": "id", "operator": "in", "value": gone}]})
    assert r.status_code == 200 and r.json()["data"] == []
    assert len(found(own_api, t, f"d1999 {tag}")) == 1


def test_nats_restart_with_events_waiting_in_the_outbox(own: DevStack, own_api: httpx.Client) -> None:
    t = sign_up(own_api)
    tag = "restart" + uuid.uuid4().hex[:6]
    before = _bulk(own_api, t, 100, tag)
    assert _converges(own, own_api, t) == len(before)
    _stop(own, "nats-server", signal.SIGTERM)
    # NATS is down: changes still commit, their events wait in the outbox.
    during = _bulk(own_api, t, 150, tag)
    r = own_api.request("DELETE", "/v1/contacts/bulk", headers=h(t), json={"ids": before[:10]})
    assert r.status_code == 200, r.text
    assert _sql(own, "SELECT count(*) FROM contacts.outbox") >= len(during)
    own.start_nats()
    assert _converges(own, own_api, t) == len(before) + len(during) - 10
    # And the index keeps following once NATS is back.
    r = own_api.post("/v1/contacts", headers=h(t), json={"firstName": "After", "lastName": tag})
    assert r.status_code == 201, r.text
    assert _converges(own, own_api, t) == len(before) + len(during) - 9
