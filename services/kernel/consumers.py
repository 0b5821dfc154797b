"""Durable JetStream consumers: how a service reacts to other services' events.

A consumer is named (its durable name survives restarts, so nothing published while the
service was down is lost) and acknowledges an event only after its handler returned; a handler
that fails gets the event again later (back-off, at most `max_deliver` times). Delivery is at
least once, so handlers must be idempotent: the event id (`event["id"]`) is what to remember.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.kernel.events import STREAM, EventBus

log = logging.getLogger(__name__)

# Gets the CloudEvent as a dict; returns normally to acknowledge, raises to have it again.
EventHandler = Callable[[dict[str, Any]], Awaitable[None]]


class DurableConsumer:
    BATCH = 10

    def __init__(self, bus: EventBus, *, durable: str, subject: str, handler: EventHandler,
                 max_deliver: int = 8, ack_wait: float = 60.0) -> None:
        self.bus = bus
        self.durable = durable
        self.subject = subject
        self.handler = handler
        self.max_deliver = max_deliver
        self.ack_wait = ack_wait
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert self.bus.js is not None
        sub = await self.bus.js.pull_subscribe(
            self.subject,
            durable=self.durable,
            stream=STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,  # a new consumer also sees what came before it
                max_deliver=self.max_deliver,
                ack_wait=self.ack_wait,
            ),
        )
        self._task = asyncio.create_task(self._run(sub), name=f"consumer-{self.durable}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, sub: Any) -> None:
        while True:
            try:
                msgs = await sub.fetch(self.BATCH, timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consumer %s: fetch failed, retrying", self.durable, exc_info=True)
                await asyncio.sleep(1.0)
                continue
            for msg in msgs:
                await self._handle(msg)

    async def _handle(self, msg: Any) -> None:
        try:
            event = json.loads(msg.data)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            log.warning("consumer %s: dropping a malformed event (not a CloudEvent with a data object)", self.durable)
            await msg.term()
            return
        try:
            await self.handler(event)
        except asyncio.CancelledError:
            raise  # not acknowledged: delivered again after ack_wait
        except Exception:
            attempt = getattr(getattr(msg, "metadata", None), "num_delivered", 1) or 1
            log.warning("consumer %s: event %s failed (attempt %s)", self.durable, event.get("id"), attempt,
                        exc_info=True)
            await msg.nak(delay=min(2.0 ** attempt, 300.0))
            return
        await msg.ack()
