"""`make bench`: the contacts API under load, REST through Envoy and gRPC direct, beside a floor; then search.

One run starts a DevStack exactly as the integration tests do (free ports, a temporary data
folder), signs up a tenant, seeds contacts through the bulk endpoint, then for each request kind
runs the floor (bench/floor.py), REST through Envoy and gRPC straight to the services, each for
a fixed time at a fixed concurrency. Last, a CSV import through the REST import job is timed
against PostgreSQL COPY of the same file. Then, in a second tenant filled by COPY (bench/scale.py),
the deal board and forecast over many deals and contact lists and searches over many contacts
run REST through Envoy. Everything is printed as Markdown tables; any answer that is not the
expected 2xx stops the run with that answer.

Knobs (flags, or the BENCH_* environment variables named in --help).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import httpx
import uvloop
from crm.contacts.v1 import contact_pb2, contacts_service_pb2, contacts_service_pb2_grpc

from bench import floor, scale
from bench import search as search_bench
from bench.loadgen import Call, HttpWorkers, encode_request, run_load
from bench.procstat import CpuGroups
from bench.stats import LoadResult, cpu_table, load_table, render_table
from services.devstack import APP_ROLE, DevStack, free_port, wait_for_port
from services.kernel.db import asyncpg_dsn

BULK_BATCH = 500
PASSWORD = "correct-horse-battery"
KINDS = ("get by id", "list limit=50", "create")
RPCS = {"get by id": "GetContact", "list limit=50": "ListContacts", "create": "CreateContact"}
GROUPS = ("REST via Envoy", "gRPC direct", "floor")
# The edge's per-user limits (standard: 1,000 an hour) would answer a benchmark with 429s.
RATE_LIMITS = "standard=100000000/h,premium=100000000/h,api_integration=100000000/h,bulk=1000000/h"
BENCH_RATE_LIMITS = RATE_LIMITS


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Tenant:
    tenant_id: str
    user_id: str
    token: str

    def rest_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Tenant-ID": self.tenant_id}

    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"), ("x-tenant-id", self.tenant_id))


@dataclass
class Settings:
    concurrency: int
    duration: float
    warmup: float
    seed: int
    import_rows: int
    deals: int
    contacts: int
    scale_concurrency: int
    search_docs: int = 100_000
    index_events: int = 3_000


# --- setup -----------------------------------------------------------------------------

async def sign_up(api: httpx.AsyncClient, name: str = "bench") -> Tenant:
    email = f"{name}-{os.getpid()}@example.com"
    r = await api.post("/v1/auth/register", json={"email": email, "password": PASSWORD, "firstName": "Bea",
                                                  "lastName": "Bench", "tenantName": f"{name.title()} Inc"})
    r.raise_for_status()
    data = r.json()["data"]
    r = await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    return Tenant(data["tenantId"], data["user"]["id"], r.json()["data"]["accessToken"])


async def seed(api: httpx.AsyncClient, tenant: Tenant, count: int) -> list[str]:
    """`count` contacts through POST /v1/contacts/bulk; their ids."""
    ids: list[str] = []
    for start in range(0, count, BULK_BATCH):
        items = [{"firstName": f"Seed{i}", "lastName": f"Contact{i}", "email": f"seed{i}@example.com",
                  "company": f"Company {i % 200}", "title": "Buyer"} for i in range(start, min(count, start + BULK_BATCH))]
        r = await api.post("/v1/contacts/bulk", json={"items": items}, headers=tenant.rest_headers())
        r.raise_for_status()
        results = r.json()["data"]["results"]
        if not all(x["success"] for x in results):
            raise RuntimeError(f"seeding failed: {results[:3]}")
        ids.extend(x["id"] for x in results)
    return ids


async def prepare_floor_schema(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        for statement in (*floor.OUTBOX_DDL, *floor.outbox_grants(APP_ROLE)):
            await conn.execute(statement)
    finally:
        await conn.close()


async def wait_outbox_empty(admin: asyncpg.Connection, timeout: float = 60.0) -> float:
    """Seconds until the services' relay has moved every contacts event to NATS."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not await admin.fetchval("SELECT EXISTS (SELECT 1 FROM contacts.outbox)"):
            return time.monotonic() - t0
        await asyncio.sleep(0.05)
    raise TimeoutError("the outbox relay did not drain the contacts outbox")


