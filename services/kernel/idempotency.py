"""`Idempotency-Key` on POST: the first answer is kept and replayed for the same key; the same key
with another body is refused; parallel requests with one key run the rpc once.

Keys live in a JetStream key-value bucket (every process of every service shares it; entries
expire after a day). The first request claims the key with an atomic create, runs, and stores
its answer; concurrent ones wait for that answer and replay it. The holder renews its claim
while it runs, so a slow request keeps its key however long it takes; a claim whose holder died
stops being renewed and is taken over after `ABANDONED_SECONDS` with a compare-and-set, so a
crash cannot wedge a key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.protobuf.message import Message
from nats.errors import Error as NatsError
from nats.js.api import KeyValueConfig
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.kernel import context
from services.kernel.errors import Conflict, FieldViolation, InvalidArgument, Unavailable, validation
from services.kernel.events import EventBus

BUCKET = "crm-idempotency"
KEEP_SECONDS = 24 * 3600
ABANDONED_SECONDS = 60.0
RENEW_FRACTION = 1 / 3  # a running claim is renewed every third of ABANDONED_SECONDS
WAIT_SECONDS = 30.0
MAX_KEY_LENGTH = 255
STORE_SECONDS = 5.0  # one key-value operation; NATS down answers 503 instead of hanging

log = logging.getLogger(__name__)
T = TypeVar("T")

Answer = tuple[Message, list[tuple[str, str]]]


def scope_of(method: str, key: str) -> str:
    """The bucket key of an Idempotency-Key: per caller and rpc, so one user's key never answers
    another's request."""
    ctx = context.current()
    return hashlib.sha256(f"{ctx.tenant_id}\n{ctx.user_id}\n{method}\n{key}".encode()).hexdigest()


def fingerprint_of(request: Message) -> str:
    """What tells a retry of the same request from another request under the same key."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


def _running(fingerprint: str) -> bytes:
    """A claim on a key, as of now (a claim not renewed for ABANDONED_SECONDS may be taken over)."""
    return json.dumps({"state": "running", "hash": fingerprint, "at": time.time()}).encode()


class IdempotencyKeys:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            assert self.bus.js is not None
            self._kv = await self.bus.js.create_key_value(KeyValueConfig(bucket=BUCKET, ttl=KEEP_SECONDS, history=1))
        return self._kv

    async def once(self, method: str, key: str, request: Message, response_class: type[Message],
                   run: Callable[[], Awaitable[Answer]]) -> Answer:
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidArgument("Idempotency-Key must be 1 to 255 characters",
                                  violations=[FieldViolation("Idempotency-Key", "1 to 255 characters")])
        scope, fingerprint = scope_of(method, key), fingerprint_of(request)
        kv = await self._store(self._bucket())
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            claim = _running(fingerprint)
            try:
                return await self._run(kv, scope, fingerprint, await self._store(kv.create(scope, claim)), run)
            except KeyWrongLastSequenceError:
                pass  # someone holds the key: replay its answer, wait for it, or take it over
            try:
                entry = await self._store(kv.get(scope))
            except KeyNotFoundError:
                continue  # released meanwhile (its attempt failed): claim it
            stored: dict[str, Any] = json.loads(entry.value or b"{}")
            if stored.get("hash") != fingerprint:
                raise validation([FieldViolation("Idempotency-Key", "was used with a different request",
                                                 "IDEMPOTENCY_KEY_REUSED")])
            if stored.get("state") == "done":
                response = response_class.FromString(base64.b64decode(stored["response"]))
                return response, [(str(k), str(v)) for k, v in stored.get("trailers", [])]
            if time.time() - float(stored.get("at", 0)) > ABANDONED_SECONDS:
                try:
                    revision = await self._store(kv.update(scope, claim, last=entry.revision))
                    return await self._run(kv, scope, fingerprint, revision, run)
                except KeyWrongLastSequenceError:
                    continue  # another request took it over first
            if time.monotonic() > deadline:
                raise Conflict("a request with this Idempotency-Key is still running", reason="IDEMPOTENCY_KEY_IN_USE")
            await asyncio.sleep(0.05)

    async def _run(self, kv: KeyValue, scope: str, fingerprint: str, revision: int,
                   run: Callable[[], Awaitable[Answer]]) -> Answer:
        held = [revision]  # the claim's latest revision, as renewals move it on
        renewing = asyncio.create_task(self._renew(kv, scope, fingerprint, held))
        try:
            response, trailers = await run()
        except BaseException:
            renewing.cancel()  # (the finally below cancels it on success)
            with contextlib.suppress(BaseException):
                await renewing  # settled, so `held` names the claim's last revision
            # A failed attempt lets the key go, so the client may retry with it (if this fails too,
            # the claim is taken over once abandoned).
            with contextlib.suppress(Exception):
                await kv.delete(scope, last=held[0])
            raise
        finally:
            renewing.cancel()
        try:
            stored = json.loads((await self._store(kv.get(scope))).value or b"{}")
            stored.update(state="done", response=base64.b64encode(response.SerializeToString()).decode(),
                          trailers=trailers)
            await self._store(kv.put(scope, json.dumps(stored).encode()))
        except Unavailable:
            # The work is done: answer it. Only a retry of this key may find the claim and,
            # once abandoned, run again.
            log.warning("idempotency: the answer could not be kept (NATS unreachable)")
        return response, trailers

    async def _renew(self, kv: KeyValue, scope: str, fingerprint: str, held: list[int]) -> None:
        """Keep a running claim fresh, so no one takes over a request that is only slow."""
        while True:
            await asyncio.sleep(ABANDONED_SECONDS * RENEW_FRACTION)
            try:
                held[0] = await self._store(kv.update(scope, _running(fingerprint), last=held[0]))
            except KeyWrongLastSequenceError:
                return  # no longer ours to renew
            except Unavailable:
                log.warning("idempotency: a running claim could not be renewed (NATS unreachable)")

    @staticmethod
    async def _store(op: Awaitable[T]) -> T:
        """One key-value operation; NATS out of reach is a 503 to retry, not a 500 or a hang."""
        try:
            return await asyncio.wait_for(op, STORE_SECONDS)
        except (KeyNotFoundError, KeyWrongLastSequenceError):
            raise
        except (NatsError, TimeoutError, ConnectionError) as exc:
            raise Unavailable("the idempotency key store (NATS) is unreachable; retry shortly",
                              reason="IDEMPOTENCY_UNAVAILABLE") from exc
