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
    await owner.execute(f"CREATE TABLE {SCHEMA}.effects (event_id text, tenant_id text)")
    await owner.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE}; "
                        f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {SCHEMA} TO {APP_ROLE}")
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


async def _until(owner: Any, count: int) -> None:
    for _ in range(200):
        if await owner.fetchval(f"SELECT count(*) FROM {SCHEMA}.effects") >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} effects")
