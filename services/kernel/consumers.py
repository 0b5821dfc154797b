"""Durable event consumers whose effects happen once per event, whatever NATS redelivers.

A consumer is a durable JetStream pull consumer. Each event's handler runs in a database
transaction that also records the event id in the service's `processed_events` table; a
redelivered or replayed event finds its id there and is acknowledged without effect. An event
is acknowledged only after that transaction commits, so a crash in between means one more
delivery, never a lost event. Consecutive events of one tenant share a transaction; when one
of them fails, the run is rolled back and applied again one event per transaction, so only the
failing event waits for a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context
from services.kernel.db import Database
from services.kernel.events import STREAM, EventBus

log = logging.getLogger(__name__)

Handler = Callable[[AsyncConnection, dict[str, Any]], Awaitable[None]]
FETCH_SECONDS = 1.0
DRAIN_SECONDS = 0.02  # how long a fetch waits for more events once one has come
MAX_DELIVERIES = 20  # then the event is parked (logged, terminated) instead of blocking the stream


def create_processed_events(op: Any, schema: str) -> None:
    """The table that makes a service's consumers idempotent (in the service's migrations)."""
    op.execute(
        f"""
        CREATE TABLE "{schema}".processed_events (
            consumer text NOT NULL,
            event_id text NOT NULL,
            processed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, event_id)
        )"""
    )


class DurableConsumer:
    def __init__(self, db: Database, bus: EventBus, *, schema: str, name: str, subject: str,
                 handler: Handler, batch: int = 100) -> None:
        self.db, self.bus = db, bus
        self.schema, self.name, self.subject, self.handler, self.batch = schema, name, subject, handler, batch
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        assert self.bus.js is not None
        config = ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            max_deliver=MAX_DELIVERIES,
        )
        self._sub = await self.bus.js.pull_subscribe(self.subject, durable=self.name, stream=STREAM, config=config)
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    async def stop(self) -> None:
        """Finish the batch in hand and let the pending pull expire, so no message is left
        waiting on a subscription that is gone (it would come back only after `ack_wait`)."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=FETCH_SECONDS + 5)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()

    async def _fetch(self) -> list[Any]:
        """The next events, as soon as there is one. A pull for a whole batch would hold a lone
        event until the batch fills or the pull expires (up to FETCH_SECONDS late), so wait for
        one, then take what else is already there."""
        msgs: list[Any] = await self._sub.fetch(1, timeout=FETCH_SECONDS)
        if self.batch > 1:
            with contextlib.suppress(TimeoutError, NatsTimeout):
                msgs += await self._sub.fetch(self.batch - 1, timeout=DRAIN_SECONDS)
        return msgs

    async def _run(self) -> None:
        while not self._stopping:
            try:
                msgs = await self._fetch()
            except (TimeoutError, NatsTimeout):
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consumer %s: fetch failed, retrying", self.name, exc_info=True)
                await asyncio.sleep(1.0)
                continue
            await self._apply(msgs)

    async def _apply(self, msgs: list[Any]) -> None:
        """Apply fetched events in order. Consecutive events of one tenant share a transaction:
        one commit instead of one per event (the commit's WAL flush is most of an event's cost)."""
        run: list[tuple[Any, dict[str, Any], str]] = []
        run_tenant = ""
        for msg in msgs:
            try:
                event = json.loads(msg.data)
                event_id, tenant = str(event["id"]), str(event.get("tenantid") or "")
            except (ValueError, KeyError, TypeError):
                log.error("consumer %s: dropping a malformed event on %s", self.name, msg.subject)
                await msg.term()
                continue
            if run and tenant != run_tenant:
                await self._apply_run(run_tenant, run)
                run = []
            run_tenant = tenant
            run.append((msg, event, event_id))
        if run:
            await self._apply_run(run_tenant, run)

    async def _apply_run(self, tenant: str, run: list[tuple[Any, dict[str, Any], str]]) -> None:
        if len(run) > 1:
            try:
                async with self.db.transaction(tenant_id=tenant) as conn:
                    for _, event, event_id in run:
                        await self._handle(conn, tenant, event, event_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # nothing of the run took effect: find the failing event one by one
                log.warning("consumer %s: a run of %d events failed; applying them one at a time", self.name,
                            len(run), exc_info=True)
            else:
                for msg, _, _ in run:
                    await msg.ack()
                return
        for msg, event, event_id in run:
            await self._one(msg, tenant, event, event_id)

    async def _handle(self, conn: Any, tenant: str, event: dict[str, Any], event_id: str) -> None:
        bound = context.bind(context.RequestContext(tenant_id=tenant, request_id=str(event.get("requestid", ""))))
        try:
            fresh = (await conn.execute(
                text(f'INSERT INTO "{self.schema}".processed_events (consumer, event_id) VALUES (:c, :e) '
                     "ON CONFLICT DO NOTHING RETURNING 1"), {"c": self.name, "e": event_id},
            )).first()
            if fresh is not None:
                await self.handler(conn, event)
        finally:
            context.reset(bound)

    async def _one(self, msg: Any, tenant: str, event: dict[str, Any], event_id: str) -> None:
        try:
            bound = context.bind(context.RequestContext(tenant_id=tenant))
            try:
                async with self.db.transaction(tenant_id=tenant) as conn:
                    await self._handle(conn, tenant, event, event_id)
            finally:
                context.reset(bound)
            await msg.ack()
        except asyncio.CancelledError:
            raise
        except Exception:
            deliveries = getattr(msg.metadata, "num_delivered", 1)
            if deliveries >= MAX_DELIVERIES:
                log.exception("consumer %s: parking event %s after %d attempts", self.name, event_id, deliveries)
                await msg.term()
            else:
                log.warning("consumer %s: event %s failed, will retry", self.name, event_id, exc_info=True)
                await msg.nak(delay=min(30.0, 0.5 * 2 ** deliveries))
