"""Stopping a services process with SIGTERM (a deploy, a scale-down) loses no request, and
readiness says what a process can do: without the database nothing, without NATS everything
(the outbox keeps the events), reported apart."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from typing import Any, Self

import asyncpg
import grpc
import httpx
import nats
from crm.contacts.v1 import contacts_service_pb2, contacts_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.devstack import DevStack
from services.kernel.db import asyncpg_dsn
from tests.integration.conftest import sign_up
from tests.polling import until

IN_FLIGHT = 4
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
GRACE = 10.0  # services/kernel/settings.py shutdown_grace_seconds, the stack's default


def _h(t: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in t.items() if k != "refresh"}


def _health(port: int, service: str = "") -> int | str:
    """The process's readiness for `service`, or the gRPC code when it does not answer."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return int(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                                 timeout=2).status)
        except grpc.RpcError as err:
            return str(err.code())


class RowLock:
    """A transaction holding contacts' rows locked (as the database owner), so updates of them
    wait in the database: requests that are in flight for as long as the test wants."""

    def __init__(self, dsn: str, ids: list[str]) -> None:
        self.dsn, self.ids = asyncpg_dsn(dsn), ids
        self.loop = asyncio.new_event_loop()
        self.conn: Any = None

    def __enter__(self) -> Self:
        async def take() -> None:
            self.conn = await asyncpg.connect(self.dsn)
            await self.conn.execute("BEGIN")
            await self.conn.execute("SELECT 1 FROM contacts.contacts WHERE id = ANY($1::uuid[]) FOR UPDATE", self.ids)
        self.loop.run_until_complete(take())
        return self

    def waiting(self) -> int:
        """How many other sessions wait for a lock (the held-up updates)."""
        async def count() -> int:
            other = await asyncpg.connect(self.dsn)
            try:
                return int(await other.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"))
            finally:
                await other.close()
        return self.loop.run_until_complete(count())

    def release(self) -> None:
        if self.conn is not None:
            self.loop.run_until_complete(self.conn.execute("ROLLBACK"))
            self.loop.run_until_complete(self.conn.close())
            self.conn = None

    def __exit__(self, *_: object) -> None:
        self.release()
        self.loop.close()


def _outbox(dsn: str) -> list[str]:
    """What waits in the contacts outbox: each event's subject, record and time."""
    async def read() -> list[str]:
        conn = await asyncpg.connect(asyncpg_dsn(dsn))
        try:
            rows = await conn.fetch("SELECT subject, payload FROM contacts.outbox ORDER BY seq")
        finally:
            await conn.close()
        return [f"{r['subject']} {json.loads(r['payload']).get('subject')} {json.loads(r['payload']).get('time')}"
                for r in rows]
    return asyncio.run(read())


def _updated_events(nats_url: str, ids: set[str]) -> set[str]:
    """Ids of the contacts among `ids` whose `updated` event reached JetStream."""
    async def read() -> set[str]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            sub = await js.subscribe("crm.contacts.contact.updated", ordered_consumer=True)
            seen: set[str] = set()
            while True:
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except nats.errors.TimeoutError:
                    return seen
                subject = str(json.loads(msg.data).get("subject", ""))
                if subject in ids:
                    seen.add(subject)
        finally:
            await nc.close()
    return asyncio.run(read())


def test_sigterm_drains_in_flight_requests_refuses_new_ones_and_exits_0(fragile: DevStack,
                                                                        client: httpx.Client) -> None:
    tenant = _h(sign_up(client))
    ids = [client.post("/v1/contacts", headers=tenant, json={"firstName": f"Slow{i}"}).json()["data"]["id"]
           for i in range(IN_FLIGHT)]
    answers: dict[str, httpx.Response] = {}

    def update(cid: str) -> None:
        with httpx.Client(base_url=fragile.base_url, timeout=30) as c:
            answers[cid] = c.put(f"/v1/contacts/{cid}?updateMask=title", headers=tenant, json={"title": "Drained"})

    with RowLock(fragile.migration_database_url, ids) as lock:
        threads = [threading.Thread(target=update, args=(cid,)) for cid in ids]
        for t in threads:
            t.start()
        assert until(lock.waiting, lambda n: n >= IN_FLIGHT, timeout=15) >= IN_FLIGHT, "the updates are not in flight"

        proc = fragile.kill("services", signal.SIGTERM, wait=False)
        signalled = time.monotonic()
        # Readiness goes first; then (once running jobs are stopped) the server takes no new rpc.
        refused = until(lambda: _health(fragile.grpc_port), lambda s: s != SERVING, timeout=5, interval=0.02)
        assert refused in (NOT_SERVING, "StatusCode.UNAVAILABLE"), refused
        r = until(lambda: client.get(f"/v1/contacts/{ids[0]}", headers=tenant), lambda r: r.status_code != 200,
                  timeout=5, interval=0.02)
        assert r.status_code == 503 and r.headers.get("retry-after"), (r.status_code, r.text)
        body = r.json()
        assert body["success"] is False and body["errors"][0]["code"] == "UNAVAILABLE", body
        with grpc.insecure_channel(f"127.0.0.1:{fragile.grpc_port}") as channel:
            stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
            try:
                stub.GetContact(contacts_service_pb2.GetContactRequest(id=ids[0]), timeout=5,
                                metadata=tuple(tenant.items()))
                raise AssertionError("a new rpc was served after SIGTERM")
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE, err
        assert proc.poll() is None, "exited with requests still in flight"
        time.sleep(1.0)  # the held-up requests outlive the signal by a while ...
        lock.release()  # ... then finish

    for t in threads:
        t.join(timeout=30)
    exit_code = proc.wait(timeout=GRACE + 10)
    took = time.monotonic() - signalled
    print(f"\nSIGTERM with {IN_FLIGHT} requests held 1 s in flight: exit {exit_code} after {took:.2f}s")
    assert exit_code == 0
    assert took < GRACE, f"the stop took {took:.1f}s"
    assert {cid: r.status_code for cid, r in answers.items()} == dict.fromkeys(ids, 200), \
        {cid: r.text[:200] for cid, r in answers.items()}
    assert all(r.json()["data"]["title"] == "Drained" for r in answers.values())
    # What the drained requests wrote went out before the exit: the outbox is empty, the
    # events are on NATS.
    assert _outbox(fragile.migration_database_url) == []
    assert _updated_events(fragile.nats_url, set(ids)) == set(ids)

    fragile.restart("services")
    fragile.wait_healthy()
    r = until(lambda: client.get(f"/v1/contacts/{ids[0]}", headers=tenant), lambda r: r.status_code == 200, timeout=30)
    assert r.json()["data"]["title"] == "Drained"


def test_requests_meeting_a_stopping_process_get_503_never_500(fragile: DevStack, client: httpx.Client) -> None:
    """Reads sent all through a SIGTERM: each is served (200) or refused with 503 and Retry-After.
    A call the stopping gRPC server drops comes back CANCELLED, which the edge answers as 503."""
    tenant = _h(sign_up(client))
    cid = client.post("/v1/contacts", headers=tenant, json={"firstName": "Steady"}).json()["data"]["id"]
    for _ in range(2):  # the dropped call is a race: two stops make meeting it likely
        seen: list[tuple[int, str]] = []
        stop = threading.Event()

        def read(seen: list[tuple[int, str]] = seen, stop: threading.Event = stop) -> None:
            with httpx.Client(base_url=fragile.base_url, timeout=30) as c:
                while not stop.is_set():
                    r = c.get(f"/v1/contacts/{cid}", headers=tenant)
                    seen.append((r.status_code, r.headers.get("retry-after", "")))

        readers = [threading.Thread(target=read) for _ in range(3)]
        for t in readers:
            t.start()
        until(seen.__len__, lambda n: n >= 30, timeout=10)
        proc = fragile.kill("services", signal.SIGTERM, wait=False)
        proc.wait(timeout=GRACE + 10)
        stop.set()
        for t in readers:
            t.join(timeout=30)
        fragile.restart("services")
        fragile.wait_healthy()
        assert {status for status, _ in seen} <= {200, 503}, sorted(set(seen))
        assert all(retry for status, retry in seen if status == 503), "a 503 without Retry-After"
        assert (200, "") in seen and any(status == 503 for status, _ in seen), sorted(set(seen))


def test_without_nats_the_process_stays_ready_and_says_nats_is_down(fragile: DevStack, client: httpx.Client) -> None:
    tenant = _h(sign_up(client))
    port = fragile.grpc_port
    assert until(lambda: _health(port, "crm.dependency.nats"), lambda s: s == SERVING, timeout=10) == SERVING
    fragile.kill("nats")
    try:
        assert until(lambda: _health(port, "crm.dependency.nats"), lambda s: s == NOT_SERVING, timeout=10) == NOT_SERVING
        # Still ready: writes succeed (their events wait in the outbox), the edge routes to it.
        assert _health(port) == SERVING and _health(port, "crm.contacts.v1.ContactsService") == SERVING
        assert _health(port, "crm.dependency.database") == SERVING
        assert client.get("/healthz").status_code == 200
        r = client.post("/v1/contacts", headers=tenant, json={"firstName": "Offline"})
        assert r.status_code == 201, r.text
        # What needs NATS itself says so: a POST with an Idempotency-Key cannot keep its answer.
        key = str(uuid.uuid4())
        r = client.post("/v1/contacts", headers={**tenant, "idempotency-key": key}, json={"firstName": "Keyed"})
        assert r.status_code == 503 and r.headers.get("retry-after"), (r.status_code, r.text)
        assert r.json()["errors"][0]["code"] == "IDEMPOTENCY_UNAVAILABLE", r.text
    finally:
        fragile.restart("nats")
    assert until(lambda: _health(port, "crm.dependency.nats"), lambda s: s == SERVING, timeout=30) == SERVING
    r = client.post("/v1/contacts", headers={**tenant, "idempotency-key": key}, json={"firstName": "Keyed"})
    assert r.status_code == 201, r.text
