"""API calls per tenant: counted in memory by the interceptor, published as events every few seconds.

Counting must cost next to nothing on the request path (one dict increment per rpc), and any
process may host any services, so there is no table to write to here: each interval the counts
go out as `crm.usage.api.counted` CloudEvents (one per tenant and UTC day) on JetStream, where
the tenants service's durable consumer adds them up. A publish that fails puts its counts back
for the next try; a process that crashes loses at most one interval of counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections import defaultdict

from services.kernel.events import EventBus, cloudevent

log = logging.getLogger(__name__)

API_CALLS_COUNTED = "crm.usage.api.counted"  # data: {day: "YYYY-MM-DD", calls: n}
_DAY = 86_400


class ApiCallMeter:
    """Authenticated rpcs per (tenant, UTC day), flushed to the event bus by `run`."""

    def __init__(self) -> None:
        self._counts: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._task: asyncio.Task[None] | None = None

    def record(self, tenant_id: str) -> None:
        if tenant_id:
            self._counts[(tenant_id, int(time.time()) // _DAY)] += 1

    def _take(self) -> dict[tuple[str, int], int]:
        taken, self._counts = self._counts, defaultdict(int)
        return dict(taken)

    async def flush(self, bus: EventBus) -> int:
        """Publish what was counted since the last flush; returns the number of events sent."""
        pending = self._take()
        sent = 0
        for (tenant, day), calls in pending.items():
            event = cloudevent(event_type=API_CALLS_COUNTED, source="crm/kernel", subject=tenant, tenant_id=tenant,
                               data={"day": dt.datetime.fromtimestamp(day * _DAY, dt.UTC).date().isoformat(), "calls": calls})
            try:
                await bus.publish(API_CALLS_COUNTED, json.dumps(event).encode(), event["id"])
                sent += 1
            except Exception:  # noqa: BLE001 - NATS away: keep the count for the next flush
                self._counts[(tenant, day)] += calls
        return sent

    def start(self, bus: EventBus, interval: float) -> None:
        async def run() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.flush(bus)
                except Exception:
                    log.warning("api call meter: flush failed", exc_info=True)

        self._task = asyncio.create_task(run(), name="api-call-meter")

    async def stop(self, bus: EventBus) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush(bus)
