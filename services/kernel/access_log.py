"""Reads of personal data are events too: who listed, read or exported which records.

After a successful read rpc on a personal-data resource the interceptor hands the answer
here; the ids it carries are batched and published as `crm.access.<resource>.<access>`
events, which the audit service records for its data-access report. A read has no
transaction to share an outbox with, so this path is at-most-once: a crash can lose the last
second of access records, never a change of data (those travel through the outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from crm.common.v1 import annotations_pb2
from google.protobuf.message import Message

from services.kernel import context
from services.kernel.events import EventBus, cloudevent

log = logging.getLogger(__name__)

PERSONAL_RESOURCES = frozenset({"contacts", "leads", "users"})
MAX_IDS = 100  # per event; a longer list page is recorded by its first ids and its count
QUEUE_LIMIT = 10_000  # beyond this, records are dropped (and counted in the log) rather than stall rpcs


def _ids(response: Message) -> tuple[list[str], str]:
    """Record ids an answer discloses, and whether it was one record or a list."""
    fields = {f.name: f for f in response.DESCRIPTOR.fields}
    if "id" in fields and not fields["id"].is_repeated:
        return [str(getattr(response, "id"))], "read"  # noqa: B009 - any message with an id
    for f in response.DESCRIPTOR.fields:
        if f.is_repeated and f.message_type is not None and "id" in f.message_type.fields_by_name:
            return [str(item.id) for item in getattr(response, f.name)], "listed"
    return [], "read"


class AccessLog:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def observe(self, method: str, policy: annotations_pb2.MethodPolicy, response: Message | None) -> None:
        resource, _, action = policy.permission.partition(":")
        if resource not in PERSONAL_RESOURCES or action not in ("read", "export"):
            return
        ctx = context.current()
        if not ctx.tenant_id:
            return
        ids: list[str]
        if action == "export":
            ids, access = [], "exported"
        elif response is not None:
            ids, access = _ids(response)
            if not ids:
                return
        else:
            return
        entity = resource.rstrip("s")
        event = cloudevent(event_type=f"crm.access.{entity}.{access}", source="crm/kernel", subject=ids[0] if ids else "",
                           data={"entityType": entity, "entityIds": ids[:MAX_IDS], "count": len(ids), "rpc": method},
                           tenant_id=ctx.tenant_id)
        try:
            self._queue.put_nowait((event["type"], event))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("access log queue full: %d access records dropped", self.dropped)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="access-log")

    async def stop(self) -> None:
        # Flush what is queued (bounded), then stop.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            subject, event = await self._queue.get()
            try:
                await self.bus.publish(subject, json.dumps(event, default=str).encode(), str(event["id"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("access log: publishing failed; record dropped", exc_info=True)
            finally:
                self._queue.task_done()
