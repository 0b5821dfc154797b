"""Durable event consumers whose effects happen once per event, whatever NATS redelivers.

A consumer is a durable JetStream pull consumer. Each event's handler runs in a database
transaction that also records the event id in the service's `processed_events` table; a
redelivered or replayed event finds its id there and is acknowledged without effect. An event
is acknowledged only after that transaction commits, so a crash in between means one more
delivery, never a lost event.

A consumer created with `runs=True` applies consecutive events of one tenant (as fetched, in
order) in one transaction: one commit instead of one per event, and the commit's WAL flush is
most of what a small event costs. Each event still records its id, so the effects stay once
per event. If anything in the run fails, the whole run rolls back and its events are applied
again one per transaction, so only the failing event waits for redelivery. Handlers of such a
consumer must keep their effects inside the given transaction (or behind a follow-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context
from services.kernel.db import Database
from services.kernel.events import STREAM, EventBus

log = logging.getLogger(__name__)

# A handler writes its effect in the given transaction. It may return a follow-up to run once
# that transaction has committed (e.g. executing automation runs it recorded); a follow-up that
# fails is only logged: what it must not lose is already committed for a periodic pass to find.
FollowUp = Callable[[], Awaitable[None]]
Handler = Callable[[AsyncConnection, dict[str, Any]], Awaitable[FollowUp | None]]
PRUNE_EVERY_SECONDS = 3600.0
KEEP_IDS_DAYS = 8  # longer than the stream keeps events (7 days): older ids cannot come back
FETCH_SECONDS = 1.0
DRAIN_SECONDS = 0.01  # how long to wait for more once one event has arrived
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
    op.execute(f'CREATE INDEX ix_processed_events_at ON "{schema}".processed_events (consumer, processed_at)')


class DurableConsumer:
    def __init__(self, db: Database, bus: EventBus, *, schema: str, name: str, subject: str,
                 handler: Handler, batch: int = 100, accepts: Callable[[dict[str, Any]], bool] | None = None,
                 runs: bool = False) -> None:
        self.db, self.bus = db, bus
        self.accepts = accepts  # events it rejects are acked without a transaction
        self.schema, self.name, self.subject, self.handler, self.batch = schema, name, subject, handler, batch
        self.runs = runs  # a tenant's consecutive events in one transaction (see the module's docstring)
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

    async def _prune(self) -> None:
        async with self.db.transaction(tenant_id="") as conn:
            await conn.execute(text(f'DELETE FROM "{self.schema}".processed_events WHERE consumer = :c '
                                    "AND processed_at < now() - make_interval(days => :d)"),
                               {"c": self.name, "d": KEEP_IDS_DAYS})

    async def _run(self) -> None:
        pruned = 0.0
        while not self._stopping:
            if time.monotonic() - pruned > PRUNE_EVERY_SECONDS:
                pruned = time.monotonic()
                try:
                    await self._prune()
                except Exception:
                    log.warning("consumer %s: pruning processed ids failed", self.name, exc_info=True)
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
        """Apply fetched events in order: each alone, or (`runs`) each run of one tenant's
        consecutive events together."""
        run: list[_Event] = []
        for msg in msgs:
            event = await self._decode(msg)
            if event is None:
                continue
            if run and (not self.runs or event.tenant != run[0].tenant):
                await self._apply_run(run)
                run = []
            run.append(event)
        if run:
            await self._apply_run(run)

    async def _decode(self, msg: Any) -> _Event | None:
        """The event of a message; None for one that is settled already (malformed: terminated;
        not accepted: acknowledged)."""
        try:
            event = json.loads(msg.data)
            decoded = _Event(msg, event, str(event["id"]), str(event.get("tenantid") or ""))
        except (ValueError, KeyError, TypeError):
            log.error("consumer %s: dropping a malformed event on %s", self.name, msg.subject)
            await msg.term()
            return None
        if self.accepts is not None and not self.accepts(event):
            await msg.ack()
            return None
        return decoded

    async def _fresh(self, conn: AsyncConnection, events: list[_Event]) -> set[str]:
        """Record the events' ids; those not recorded before (one statement, straight through
        asyncpg in the caller's transaction: this runs for every event of every consumer)."""
        raw = await conn.get_raw_connection()
        pg = raw.driver_connection
        assert pg is not None
        rows = await pg.fetch(f'INSERT INTO "{self.schema}".processed_events (consumer, event_id) '
                              "SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
                              self.name, [e.event_id for e in events])
        return {r[0] for r in rows}

    async def _handle(self, conn: AsyncConnection, e: _Event) -> FollowUp | None:
        bound = context.bind(context.RequestContext(tenant_id=e.tenant, request_id=str(e.event.get("requestid", ""))))
        try:
            return await self.handler(conn, e.event)
        finally:
            context.reset(bound)

    async def _apply_fresh(self, conn: AsyncConnection, events: list[_Event]) -> list[tuple[str, FollowUp]]:
        """Apply, in order, the events not seen before (a copy later in the same run is not)."""
        fresh = await self._fresh(conn, events)
        follow_ups: list[tuple[str, FollowUp]] = []
        for e in events:
            if e.event_id in fresh:
                fresh.discard(e.event_id)
                follow_up = await self._handle(conn, e)
                if follow_up is not None:
                    follow_ups.append((e.event_id, follow_up))
        return follow_ups

    async def _apply_run(self, run: list[_Event]) -> None:
        if len(run) > 1:
            bound = context.bind(context.RequestContext(tenant_id=run[0].tenant))
            try:
                async with self.db.transaction(tenant_id=run[0].tenant) as conn:
                    follow_ups = await self._apply_fresh(conn, run)
            except asyncio.CancelledError:
                raise
            except Exception:  # nothing of the run took effect: apply its events one at a time
                log.warning("consumer %s: a run of %d events failed; applying them one at a time", self.name,
                            len(run), exc_info=True)
            else:
                for e in run:
                    await e.msg.ack()
                for event_id, follow_up in follow_ups:
                    await self._follow(event_id, follow_up)
                return
            finally:
                context.reset(bound)
        for e in run:
            await self._one(e)

    async def _follow(self, event_id: str, follow_up: FollowUp) -> None:
        try:
            await follow_up()
        except Exception:
            log.warning("consumer %s: follow-up of event %s failed", self.name, event_id, exc_info=True)

    async def _one(self, e: _Event) -> None:
        """One event in its own transaction; on failure it is redelivered later (or parked)."""
        bound = context.bind(context.RequestContext(tenant_id=e.tenant))
        try:
            async with self.db.transaction(tenant_id=e.tenant) as conn:
                follow_ups = await self._apply_fresh(conn, [e])
            await e.msg.ack()
            for event_id, follow_up in follow_ups:
                await self._follow(event_id, follow_up)
        except asyncio.CancelledError:
            raise
        except Exception:
            deliveries = getattr(e.msg.metadata, "num_delivered", 1)
            if deliveries >= MAX_DELIVERIES:
                log.exception("consumer %s: parking event %s after %d attempts", self.name, e.event_id, deliveries)
                await e.msg.term()
            else:
                log.warning("consumer %s: event %s failed, will retry", self.name, e.event_id, exc_info=True)
                await e.msg.nak(delay=min(30.0, 0.5 * 2 ** deliveries))
        finally:
            context.reset(bound)


@dataclass(frozen=True)
class _Event:
    msg: Any
    event: dict[str, Any]
    event_id: str
    tenant: str