# --- request builders ------------------------------------------------------------------

def _json_ok(body: bytes) -> bool:
    return b'"success":true' in body


def http_workers(host: str, port: int, kind: str, headers: dict[str, str], ids: list[str], tag: str) -> HttpWorkers:
    """Workers for one request kind against a REST-shaped server (Envoy or the floor)."""
    addr = f"127.0.0.1:{port}"
    if kind == "get by id":
        heads = [encode_request("GET", f"/v1/contacts/{i}", addr, headers) for i in ids]
        return HttpWorkers(host, port, lambda n: heads[n % len(heads)], 200, _json_ok)
    if kind == "list limit=50":
        raw = encode_request("GET", "/v1/contacts?limit=50", addr, headers)
        return HttpWorkers(host, port, lambda n: raw, 200, _json_ok)
    post_headers = {**headers, "Content-Type": "application/json"}

    def create(n: int) -> bytes:
        body = json.dumps({"firstName": "Load", "lastName": f"L{n}", "email": f"load{n}.{tag}@example.com"}).encode()
        return encode_request("POST", "/v1/contacts", addr, post_headers, body)

    return HttpWorkers(host, port, create, 201, _json_ok)


def grpc_worker(stub: contacts_service_pb2_grpc.ContactsServiceAsyncStub, kind: str, tenant: Tenant,
                ids: list[str]) -> Callable[[], Awaitable[Call]]:
    """Workers sharing one channel (one HTTP/2 connection, as Envoy keeps to the services)."""
    md = tenant.grpc_metadata()
    pb = contacts_service_pb2
    if kind == "get by id":
        requests = [pb.GetContactRequest(id=i) for i in ids]

        async def call(n: int) -> bool:
            return bool((await stub.GetContact(requests[n % len(requests)], metadata=md)).id)
    elif kind == "list limit=50":
        request = pb.ListContactsRequest(limit=50)

        async def call(n: int) -> bool:
            return bool((await stub.ListContacts(request, metadata=md)).contacts)
    else:
        async def call(n: int) -> bool:
            contact = contact_pb2.Contact(first_name="Load", last_name=f"L{n}", email=f"load{n}.grpc@example.com")
            return bool((await stub.CreateContact(pb.CreateContactRequest(contact=contact), metadata=md)).id)

    async def make() -> Call:
        return call

    return make


# --- CSV import ------------------------------------------------------------------------

CSV_COLUMNS = ("first_name", "last_name", "email", "phone", "company", "title")


def make_csv(rows: int) -> bytes:
    out = io.StringIO()
    out.write("First Name,Last Name,Email,Phone,Company,Title\n")
    for i in range(rows):
        out.write(f"Imp{i},Row{i},imp{i}@example.com,+1555{i:07d},Company {i % 300},Engineer\n")
    return out.getvalue().encode()


