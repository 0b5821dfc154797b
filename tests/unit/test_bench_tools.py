"""The benchmark's own arithmetic and plumbing (bench/): what it reports must be right even
though nothing here measures speed."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys

import pytest

from bench import procstat
from bench.loadgen import HttpWorkers, encode_request, run_load
from bench.run import require_all_ok
from bench.stats import LoadResult, load_table, percentile, render_table


def test_percentile_is_nearest_rank() -> None:
    values = [15, 20, 35, 40, 50]
    assert [percentile(values, q) for q in (0, 5, 30, 40, 50, 100)] == [15, 15, 20, 20, 35, 50]
    hundred = list(range(1, 101))
    assert percentile(hundred, 50) == 50
    assert percentile(hundred, 99) == 99
    assert percentile(hundred, 99.5) == 100
    assert percentile([7], 99) == 7
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(hundred, 101)


def test_rates_and_ratios_to_the_floor() -> None:
    floor = LoadResult("floor", "get by id", seconds=2.0, latencies_ns=[1_000_000] * 1000)
    rest = LoadResult("REST via Envoy", "get by id", seconds=2.0, latencies_ns=[2_000_000, 4_000_000] * 100, errors=3)
    assert floor.rate == 500 and rest.rate == 100
    table = load_table([rest, floor], {"get by id": floor})
    rest_line = next(line for line in table.splitlines() if line.startswith("| REST"))
    cells = [c.strip() for c in rest_line.strip("|").split("|")]
    assert cells == ["REST via Envoy: get by id", "100", "2.00", "4.00", "3", "0.20×", "2.0×"]


def test_cpu_accounting_leaves_other_work_apart() -> None:
    r = LoadResult("gRPC direct", "GetContact", seconds=5.0, latencies_ns=[1] * 1000,
                   cpu={"client": 1.0, "services": 4.0}, machine_cpu=7.5, machine_capacity=10.0)
    assert r.cpu_ms_per_request("services") == 4.0
    assert r.cores("services") == 0.8
    assert r.other_cores == pytest.approx(0.5)
    assert r.machine_busy == 0.75


def test_render_table_aligns_columns() -> None:
    text = render_table(["name", "n"], [["a", "1"], ["longer", "1,000"]])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[1].startswith("|--") and lines[1].endswith(":|")


def test_children_and_cpu_of_processes() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in procstat.children(os.getpid())
        assert procstat.process_cpu(os.getpid()) > 0
        assert procstat.process_cpu(2**22 + 12345) == 0.0  # no such process
    finally:
        child.kill()
        child.wait()
    busy, total = procstat.machine_ticks()
    assert 0 <= busy <= total


async def test_http_client_parses_chunked_and_reconnects_after_close() -> None:
    """Against a real socket: chunked and sized bodies, and a server that closes the connection."""
    connections = 0
    answers = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
    ]
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while answers:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head.split(b"\r\n", 1)[0])
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if b"Connection: close" in answer:
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        workers = HttpWorkers("127.0.0.1", port, lambda i: encode_request("GET", f"/r/{i}", "x", {}), 201)
        call = await workers()
        assert await call(0) is False  # 200 is not the 201 this worker expects
        assert await call(1) is True
        await asyncio.sleep(0.05)  # the server has closed; the next call reconnects
        assert await call(2) is False
        # The first wrong answer is kept for the report, not a later one.
        assert workers.first_failure == "answered 200: b'hello world'"
        workers.close()
    finally:
        server.close()
        await server.wait_closed()
    assert connections == 2
    assert seen == [b"GET /r/0 HTTP/1.1", b"GET /r/1 HTTP/1.1", b"GET /r/2 HTTP/1.1"]


async def test_run_load_counts_only_successes_in_rate_and_latency() -> None:
    async def make() -> object:
        async def call(i: int) -> bool:
            await asyncio.sleep(0)
            if i % 3 == 2:
                raise ConnectionError("refused")
            return i % 3 == 0

        return call

    groups = procstat.CpuGroups()
    groups.add("client", os.getpid())
    r = await run_load("t", "mixed", make, concurrency=1, warmup=0.0, duration=0.2, cpu=groups)  # type: ignore[arg-type]
    assert r.count > 0 and r.errors > 0
    # One success per two failures, give or take the request cut at each edge of the window.
    assert abs(r.errors - 2 * r.count) <= 3
    assert set(r.cpu) == {"client"}
    # The first failure says what went wrong, so a run stopped by it can be told why.
    assert r.first_error in ("answered without data", "ConnectionError: refused")


def test_a_run_with_failed_requests_stops_the_bench_with_the_first_answer() -> None:
    require_all_ok(LoadResult("REST via Envoy", "forecast", 1.0, latencies_ns=[1]), None)
    failed = LoadResult("REST via Envoy", "forecast", 1.0, latencies_ns=[1], errors=2,
                        first_error="answered without data")
    with pytest.raises(RuntimeError, match="forecast: 2 failed requests.*answered without data"):
        require_all_ok(failed, None)
    # Failures only in the warm-up still stop it: the measured rows would hide them.
    with pytest.raises(RuntimeError, match="the first failure: answered 429"):
        require_all_ok(LoadResult("g", "n", 1.0, first_error="answered 429: b'{}'"), None)
