"""The kernel's durable consumer: each event's effect happens once, through redelivery, replay,
handler failures and a consumer restart."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.devstack import APP_ROLE, DevStack
from services.kernel.consumers import DurableConsumer
from services.kernel.db import Database, asyncpg_dsn
from services.kernel.events import EventBus

SCHEMA = "consumer_test"


@pytest.fixture()
async def env(stack: DevStack) -> AsyncIterator[tuple[Database, EventBus, str]]:
    owner = await asyncpg.connect(asyncpg_dsn(stack.migration_database_url))
    await owner.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    await owner.execute(f"CREATE TABLE {SCHEMA}.processed_events (consumer text, event_id text, "
                        "processed_at timestamptz DEFAULT now(), PRIMARY KEY (consumer, event_id))")
    # Each effect with the transaction that wrote it and the order it was written in.
    await owner.execute(f"CREATE TABLE {SCHEMA}.effects (event_id text, tenant_id text, "
                        "tx bigint DEFAULT txid_current(), seq bigserial)")
    await owner.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE}; "
                        f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {SCHEMA} TO {APP_ROLE}; "
                        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {APP_ROLE}")
    db = Database(stack.database_url)
    bus = EventBus(stack.nats_url)
    await bus.connect()
    yield db, bus, owner  # type: ignore[misc]
    await bus.close()
    await db.close()
    await owner.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    await owner.close()


def _event(tenant: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "type": "crm.tests.thing.happened",
            "tenantid": tenant, "data": {}}


async def test_each_event_takes_effect_once(env: tuple[Database, EventBus, Any]) -> None:
    db, bus, owner = env
    subject = f"crm.tests.{uuid.uuid4().hex[:8]}.happened"
    fail_first: set[str] = set()

    async def handler(conn: AsyncConnection, event: dict[str, Any]) -> None:
        await conn.execute(text(f"INSERT INTO {SCHEMA}.effects VALUES (:e, current_setting('app.tenant_id'))"),
                           {"e": event["id"]})
        if event["id"] in fail_first:
            fail_first.discard(event["id"])
            raise RuntimeError("transient failure: the insert above must roll back")

    name = f"test-{uuid.uuid4().hex[:8]}"
    consumer = DurableConsumer(db, bus, schema=SCHEMA, name=name, subject=subject, handler=handler)
    await consumer.start()
    tenant = str(uuid.uuid4())
    events = [_event(tenant) for _ in range(5)]
    fail_first.add(events[2]["id"])
    assert bus.js is not None
    for e in events:
        await bus.js.publish(subject, json.dumps(e).encode())
    # The same event again under another message id (a replay that dedup cannot catch).
    await bus.js.publish(subject, json.dumps(events[0]).encode())
    await _until(owner, 5)
    await consumer.stop()
    # Restarted under the same durable name, it resumes and still applies each event once.
    later = _event(tenant)
    await bus.js.publish(subject, json.dumps(later).encode())
    await bus.js.publish(subject, json.dumps(events[1]).encode())
    restarted = DurableConsumer(db, bus, schema=SCHEMA, name=name, subject=subject, handler=handler)
    await restarted.start()
    await _until(owner, 6)
    await asyncio.sleep(0.5)
    await restarted.stop()
    rows = await owner.fetch(f"SELECT event_id, tenant_id FROM {SCHEMA}.effects")
    assert sorted(r["event_id"] for r in rows) == sorted(e["id"] for e in [*events, later])
    assert {r["tenant_id"] for r in rows} == {tenant}


async def test_runs_of_a_tenant_share_a_transaction_and_a_failure_loses_none(env: tuple[Database, EventBus, Any]
                                                                             ) -> None:
    """`runs=True`: a tenant's consecutive events commit together, events of another tenant never
    join them, a failing event is retried alone while the rest of its run takes effect, and each
    event still takes effect once and in order."""
    db, bus, owner = env
    subject = f"crm.tests.{uuid.uuid4().hex[:8]}.happened"
    failing: dict[str, int] = {}  # event id -> attempts that fail

    async def handler(conn: AsyncConnection, event: dict[str, Any]) -> None:
        await conn.execute(text(f"INSERT INTO {SCHEMA}.effects (event_id, tenant_id) "
                                "VALUES (:e, current_setting('app.tenant_id'))"), {"e": event["id"]})
        if failing.get(event["id"], 0) > 0:
            failing[event["id"]] -= 1
            raise RuntimeError("transient failure: the run rolls back and goes one by one, where it fails again")

    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    first = [_event(a) for _ in range(30)] + [_event(b) for _ in range(10)] + [_event(a) for _ in range(10)]
    assert bus.js is not None
    # Published before the consumer starts, so it fetches them together.
    for e in first:
        await bus.js.publish(subject, json.dumps(e).encode())
    await bus.js.publish(subject, json.dumps(first[3]).encode())  # a replay inside the run
    name = f"test-{uuid.uuid4().hex[:8]}"
    consumer = DurableConsumer(db, bus, schema=SCHEMA, name=name, subject=subject, handler=handler, runs=True)
    await consumer.start()
    await _until(owner, len(first))
    # A second burst with a failing event in the middle of a run.
    second = [_event(a) for _ in range(20)]
    failing[second[7]["id"]] = 2  # in the run, then alone: redelivered after the others
    for e in second:
        await bus.js.publish(subject, json.dumps(e).encode())
    await _until(owner, len(first) + len(second))
    await asyncio.sleep(0.5)
    await consumer.stop()

    rows = await owner.fetch(f"SELECT event_id, tenant_id, tx FROM {SCHEMA}.effects ORDER BY seq")
    assert sorted(r["event_id"] for r in rows) == sorted(e["id"] for e in [*first, *second])
    tenant_of = {e["id"]: e["tenantid"] for e in [*first, *second]}
    assert all(r["tenant_id"] == tenant_of[r["event_id"]] for r in rows)
    # Fewer transactions than events, and never two tenants in one.
    by_tx: dict[int, set[str]] = {}
    for r in rows:
        by_tx.setdefault(r["tx"], set()).add(r["tenant_id"])
    assert len(by_tx) < len(first) // 2
    assert all(len(tenants) == 1 for tenants in by_tx.values())
    # In publish order, but for the failed event, which came back after the others of its run.
    order = [r["event_id"] for r in rows]
    expected = [e["id"] for e in [*first, *second] if e["id"] != second[7]["id"]]
    assert [i for i in order if i != second[7]["id"]] == expected
    assert order.index(second[7]["id"]) > order.index(second[8]["id"])


async def _until(owner: Any, count: int) -> None:
    for _ in range(200):
        if await owner.fetchval(f"SELECT count(*) FROM {SCHEMA}.effects") >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} effects")
