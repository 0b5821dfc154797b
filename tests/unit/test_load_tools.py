"""The load test's own machinery (bench/load.py): the open loop keeps its rate whatever the latency,
answers are judged against the envelope, memory growth is flagged only when it is growth."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time

import pytest

from bench import load, procstat
from bench.load import MIB, Connections, Outcome, Request, Settings, check_answer, open_loop, parse_mix
from bench.loadgen import encode_request

ENVELOPE_OK = b'{"success":true,"data":{"id":"1"},"meta":{"timestamp":"t","version":"v1","requestId":"r"},"errors":[]}'
ENVELOPE_LIST = (b'{"success":true,"data":[],"meta":{"timestamp":"t","version":"v1","requestId":"r",'
                 b'"pagination":{"page":1,"limit":20,"total":0,"hasNext":false,"hasPrev":false}},"errors":[]}')


def refusal(code: str) -> bytes:
    return (b'{"success":false,"data":null,"meta":{"timestamp":"t","version":"v1","requestId":"r"},'
            b'"errors":[{"code":"' + code.encode() + b'","message":"m","field":""}]}')


async def test_open_loop_sends_at_the_rate_however_slow_the_answers() -> None:
    """A server taking 200 ms per answer: a closed loop on one connection would send 5 requests
    a second; the open loop sends all 40 due in 0.8 s, and their latency shows the slowness."""
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await asyncio.sleep(0.2)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(ENVELOPE_OK)).encode() + b"\r\n\r\n"
                             + ENVELOPE_OK)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(slow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conns = Connections("127.0.0.1", port, limit=64)
    latencies: list[float] = []
    in_flight = most = 0

    async def fire(i: int, due: float) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        status, body = await conns.request(encode_request("GET", f"/{i}", "x", {}), timeout=5)
        in_flight -= 1
        assert check_answer(status, body, Request("GET", "/"))[0] is None
        latencies.append(time.perf_counter() - due)

    start = time.perf_counter() + 0.01
    try:
        sent = await open_loop(load.arrival_offsets(50, "uniform", random.Random(1)), start, start + 0.8, fire)
    finally:
        conns.close()
        await asyncio.sleep(0.05)  # the handlers see the connections end
        server.close()
        await server.wait_closed()
    assert sent == 40 and len(latencies) == 40
    assert min(latencies) >= 0.2
    assert most >= 8  # 50 req/s x 0.2 s each: about ten at once, each on its own connection
    assert conns.opened == most


def test_arrivals_uniform_and_poisson_have_the_target_rate() -> None:
    uniform = load.arrival_offsets(40, "uniform", random.Random(1))
    assert [next(uniform) for _ in range(3)] == [0.0, 0.025, 0.05]
    poisson = load.arrival_offsets(100, "poisson", random.Random(7))
    offsets = [next(poisson) for _ in range(20_000)]
    assert offsets == sorted(offsets)
    assert 20_000 / offsets[-1] == pytest.approx(100, rel=0.03)
    with pytest.raises(ValueError):
        next(load.arrival_offsets(1, "bursty", random.Random(1)))


def test_answers_are_judged_by_status_envelope_and_code() -> None:
    get, listing = Request("GET", "/x"), Request("GET", "/x", listing=True)
    denied = Request("PUT", "/x", status=403, code="OUT_OF_SCOPE")
    assert check_answer(200, ENVELOPE_OK, get) == (None, {"id": "1"})
    assert check_answer(200, ENVELOPE_LIST, listing) == (None, [])
    assert check_answer(200, ENVELOPE_OK, listing)[0] == "200 list without meta.pagination"
    assert check_answer(201, ENVELOPE_OK, get)[0] == "201"  # not the status intended
    assert check_answer(403, refusal("OUT_OF_SCOPE"), denied)[0] is None
    assert check_answer(403, refusal("MISSING_PERMISSION"), denied)[0] == "403 MISSING_PERMISSION (intended OUT_OF_SCOPE)"
    assert check_answer(500, refusal("INTERNAL"), get)[0] == "500 INTERNAL"
    assert check_answer(503, b"upstream connect error", get)[0] == "503 not JSON"
    assert check_answer(200, b'{"id":"1"}', get)[0] == "200 not in the envelope"
    no_id = ENVELOPE_OK.replace(b'"requestId":"r"', b'"requestId":""')
    assert check_answer(200, no_id, get)[0] == "200 envelope without meta.requestId, meta.timestamp or errors"
    assert check_answer(200, refusal("X").replace(b"false", b"true", 1), get)[0] == "200 with success false or errors"
    assert check_answer(403, refusal(""), denied)[0] == "403 without success false and an error code"


def test_mix_weights_change_drop_and_refuse() -> None:
    mix = parse_mix("get=50, audit=0")
    assert mix["get"] == 50 and mix["audit"] == 0 and mix["create"] == load.DEFAULT_MIX["create"]
    assert parse_mix("") == load.DEFAULT_MIX
    for bad in ("nope=1", "get", "get=-1", "get=x", ",".join(f"{k}=0" for k in load.DEFAULT_MIX)):
        with pytest.raises(ValueError):
            parse_mix(bad)
    with pytest.raises(SystemExit):
        load.parse_args(["--mix", "get=1,bogus=2"])
    cfg = load.parse_args(["--rate", "12.5", "--duration", "20", "--mix", "deal_move=0"])
    assert (cfg.rate, cfg.duration, cfg.mix["deal_move"]) == (12.5, 20.0, 0)


def outcome_with(samples: dict[str, list[float]], warmup: float = 10.0, unchecked: frozenset[str] = frozenset(),
                 processes: dict[str, list[int]] | None = None) -> Outcome:
    """Samples every 5 s from t=0, in MiB per process group (and processes per tree group)."""
    out = Outcome(Settings(warmup=warmup), {})
    count = len(next(iter(samples.values())))
    out.memory = [(5.0 * i, {k: int(v[i] * MIB) for k, v in samples.items()},
                   {k: v[i] for k, v in (processes or {}).items()}) for i in range(count)]
    out.memory_before = {k: int(v[0] * MIB) for k, v in samples.items()}
    out.memory_unchecked = set(unchecked)
    return out


def test_memory_growth_is_flagged_after_warm_up_only() -> None:
    rows = {m.name: m for m in load.memory_verdicts(outcome_with({
        "services": [100, 150, 160, 165, 170, 200, 220, 240],  # warm-up growth does not count; then +33%
        "envoy": [80, 120, 120, 121, 120, 122, 121, 122],  # grew during warm-up only
        "nats": [30, 30, 30, 31, 32, 40, 42, 44],  # +35 %, but 11 MiB: jitter of a small process
        "postgres": [60, 60, 60, 61, 60, 60, 90, 61],  # an autovacuum worker in one sample
        "postgres shared": [50, 60, 70, 80, 90, 100, 110, 120],  # buffers filling: reported, not judged
    }, unchecked=frozenset({"postgres shared"})))}
    assert rows["services"].grew and rows["services"].first == 160 * MIB and rows["services"].last == 240 * MIB
    assert rows["services"].growth == pytest.approx(220 / 165 - 1)
    assert not rows["envoy"].grew and rows["envoy"].before == 80 * MIB
    assert not rows["nats"].grew and rows["nats"].growth > 0.2
    assert not rows["postgres"].grew and rows["postgres"].top == 90 * MIB
    assert not rows["postgres shared"].grew


def test_postgres_growth_is_judged_per_backend() -> None:
    """A pool opening more connections adds backends (shown, not a leak); backends that keep growing are."""
    more_backends = load.memory_verdicts(outcome_with(
        {"postgres": [40, 45, 45, 50, 60, 70, 75, 75]}, processes={"postgres": [8, 9, 9, 10, 12, 14, 15, 15]}))[0]
    assert not more_backends.grew and more_backends.processes == (9, 15) and more_backends.growth == pytest.approx(0)
    bloating = load.memory_verdicts(outcome_with(
        {"postgres": [40, 45, 45, 50, 60, 70, 75, 75]}, processes={"postgres": [9] * 8}))[0]
    assert bloating.grew and bloating.growth > 0.4


def test_report_passes_only_without_failures_and_growth() -> None:
    world = load.World([], deals=False, deals_note="GET /v1/deals answers 404 NOT_FOUND")
    steady = outcome_with({"services": [100] * 8})
    steady.ops = {"get": load.OpStats(latencies_ns=[5_000_000] * 10)}
    steady.sent = steady.answered_in_window = 10
    text, passed = load.report(steady, world, 0.0)
    assert passed and text.endswith("PASS") and "deals skipped (GET /v1/deals answers 404 NOT_FOUND)" in text
    failing = outcome_with({"services": [100, 100, 100, 150, 200, 250, 300, 300]})
    failing.ops = {"get": load.OpStats(latencies_ns=[5_000_000] * 10)}
    failing.ops["get"].failures["500 INTERNAL"] = 2
    failing.ops["get"].examples["500 INTERNAL"] = "GET /v1/contacts/1 -> b'...'"
    text, passed = load.report(failing, world, 0.0)
    assert not passed
    assert "- GET /v1/contacts/{id}: 2 x 500 INTERNAL: GET /v1/contacts/1" in text
    assert "FAIL: 2 request(s) not answered as intended; memory grew by more than 20% and 16 MiB after warm-up: " \
           "services" in text


def test_memory_of_processes_and_trees() -> None:
    own = procstat.process_memory(os.getpid())
    assert own.rss > 10 * MIB and 0 < own.pss <= own.rss
    assert procstat.process_memory(2**22 + 12345) == procstat.Memory(0, 0, 0)
    child = subprocess.Popen([sys.executable, "-c", "import time; b = b'x' * (64 << 20); time.sleep(30)"])
    try:
        groups = procstat.MemoryGroups()
        groups.add("me", os.getpid())
        groups.add("tree", os.getpid(), tree=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            sample = groups.sample()
            mine = procstat.process_memory(os.getpid())
            if sample["tree"] > mine.pss - mine.shared + 50 * MIB:  # the child's 64 MiB counted in the tree
                break
            time.sleep(0.1)
        assert sample["tree"] > mine.pss - mine.shared + 50 * MIB
        assert sample["me"] == pytest.approx(mine.rss, rel=0.1)
        assert groups.processes["tree"] >= 2 and set(sample) == {"me", "tree", "tree shared"}
    finally:
        child.kill()
        child.wait()
