"""Reads of personal data are events too: who listed, read or exported which records.

After a successful read rpc on a personal-data resource the interceptor hands the answer
here. Accesses are gathered per (tenant, actor, entity type, kind of access) and published
once a second as one `crm.access.<entity>.<access>` event carrying each record id with its
count, so a user paging through contacts costs one event per second, not one per request.
The audit service records them for its data-access report. A read has no transaction to
share an outbox with, so this path is at-most-once: a crash can lose the last second of
access records, never a change of data (those travel through the outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from crm.common.v1 import annotations_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from services.kernel import context
from services.kernel.events import EventBus

log = logging.getLogger(__name__)

PERSONAL_RESOURCES = frozenset({"contacts", "leads", "users"})
FLUSH_SECONDS = 1.0
MAX_IDS = 1000  # per event; a batch reaching it is published at once
MAX_BATCHES = 10_000  # open batches; beyond it records are dropped (and logged) rather than grow memory


@functools.cache
def _id_field(descriptor: Descriptor) -> tuple[str, bool]:
    """Where an answer of this type keeps record ids: ("id", False) for one record, (name of the
    repeated field, True) for a list, ("", False) for neither. Read once per message type."""
    own = descriptor.fields_by_name.get("id")
    if own is not None and not own.is_repeated:
        return "id", False
    for f in descriptor.fields:
        if f.is_repeated and f.message_type is not None and "id" in f.message_type.fields_by_name:
            return f.name, True
    return "", False


def _ids(response: Message) -> tuple[list[str], str]:
    """Record ids an answer discloses, and whether it was one record or a list."""
    name, listed = _id_field(response.DESCRIPTOR)
    if not name:
        return [], "read"
    if listed:
        return [str(item.id) for item in getattr(response, name)], "listed"
    return [str(getattr(response, name))], "read"


@dataclass
class _Batch:
    client_ip: str
    user_agent: str
    rpcs: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    accesses: int = 0


class AccessLog:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._batches: dict[tuple[str, str, str, str], _Batch] = {}
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
        key = (ctx.tenant_id, ctx.user_id, resource.rstrip("s"), access)
        batch = self._batches.get(key)
        if batch is None:
            if len(self._batches) >= MAX_BATCHES:
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("access log full: %d access records dropped", self.dropped)
                return
            batch = self._batches[key] = _Batch(ctx.client_ip, ctx.user_agent[:300])
        batch.rpcs.add(method)
        batch.accesses += 1
        batch.counts.update(ids)
        if len(batch.counts) >= MAX_IDS:
            self._publish_soon(key, self._batches.pop(key))

    def _publish_soon(self, key: tuple[str, str, str, str], batch: _Batch) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(key, batch))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _publish(self, key: tuple[str, str, str, str], batch: _Batch) -> None:
        tenant, actor, entity, access = key
        event_id, event_type = str(uuid.uuid4()), f"crm.access.{entity}.{access}"
        event: dict[str, Any] = {
            "specversion": "1.0", "id": event_id, "source": "crm/kernel",
            "type": event_type, "subject": next(iter(batch.counts), ""),
            "time": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"), "datacontenttype": "application/json",
            "tenantid": tenant, "actorid": actor, "requestid": "", "clientip": batch.client_ip,
            "useragent": batch.user_agent,
            "data": {"entityType": entity, "entityIds": list(batch.counts), "counts": dict(batch.counts),
                     "count": batch.accesses, "rpcs": sorted(batch.rpcs)},
        }
        try:
            await self.bus.publish(event_type, json.dumps(event).encode(), event_id)
        except Exception:
            log.warning("access log: publishing failed; %d access records dropped", batch.accesses, exc_info=True)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="access-log")

    async def flush(self) -> None:
        batches, self._batches = self._batches, {}
        await asyncio.gather(*(self._publish(k, b) for k, b in batches.items()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout=2.0)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()