async def import_via_rest(api: httpx.AsyncClient, tenant: Tenant, body: bytes, rows: int) -> tuple[float, float]:
    """Seconds from the upload's start to its 202, and to the job seen completed."""
    headers = {**tenant.rest_headers(), "Content-Type": "text/csv"}
    t0 = time.perf_counter()
    r = await api.post("/v1/contacts/import", content=body, headers=headers)
    if r.status_code != 202:
        raise RuntimeError(f"import refused: {r.status_code} {r.text[:300]}")
    accepted = time.perf_counter() - t0
    job_id = r.json()["data"]["jobId"]
    while True:
        job = (await api.get(f"/v1/contacts/import/{job_id}", headers=tenant.rest_headers())).json()["data"]
        if job["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - t0
    if job["status"] != "completed" or job["counts"]["succeeded"] != rows:
        raise RuntimeError(f"import did not load every row: {json.dumps(job)[:500]}")
    return accepted, elapsed


async def copy_into(admin: asyncpg.Connection, table: str, body: bytes, rows: int, runs: int = 3) -> float:
    """The median seconds of `runs` COPYs of the file into an emptied `table` (a short timing is noisy)."""
    times = []
    for _ in range(runs):
        await admin.execute(f"TRUNCATE bench.{table}")
        t0 = time.perf_counter()
        await admin.copy_to_table(table, schema_name="bench", source=io.BytesIO(body), columns=list(CSV_COLUMNS),
                                  format="csv", header=True)
        times.append(time.perf_counter() - t0)
        if await admin.fetchval(f"SELECT count(*) FROM bench.{table}") != rows:
            raise RuntimeError(f"COPY into bench.{table} did not load every row")
    return sorted(times)[len(times) // 2]


async def copy_into_contacts(admin: asyncpg.Connection, tenant: Tenant, rows: int, runs: int = 3) -> float:
    """The median seconds of `runs` COPYs of the file into contacts.contacts itself (its every
    index, its generated search column), each in a transaction rolled back afterwards. The file
    gets the two columns a contact cannot do without (id, tenant) and its columns as they are."""
    out = io.StringIO()
    out.write("id,tenant_id," + ",".join(CSV_COLUMNS) + "\n")
    for line in make_csv(rows).decode().splitlines()[1:]:
        out.write(f"{uuid.uuid4()},{tenant.tenant_id},{line}\n")
    body = out.getvalue().encode()
    times = []
    for _ in range(runs):
        # Each load starts from a clean table: no dead rows of the run before, and no pending GIN
        # entries (the search index defers inserts) left by earlier loads for this one to merge.
        await admin.execute("VACUUM contacts.contacts")
        tr = admin.transaction()
        await tr.start()
        try:
            t0 = time.perf_counter()
            await admin.copy_to_table("contacts", schema_name="contacts", source=io.BytesIO(body),
                                      columns=["id", "tenant_id", *CSV_COLUMNS], format="csv", header=True)
            times.append(time.perf_counter() - t0)
            loaded = await admin.fetchval("SELECT count(*) FROM contacts.contacts WHERE tenant_id = $1 "
                                          "AND email LIKE 'imp%@example.com'", uuid.UUID(tenant.tenant_id))
            if loaded < rows:
                raise RuntimeError("COPY into contacts.contacts did not load every row")
        finally:
            await tr.rollback()
    return sorted(times)[len(times) // 2]


async def import_bench(api: httpx.AsyncClient, admin: asyncpg.Connection, tenant: Tenant, rows: int) -> str:
    body = make_csv(rows)
    # The plain table: the CSV's columns plus the key, tenant and timestamp a contact row has.
    await admin.execute(f"""CREATE TABLE bench.copy_plain (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL DEFAULT '{tenant.tenant_id}',
        {", ".join(f"{c} text NOT NULL DEFAULT ''" for c in CSV_COLUMNS)},
        created_at timestamptz NOT NULL DEFAULT now())""")
    log(f"import: {rows:,} rows ({len(body) / 1e6:.1f} MB) through POST /v1/contacts/import")
    await admin.execute("VACUUM contacts.contacts")  # as before each COPY below
    upload_s, rest_s = await import_via_rest(api, tenant, body, rows)
    plain_s = await copy_into(admin, "copy_plain", body, rows)
    # The floor: loading contacts is writing contacts.contacts with its indexes and search
    # column, which no import can skip; a plain table is a lower bound of nothing the job does.
    floor_s = await copy_into_contacts(admin, tenant, rows)
    mb = len(body) / 1e6
    rows_table = [
        ["REST import job: upload, then poll every 20 ms until completed", f"{rest_s:.2f}", f"{rows / rest_s:,.0f}",
         f"{floor_s / rest_s:.2f}×"],
        ["  of which the upload until 202 (file checked, job queued)", f"{upload_s:.2f}", "-", "-"],
        ["COPY into contacts.contacts (every index, search column; as its owner, rolled back; median of 3)",
         f"{floor_s:.2f}", f"{rows / floor_s:,.0f}", "1.00×"],
        ["COPY into a plain table (the CSV's columns, id, tenant, created_at; median of 3)", f"{plain_s:.2f}",
         f"{rows / plain_s:,.0f}", f"{floor_s / plain_s:.2f}×"],
    ]
    return render_table([f"CSV import, {rows:,} rows ({mb:.1f} MB)", "seconds", "rows/s", "rows/s vs COPY into contacts"],
                        rows_table)


# --- the run ---------------------------------------------------------------------------

def cpu_groups(stack: DevStack, floor_proc: subprocess.Popen[bytes]) -> CpuGroups:
    groups = CpuGroups()
    groups.add("client", os.getpid())
    for name, proc in stack.named.items():
        if proc.poll() is None:  # the edge's rate-limit service is counted apart from the CRM services
            groups.add(name if name in ("envoy", "nats", "ratelimit") else "services", proc.pid)
    groups.add("floor", floor_proc.pid)
    # The embedded server's postmaster (first line of postmaster.pid); its backends are its children.
    pidfile = stack.data_dir / "postgres" / "postmaster.pid"
    if pidfile.exists():
        groups.add("postgres", int(pidfile.read_text().split()[0]), tree=True)
    return groups


async def bench(stack: DevStack, floor_port: int, cfg: Settings, cpu: CpuGroups, load_before: float) -> str:
    admin = await asyncpg.connect(asyncpg_dsn(stack.migration_database_url))
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as api:
        tenant = await sign_up(api)
        t0 = time.monotonic()
        ids = await seed(api, tenant, cfg.seed)
        drained = await wait_outbox_empty(admin)
        log(f"seeded {len(ids):,} contacts via /v1/contacts/bulk in {time.monotonic() - t0:.1f}s "
            f"(outbox relayed {drained:.1f}s after the last batch)")
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{stack.grpc_port}")
        stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
        await stub.GetContact(contacts_service_pb2.GetContactRequest(id=ids[0]), metadata=tenant.grpc_metadata())

        results: dict[tuple[str, str], LoadResult] = {}
        for kind in KINDS:  # each kind against the three targets in turn: every list sees the same rows
            for group in ("floor", "REST via Envoy", "gRPC direct"):
                await wait_outbox_empty(admin)
                await search_bench.wait_consumers_idle(stack.nats_url)  # indexing must not fall into a window
                await asyncio.sleep(0.3)
                workers: HttpWorkers | None = None
                if group == "gRPC direct":
                    make: Callable[[], Awaitable[Call]] = grpc_worker(stub, kind, tenant, ids)
                elif group == "floor":
                    make = workers = http_workers("127.0.0.1", floor_port, kind, {
                        "X-Tenant-ID": tenant.tenant_id, "X-User-ID": tenant.user_id}, ids, "floor")
                else:
                    make = workers = http_workers("127.0.0.1", stack.http_port, kind, tenant.rest_headers(), ids, "rest")
                name = RPCS[kind] if group == "gRPC direct" else kind
                if workers is not None:
                    await workers.probe()
                elif not await (await make())(0):
                    raise RuntimeError(f"{name} over gRPC answered without data")
                r = await run_load(group, name, make, concurrency=cfg.concurrency, warmup=cfg.warmup,
                                   duration=cfg.duration, cpu=cpu)
                if workers is not None:
                    workers.close()
                require_all_ok(r, workers)
                results[(group, kind)] = r
                log(f"{group:15} {name:14} {r.rate:8,.0f} req/s  p50 {r.latency_ms(50):6.2f} ms  "
                    f"p99 {r.latency_ms(99):6.2f} ms  errors {r.errors}")
        await channel.close(None)
        await wait_outbox_empty(admin)
        import_table = await import_bench(api, admin, tenant, cfg.import_rows)
        scale_text = await scale_bench(api, admin, stack.http_port, cfg, cpu)
        search_text = await search_part(stack, admin, tenant, cfg, cpu, floor_port) if cfg.search_docs else ""
    await admin.close()

    ordered = [results[(g, k)] for g in GROUPS for k in KINDS]
    # Rows find their floor by name: REST rows by kind, gRPC rows by rpc.
    floors = {k: results[("floor", k)] for k in KINDS} | {RPCS[k]: results[("floor", k)] for k in KINDS}
    return report(cfg, ordered, floors, import_table, scale_text, load_before) + search_text


def require_all_ok(r: LoadResult, workers: HttpWorkers | None) -> None:
    """A benchmark of refusals (429, 5xx) measures nothing: stop with the answer that failed."""
    first = (workers.first_failure if workers is not None else "") or r.first_error
    if r.errors or first:
        raise RuntimeError(f"{r.group}: {r.name}: {r.errors} failed requests in the measured window; "
                           f"the first failure: {first}")


async def scale_bench(api: httpx.AsyncClient, admin: asyncpg.Connection, port: int, cfg: Settings,
                      cpu: CpuGroups) -> str:
    """Board and forecast over `cfg.deals` deals, lists and searches over `cfg.contacts` contacts."""
    tenant = await sign_up(api, "scale")
    pipeline = await scale.default_pipeline(api, tenant.rest_headers())
    results: list[LoadResult] = []

    async def measure(kinds: list[scale.Kind]) -> None:
        for kind in kinds:
            workers = scale.workers(port, kind, tenant.rest_headers())
            await workers.probe()
            r = await run_load("REST via Envoy", kind.name, workers, concurrency=cfg.scale_concurrency,
                               warmup=cfg.warmup, duration=cfg.duration, cpu=cpu)
            workers.close()
            require_all_ok(r, workers)
            results.append(r)
            log(f"{kind.name:34} {r.rate:8,.1f} req/s  p50 {r.latency_ms(50):8.2f} ms  p99 {r.latency_ms(99):8.2f} ms")

    log(f"scale: COPY of {cfg.deals:,} deals into deals.deals")
    deals_s = await scale.seed_deals(admin, tenant.tenant_id, tenant.user_id, pipeline, cfg.deals)
    log(f"scale: {cfg.deals:,} deals copied and analyzed in {deals_s:.1f}s")
    await measure(scale.deal_kinds(pipeline["id"]))
    log(f"scale: COPY of {cfg.contacts:,} contacts into contacts.contacts")
    contacts_s = await scale.seed_contacts(admin, tenant.tenant_id, tenant.user_id, cfg.contacts)
    log(f"scale: {cfg.contacts:,} contacts copied and analyzed in {contacts_s:.1f}s")
    await measure(scale.contact_kinds())
    return "\n".join([
        (f"At scale, in a second tenant: {cfg.deals:,} deals (COPY and ANALYZE {deals_s:.0f} s) and "
         f"{cfg.contacts:,} contacts (COPY and ANALYZE {contacts_s:.0f} s) in the tenant; REST via Envoy, "
         f"{cfg.scale_concurrency} concurrent requests, {cfg.duration:g} s measured after {cfg.warmup:g} s warm-up."),
        "",
        load_table(results, {}),
        "",
        "CPU milliseconds per request at scale:",
        "",
        cpu_table(results),
    ])


async def search_part(stack: DevStack, admin: asyncpg.Connection, tenant: Tenant, cfg: Settings, cpu: CpuGroups,
                      floor_port: int) -> str:
    """Indexing throughput, then autocomplete and global search over a large contact set, REST
    through Envoy beside the floor (bench/floor.py) sending the search service's statements."""
    await search_bench.wait_consumers_idle(stack.nats_url)
    await search_bench.wait_search_jobs(admin)  # the import above made the index rebuild contacts
    log(f"search: indexing {cfg.index_events:,} contact events")
    index_table = await search_bench.indexing_throughput(admin, stack.nats_url, cfg.index_events)
    log(f"search: loading {cfg.search_docs:,} contacts straight into the index")
    load_s = await search_bench.load_documents(admin, tenant.tenant_id, tenant.user_id, cfg.search_docs)
    indexed = await admin.fetchval("SELECT count(*) FROM search.documents WHERE tenant_id = $1",
                                   uuid.UUID(tenant.tenant_id))
    log(f"search: loaded in {load_s:.1f}s; the tenant's index holds {indexed:,} documents")
    rows: list[LoadResult] = []
    floors: dict[str, LoadResult] = {}
    floor_headers = {"X-Tenant-ID": tenant.tenant_id, "X-User-ID": tenant.user_id}
    # At the bench's concurrency (throughput; latency is then mostly queueing on 2 cores), and one
    # request at a time (the latency a lone user sees); each beside the floor.
    for name, build, inflight in (
        ("search autocomplete", search_bench.autocomplete_workers, cfg.concurrency),
        ("search global", search_bench.global_workers, cfg.concurrency),
        ("search autocomplete, 1 in flight", search_bench.autocomplete_workers, 1),
        ("search global, 1 in flight", search_bench.global_workers, 1),
    ):
        for group, port, headers in (("floor", floor_port, floor_headers),
                                     ("REST via Envoy", stack.http_port, tenant.rest_headers())):
            workers = build(port, headers)
            await search_bench.wait_consumers_idle(stack.nats_url)
            await search_bench.wait_search_jobs(admin)
            await workers.probe()
            r = await run_load(group, name, workers, concurrency=inflight, warmup=cfg.warmup,
                               duration=cfg.duration, cpu=cpu)
            workers.close()
            require_all_ok(r, workers)
            if group == "floor":
                floors[name] = r
            else:
                rows.append(r)
            log(f"{group:15} {name:32} {r.rate:8,.0f} req/s  p50 {r.latency_ms(50):6.2f} ms  "
                f"p99 {r.latency_ms(99):6.2f} ms  errors {r.errors}")
    return "\n".join([
        "",
        "",
        (f"Search over {indexed:,} contact documents in one tenant ({cfg.search_docs:,} loaded straight into the "
         f"index in {load_s:.1f} s, the rest indexed from events); {cfg.concurrency} concurrent requests or one, "
         f"{cfg.duration:g} s measured, each beside the floor sending the search service's own statements "
         "(bench/floor.py). Autocomplete: 2 to 5 letters of a common first or last name, or a first "
         "name and two letters, 10 results. Global search: whole names, companies and emails, one in five "
         "misspelled, 20 results with highlights and the total count."),
        "",
        load_table([*rows, *floors.values()], floors),
        "",
        cpu_table([*rows, *floors.values()]),
        "",
        index_table,
        "",
    ])


def report(cfg: Settings, results: list[LoadResult], floors: dict[str, LoadResult], import_table: str,
           scale_text: str, load_before: float) -> str:
    cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.machine())
    lines = [
        (f"Machine: {os.cpu_count()} cores ({cpu_model}), shared with other work; load average before the run "
        f"{load_before:.2f}. Python {platform.python_version()}, Envoy with "
        f"{os.environ.get('CRM_ENVOY_CONCURRENCY', '1')} worker thread, one services process, one floor process."),
        (f"Load: {cfg.concurrency} concurrent requests (keep-alive HTTP/1.1 connections, or one gRPC channel), "
        f"{cfg.duration:g} s measured after {cfg.warmup:g} s warm-up per row; {cfg.seed:,} contacts seeded in one tenant."),
        "",
        load_table(results, floors),
        "",
        "CPU milliseconds per request during each measured window (from /proc; `client` is this load generator):",
        "",
        cpu_table(results),
        "",
        import_table,
        "",
        scale_text,
        "",
    ]
    hot = [f"{r.group}: {r.name} ({r.cores('client'):.2f} cores)" for r in results if r.cores("client") > 0.5]
    busy = [r for r in results if r.machine_busy > 0.9]
    crowded = [f"{r.group}: {r.name} ({r.other_cores:.2f} cores)" for r in results if r.other_cores > 0.25]
    if hot and busy:
        lines.append("Note: the machine was saturated and the load generator itself used more than half a core in "
                     + "; ".join(hot) + ". Those rows are held back by the client; compare their server CPU per "
                     "request, which does not depend on it.")
    if crowded:
        lines.append("Note: other work on the machine took CPU during " + "; ".join(crowded)
                     + ". Those rows understate what this machine can do; run again on a quieter machine.")
    if any(r.errors for r in results):
        lines.append("Warning: some requests failed; see the errors column.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> Settings:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=int(env("BENCH_CONCURRENCY", "32")),
                   help="requests in flight (BENCH_CONCURRENCY, default 32)")
    p.add_argument("--duration", type=float, default=float(env("BENCH_DURATION", "5")),
                   help="measured seconds per row (BENCH_DURATION, default 5)")
    p.add_argument("--warmup", type=float, default=float(env("BENCH_WARMUP", "1")),
                   help="unmeasured seconds before each row (BENCH_WARMUP, default 1)")
    p.add_argument("--seed", type=int, default=int(env("BENCH_SEED", "10000")),
                   help="contacts seeded before the load (BENCH_SEED, default 10000)")
    p.add_argument("--import-rows", type=int, default=int(env("BENCH_IMPORT_ROWS", "20000")),
                   help="rows of the CSV import (BENCH_IMPORT_ROWS, default 20000)")
    p.add_argument("--deals", type=int, default=int(env("BENCH_DEALS", "100000")),
                   help="deals copied for the board and forecast (BENCH_DEALS, default 100000)")
    # 1,000,000 is the size the lists are meant for, but its COPY (every index, the trigram one
    # included) takes several minutes on a shared 2-core machine: BENCH_CONTACTS=1000000 asks for it.
    p.add_argument("--contacts", type=int, default=int(env("BENCH_CONTACTS", "200000")),
                   help="contacts copied for the large lists and searches (BENCH_CONTACTS, default 200000; "
                        "1000000 for the full size)")
    p.add_argument("--scale-concurrency", type=int, default=int(env("BENCH_SCALE_CONCURRENCY", "4")),
                   help="requests in flight on the large lists (BENCH_SCALE_CONCURRENCY, default 4)")
    p.add_argument("--search-docs", type=int, default=int(env("BENCH_SEARCH_DOCS", "100000")),
                   help="contacts loaded into the search index for the search rows; 1000000 works, slowly; "
                        "0 skips search (BENCH_SEARCH_DOCS, default 100000)")
    p.add_argument("--index-events", type=int, default=int(env("BENCH_INDEX_EVENTS", "3000")),
                   help="contact events published to time the indexer (BENCH_INDEX_EVENTS, default 3000)")
    a = p.parse_args(argv)
    if a.search_docs < 0 or a.index_events < 1:
        p.error("search docs must be 0 or more, index events positive")
    if (a.concurrency < 1 or a.duration <= 0 or a.warmup < 0 or a.seed < 1 or a.import_rows < 1 or a.deals < 1
            or a.contacts < 1 or a.scale_concurrency < 1):
        p.error("concurrency, duration, seed, import rows, deals and contacts must be positive")
    return Settings(a.concurrency, a.duration, a.warmup, a.seed, a.import_rows, a.deals, a.contacts,
                    a.scale_concurrency, a.search_docs, a.index_events)


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    started = time.monotonic()
    load_before = os.getloadavg()[0]  # other work on the shared machine
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        data = Path(tmp)
        stack = DevStack(data, http_port=free_port(), grpc_port=free_port(), nats_port=free_port(), admin_port=free_port(), rate_limits=RATE_LIMITS)
        floor_proc: subprocess.Popen[bytes] | None = None
        try:
            log(f"starting the stack in {data}")
            stack.start()
            asyncio.run(prepare_floor_schema(asyncpg_dsn(stack.migration_database_url)))
            floor_port = free_port()
            with open(data / "logs" / "floor.log", "ab") as out:
                floor_proc = subprocess.Popen(
                    [sys.executable, "-m", "bench.floor", "--port", str(floor_port), "--dsn", stack.database_url],
                    stdout=out, stderr=subprocess.STDOUT, env=stack.service_env(),
                )
            wait_for_port(floor_port)
            text = uvloop.run(bench(stack, floor_port, cfg, cpu_groups(stack, floor_proc), load_before))
        finally:
            if floor_proc is not None:
                floor_proc.terminate()
                floor_proc.wait(timeout=15)
            stack.stop()
    print(text)
    log(f"done in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
