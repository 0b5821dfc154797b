"""A small closed-loop load generator: N workers, each with one request in flight, for a fixed time.

HTTP goes over raw keep-alive HTTP/1.1 connections (one per worker, requests pre-encoded,
responses parsed by httptools in C) because a general client such as httpx spends more CPU per
request than the servers under test on this 2-core machine. gRPC uses grpc.aio, the fastest
Python gRPC client; its cost is measured and printed like the rest.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping

import httptools

from bench.procstat import CpuGroups, delta
from bench.stats import LoadResult

Call = Callable[[int], Awaitable[bool]]  # the i-th request overall -> did it succeed?


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("connection closed"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.chunks = []

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.chunks)))

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send a pre-encoded request; the status and body of its response."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int) -> HttpConnection:
    _, conn = await asyncio.get_running_loop().create_connection(HttpConnection, host, port)
    return conn


def encode_request(method: str, target: str, host: str, headers: Mapping[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class HttpWorkers:
    """Makes workers that each own one connection (re-opened if the server closes it)."""

    def __init__(self, host: str, port: int, build: Callable[[int], bytes], ok_status: int,
                 check: Callable[[bytes], bool] | None = None) -> None:
        self.host, self.port, self.build, self.ok_status, self.check = host, port, build, ok_status, check
        self.conns: list[HttpConnection] = []
        self.first_failure = ""  # the first wrong answer a worker got

    async def __call__(self) -> Call:
        slot = len(self.conns)
        self.conns.append(await connect(self.host, self.port))

        async def call(i: int) -> bool:
            conn = self.conns[slot]
            if conn.closed:
                conn = self.conns[slot] = await connect(self.host, self.port)
            status, body = await conn.request(self.build(i))
            if status != self.ok_status or (self.check is not None and not self.check(body)):
                if not self.first_failure:
                    self.first_failure = f"answered {status}: {body[:300]!r}"  # for the report
                return False
            return True

        return call

    async def probe(self) -> None:
        """One request before the load: a target that answers wrongly stops the run, with its answer."""
        conn = await connect(self.host, self.port)
        try:
            status, body = await conn.request(self.build(0))
        finally:
            conn.close()
        if status != self.ok_status or (self.check is not None and not self.check(body)):
            raise RuntimeError(f"127.0.0.1:{self.port} answered {status}: {body[:500]!r}")

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.conns.clear()


async def run_load(
    group: str,
    name: str,
    make_worker: Callable[[], Awaitable[Call]],
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    cpu: CpuGroups,
) -> LoadResult:
    """Run `concurrency` workers for warmup + duration seconds; measure only the last `duration`.

    A request counts when it starts inside the measured window; only successful ones count
    towards throughput and latency (failures are counted apart). CPU is sampled at the edges.
    """
    result = LoadResult(group, name, duration)
    calls = [await make_worker() for _ in range(concurrency)]
    counter = itertools.count()
    now = time.perf_counter_ns()
    start = now + int(warmup * 1e9)
    end = start + int(duration * 1e9)
    samples = []

    async def worker(call: Call) -> None:
        latencies = result.latencies_ns
        while True:
            t0 = time.perf_counter_ns()
            if t0 >= end:
                return
            failure = ""
            try:
                ok = await call(next(counter))
                if not ok:
                    failure = "answered without data"
            except Exception as exc:  # noqa: BLE001 - a failed request is counted, not fatal
                ok, failure = False, f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.01)  # a refused connection must not spin the loop
            if t0 >= start:
                if ok:
                    latencies.append(time.perf_counter_ns() - t0)
                else:
                    result.errors += 1
            if failure and not result.first_error:
                result.first_error = failure  # kept even from the warm-up: the caller shows why

    async def sampler() -> None:
        await asyncio.sleep((start - time.perf_counter_ns()) / 1e9)
        samples.append(cpu.sample())
        await asyncio.sleep((end - time.perf_counter_ns()) / 1e9)
        samples.append(cpu.sample())

    await asyncio.gather(sampler(), *(worker(c) for c in calls))
    result.cpu, result.machine_cpu, result.machine_capacity = delta(samples[0], samples[1])
    return result
