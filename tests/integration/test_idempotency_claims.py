"""Idempotency-Key claims against the real key-value bucket: a slow request keeps its key, a dead
holder's claim is taken over (services/kernel/idempotency.py)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from crm.common.v1 import common_pb2

from services.devstack import DevStack
from services.kernel import context, idempotency
from services.kernel.events import EventBus
from services.kernel.idempotency import Answer, IdempotencyKeys

ABANDONED = 0.6  # seconds, instead of a minute, so the test waits past it


@pytest.fixture
async def keys(stack: DevStack, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[IdempotencyKeys]:
    monkeypatch.setattr(idempotency, "ABANDONED_SECONDS", ABANDONED)
    bus = EventBus(stack.nats_url)
    await bus.connect()
    token = context.bind(context.RequestContext(tenant_id=str(uuid.uuid4()), user_id=str(uuid.uuid4())))
    try:
        yield IdempotencyKeys(bus)
    finally:
        context.reset(token)
        await bus.close()


async def test_a_request_slower_than_the_takeover_delay_keeps_its_key(keys: IdempotencyKeys) -> None:
    runs = 0

    async def slow() -> Answer:
        nonlocal runs
        runs += 1
        await asyncio.sleep(4 * ABANDONED)
        return common_pb2.PageInfo(total=runs), []

    request = common_pb2.PageInfo(page=1)
    first = asyncio.create_task(keys.once("/crm.test/Slow", "key-1", request, common_pb2.PageInfo, slow))
    await asyncio.sleep(2 * ABANDONED)  # the first still runs, long past the takeover delay
    second, _ = await keys.once("/crm.test/Slow", "key-1", request, common_pb2.PageInfo, slow)
    answer, _ = await first
    assert runs == 1, "a retry took over the key of a request that was only slow, and ran it again"
    assert second == answer


async def test_a_claim_its_holder_stopped_renewing_is_taken_over(keys: IdempotencyKeys) -> None:
    runs = 0

    async def once_more() -> Answer:
        nonlocal runs
        runs += 1
        return common_pb2.PageInfo(total=7), []

    request = common_pb2.PageInfo(page=2)
    # A holder claimed the key and died (no renewal, no answer): its claim stays as it left it.
    claim = {"state": "running", "hash": idempotency.fingerprint_of(request), "at": time.time()}
    kv = await keys._bucket()
    await kv.put(idempotency.scope_of("/crm.test/Dies", "key-2"), json.dumps(claim).encode())
    started = time.monotonic()
    answer, _ = await keys.once("/crm.test/Dies", "key-2", request, common_pb2.PageInfo, once_more)
    waited = time.monotonic() - started
    assert runs == 1 and answer == common_pb2.PageInfo(total=7)
    assert waited >= ABANDONED * 0.9, f"taken over after {waited:.2f}s, before the claim was abandoned"
