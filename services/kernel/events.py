"""Domain events: written to the service's outbox in the caller's transaction, relayed to NATS
JetStream after commit, consumed by durable consumers.

An event is a CloudEvents 1.0 JSON document on subject `crm.<service>.<entity>.<action>`; its id
is the JetStream `Nats-Msg-Id`, so a relay that publishes twice after a crash is deduplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import uuid
from typing import Any

import asyncpg
import nats
from asyncpg.pool import PoolConnectionProxy
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context
from services.kernel.db import asyncpg_dsn

log = logging.getLogger(__name__)

STREAM = "CRM"
STREAM_SUBJECTS = ["crm.>"]
DUPLICATE_WINDOW_SECONDS = 120.0


def cloudevent(*, event_type: str, source: str, subject: str, data: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """A CloudEvents 1.0 envelope; `tenantid`, `actorid`, `requestid`, `clientip` and `useragent`
    are extension attributes (the audit trail records them)."""
    ctx = context.current()
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "subject": subject,
        "time": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "tenantid": tenant_id,
        "actorid": ctx.user_id,
        "requestid": ctx.request_id,
        "clientip": ctx.client_ip,
        "useragent": ctx.user_agent[:300],
        "data": data,
    }


async def emit(
    conn: AsyncConnection | PoolConnectionProxy[asyncpg.Record],
    schema: str,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    *,
    tenant_id: str | None = None,
) -> str:
    """Record an event in the same transaction as the change it announces. Returns its id."""
    event = cloudevent(
        event_type=event_type,
        source=f"crm/{schema}",
        subject=subject,
        data=data,
        tenant_id=tenant_id if tenant_id is not None else context.current().tenant_id,
    )
    payload = json.dumps(event, default=str).encode()
    if isinstance(conn, AsyncConnection):
        await conn.execute(
            text(f'INSERT INTO "{schema}".outbox (id, subject, payload) VALUES (:id, :subject, :payload)'),
            {"id": event["id"], "subject": event_type, "payload": payload},
        )
    else:  # a `Database.write` transaction
        await conn.execute(f'INSERT INTO "{schema}".outbox (id, subject, payload) VALUES ($1, $2, $3)',
                           event["id"], event_type, payload)
    return str(event["id"])


class EventBus:
    """The process's NATS connection and its JetStream context."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None

    async def connect(self) -> None:
        self.nc = await nats.connect(
            self.url, name="crm-service", max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5
        )
        self.js = self.nc.jetstream()
        config = StreamConfig(
            name=STREAM,
            subjects=STREAM_SUBJECTS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=7 * 24 * 3600,
        )
        try:
            await self.js.stream_info(STREAM)
        except NotFoundError:
            with contextlib.suppress(Exception):  # another process may have created it meanwhile
                await self.js.add_stream(config)

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> None:
        assert self.js is not None
        await self.js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id}, timeout=5)

    async def close(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()


class OutboxRelay:
    """Moves committed events from the outboxes of the hosted schemas to JetStream.

    Woken by the outbox trigger's NOTIFY on commit, and every second anyway (a missed
    notification or a NATS outage only delays events, it never loses them).
    """

    BATCH = 200

    def __init__(self, db_url: str, schemas: list[str], bus: EventBus) -> None:
        self.dsn = asyncpg_dsn(db_url)
        self.schemas = schemas
        self.bus = bus
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, flush_seconds: float = 0.0) -> None:
        """Stop relaying; with `flush_seconds`, first let the relay publish what is left and
        end by itself (a process that stops gracefully leaves its outboxes empty; what it
        cannot send in time, e.g. while NATS is down, waits for the next process). Cancelling
        it mid-batch instead would leave that batch locked a moment after the process ends."""
        if self._task:
            if flush_seconds > 0:
                self._stopping = True
                self._wake.set()
                try:
                    await asyncio.wait_for(asyncio.shield(self._task), timeout=flush_seconds)
                except TimeoutError:
                    log.warning("outbox relay: events left for the next process")
                except Exception:
                    log.warning("outbox relay: events left for the next process", exc_info=True)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        conn: asyncpg.Connection | None = None
        while True:
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(self.dsn)
                    self._listener = conn
                    await conn.add_listener("crm_outbox", lambda *_: self._wake.set())
                # Asked to stop before this pass began, so the pass sees every event committed
                # before the request (a pass already under way may have read an outbox early).
                last = self._stopping
                moved = 0
                for schema in self.schemas:
                    moved += await self._drain(conn, schema)
                if moved:
                    continue
                if last:
                    return  # every outbox is empty: done
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay: retrying after error", exc_info=True)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                conn = None
                await asyncio.sleep(1.0)

    async def _drain(self, conn: asyncpg.Connection, schema: str) -> int:
        """Publish one batch; rows are deleted only in the transaction that saw them acked."""
        async with conn.transaction():
            rows = await conn.fetch(
                f'SELECT seq, id, subject, payload FROM "{schema}".outbox ORDER BY seq '
                f"LIMIT {self.BATCH} FOR UPDATE SKIP LOCKED"
            )
            if not rows:
                return 0
            for r in rows:  # one at a time: consumers see events in commit order
                await self.bus.publish(r["subject"], r["payload"], str(r["id"]))
            await conn.execute(f'DELETE FROM "{schema}".outbox WHERE seq = ANY($1::bigint[])', [r["seq"] for r in rows])
            return len(rows)
