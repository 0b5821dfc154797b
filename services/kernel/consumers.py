"""Durable JetStream consumers: how a service reacts to other services' events.

A `DurableConsumer` pulls from the CRM stream under a durable name, so every process hosting
the service shares one position and a restart resumes where the last process stopped. Each
message is acked after its handler returns; a handler that raises gets the message again
later (at least once). Handlers make repeats invisible with `first_delivery`, which claims an
event id in the service's `consumed_events` table inside the handler's own transaction: the
claim and the effect commit together, or neither does.
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
from services.kernel.events import STREAM, EventBus

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


async def first_delivery(conn: AsyncConnection, schema: str, consumer: str, event_id: str) -> bool:
    """Claim `event_id` for `consumer` in the caller's transaction; False when it was handled before."""
    row = (
        await conn.execute(
            text(
                f'INSERT INTO "{schema}".consumed_events (consumer, event_id) VALUES (:c, :e) '
                "ON CONFLICT DO NOTHING RETURNING 1"
            ),
            {"c": consumer, "e": event_id},
        )
    ).first()
    return row is not None


async def prune_consumed_events(conn: AsyncConnection, schema: str, keep_days: int = 8) -> None:
    """Forget claims older than the stream keeps events (7 days): those ids cannot come back."""
    await conn.execute(text(
        f'DELETE FROM "{schema}".consumed_events WHERE consumed_at < now() - make_interval(days => :d)'), {"d": keep_days})


def create_consumed_events(op: Any, schema: str) -> None:
    """The table behind `first_delivery` (ids only, no tenant data: no row-level security needed)."""
    op.execute(
        f"""
        CREATE TABLE "{schema}".consumed_events (
            consumer text NOT NULL,
            event_id text NOT NULL,
            consumed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, event_id)
        )"""
    )
    op.execute(f'CREATE INDEX ix_consumed_events_at ON "{schema}".consumed_events (consumed_at)')


class DurableConsumer:
    """Pulls `subjects` under the durable `name` and hands each CloudEvent to `handler`.

    The handler runs with a request context bound to the event's tenant and request id, so
    database transactions and service calls it makes are scoped like an rpc's.
    """

    def __init__(self, bus: EventBus, name: str, subjects: list[str], handler: Handler, *,
                 batch: int = 32, max_deliver: int = 8, ack_wait: float = 60.0) -> None:
        self.bus = bus
        self.name = name
        self.subjects = subjects
        self.handler = handler
        self.batch = batch
        self.max_deliver = max_deliver
        self.ack_wait = ack_wait

    async def run(self) -> None:
        """Consume until cancelled; reconnects to the consumer after errors."""
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consumer %s: retrying after error", self.name, exc_info=True)
                await asyncio.sleep(1.0)

    async def _consume(self) -> None:
        assert self.bus.js is not None
        config = ConsumerConfig(
            durable_name=self.name,
            filter_subjects=self.subjects,
            ack_policy=AckPolicy.EXPLICIT,
            # A new consumer starts with what happens from now on, not the stream's past week.
            deliver_policy=DeliverPolicy.NEW,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
        )
        sub = await self.bus.js.pull_subscribe(self.subjects[0], durable=self.name, stream=STREAM, config=config)
        while True:
            try:
                messages = await sub.fetch(self.batch, timeout=1.0)
            except NatsTimeout:
                continue
            for msg in messages:
                await self._handle(msg)

    async def _handle(self, msg: Any) -> None:
        try:
            event = json.loads(msg.data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            log.warning("consumer %s: dropping a message that is not a CloudEvent", self.name)
            await msg.term()
            return
        ctx = context.RequestContext(tenant_id=str(event.get("tenantid") or ""),
                                     request_id=str(event.get("requestid") or event.get("id") or ""))
        token = context.bind(ctx)
        try:
            await self.handler(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            delivered = getattr(getattr(msg, "metadata", None), "num_delivered", 1) or 1
            log.exception("consumer %s: event %s failed (delivery %s)", self.name, event.get("id"), delivered)
            with contextlib.suppress(Exception):
                await msg.nak(delay=min(30.0, 0.5 * 2 ** delivered))
            return
        finally:
            context.reset(token)
        await msg.ack()
