"""The search part of `make bench`: autocomplete and global search over a large contact set
through Envoy, and how many events per second the indexer applies.

The large set is loaded straight into `search.documents` (COPY into a staging table, then one
INSERT ... SELECT that computes each vector with the service's own `search.weigh()`, and the
vocabulary rebuilt from `ts_stat`): loading a million records through the contacts API would
take longer than the rest of the bench. Names are drawn from common first and last names so
prefixes and names match realistic numbers of records.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
import uuid
from dataclasses import dataclass

import asyncpg
import nats

from bench.loadgen import HttpWorkers, encode_request
from bench.stats import render_table
from services.search import config as search_config
from services.search.indexer import weight_arrays

_FIRST_NAMES = ("james mary john patricia robert jennifer michael linda william elizabeth david barbara richard susan joseph "
         "jessica thomas sarah charles karen christopher lisa daniel nancy matthew betty anthony margaret mark sandra "
         "donald ashley steven kimberly paul emily andrew donna joshua michelle kenneth carol kevin amanda brian "
         "dorothy george melissa timothy deborah maria jose juan carlos luis ana sofia lucia mateo diego camila "
         "valentina martin hugo lea emma louis jules chloe ines leon lukas mia hannah felix noah anna elena ivan "
         "olga dmitri yuki haruto sakura wei li ming priya arjun rahul ananya fatima omar ali zeynep mehmet")
_LAST_NAMES = ("smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez gonzalez wilson "
        "anderson thomas taylor moore jackson martin lee perez thompson white harris sanchez clark ramirez lewis "
        "robinson walker young allen king wright scott torres nguyen hill flores green adams nelson baker hall "
        "rivera campbell mitchell carter roberts muller schmidt schneider fischer weber meyer wagner becker "
        "dubois durand lefebvre moreau rossi russo ferrari esposito bianchi silva santos oliveira pereira costa "
        "kowalski nowak ivanov petrov tanaka suzuki takahashi wang zhang chen kumar sharma singh yilmaz kaya")
FIRST, LAST = _FIRST_NAMES.split(), _LAST_NAMES.split()
TITLES = ("Buyer", "CEO", "CTO", "Engineer", "Head of Sales", "Account Manager", "Analyst", "Consultant")


@dataclass
class SearchSettings:
    documents: int  # contacts loaded straight into the index
    index_events: int  # events published to measure indexing throughput


def _person(rng: random.Random, i: int) -> tuple[str, str, str, str, str]:
    first, last = rng.choice(FIRST).capitalize(), rng.choice(LAST).capitalize()
    company = f"{rng.choice(LAST).capitalize()} {rng.choice(('Inc', 'GmbH', 'Ltd', 'SA', 'Group'))}"
    email = f"{first.lower()}.{last.lower()}{i}@{company.split()[0].lower()}{i % 997}.com"
    return first, last, email, company, rng.choice(TITLES)


async def load_documents(admin: asyncpg.Connection, tenant_id: str, owner_id: str, count: int) -> float:
    """`count` contacts of `tenant_id` into the index, as the indexer would store them; seconds."""
    rng = random.Random(7)
    out = io.StringIO()
    for i in range(count):
        first, last, email, company, title = _person(rng, i)
        out.write(f"{uuid.uuid4()}\t{first}\t{last}\t{email}\t{company}\t{title}\n")
    t0 = time.perf_counter()
    await admin.execute("CREATE SCHEMA IF NOT EXISTS bench")
    await admin.execute("DROP TABLE IF EXISTS bench.search_rows")
    await admin.execute("CREATE TABLE bench.search_rows (id uuid, first text, last text, email text, company text, "
                        "title text)")
    await admin.copy_to_table("search_rows", schema_name="bench", source=io.BytesIO(out.getvalue().encode()),
                              format="text")
    w = weight_arrays(search_config.default(), "contact")
    async with admin.transaction():
        # The vocabulary trigger would run once per row; it is rebuilt in one statement below.
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute(
            """
            INSERT INTO search.documents (tenant_id, type, id, owner_id, title, subtitle, data, tsv, created_at,
                                          updated_at)
            SELECT $1, 'contact', id, $2, first || ' ' || last, concat_ws(' · ', title, company, email), data,
                   search.weigh(data, $3, $4, $5, $6), now(), now()
            FROM (SELECT *, jsonb_build_object('id', id, 'firstName', first, 'lastName', last, 'email', email,
                         'company', company, 'title', title, 'ownerId', $7::text) AS data FROM bench.search_rows) AS r
            """,
            uuid.UUID(tenant_id), uuid.UUID(owner_id), w["a"], w["b"], w["c"], w["d"], owner_id,
        )
        await admin.execute(
            """
            INSERT INTO search.terms (tenant_id, term, documents)
            SELECT $1, word, ndoc FROM ts_stat(format('SELECT tsv FROM search.documents WHERE tenant_id = %L', $2::text))
            WHERE word ~ '^[[:alpha:]][[:alnum:]]{2,39}$'
            ON CONFLICT (tenant_id, term) DO UPDATE SET documents = EXCLUDED.documents
            """,
            uuid.UUID(tenant_id), tenant_id,
        )
    # As autovacuum would within a minute: the GIN indexes' pending lists merged, so the searches
    # measure the settled index and no vacuum of this load falls into a measured window.
    await admin.execute("VACUUM ANALYZE search.documents")
    await admin.execute("ANALYZE search.terms")
    await admin.execute("DROP TABLE bench.search_rows")
    return time.perf_counter() - t0


def autocomplete_workers(port: int, headers: dict[str, str]) -> HttpWorkers:
    """What people type into a search box: 2 to 5 letters of a name, or a first name and the
    start of a last name."""
    rng = random.Random(11)
    bodies = []
    for _ in range(500):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        query = rng.choice((first[: rng.randint(2, 5)], last[: rng.randint(2, 5)], f"{first} {last[:2]}"))
        bodies.append(json.dumps({"query": query, "limit": 10}).encode())
    return _workers(port, headers, "/v1/search/autocomplete", bodies)


def global_workers(port: int, headers: dict[str, str]) -> HttpWorkers:
    """Whole names, companies and emails, one in five misspelled (two letters swapped)."""
    rng = random.Random(13)
    bodies = []
    for _ in range(500):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        query = rng.choice((f"{first} {last}", f"{last} inc", f"{first}.{last}"))
        if rng.random() < 0.2:
            i = rng.randrange(len(query) - 1)
            query = query[:i] + query[i + 1] + query[i] + query[i + 2:]
        bodies.append(json.dumps({"query": query, "limit": 20}).encode())
    return _workers(port, headers, "/v1/search/global", bodies)


def _workers(port: int, headers: dict[str, str], path: str, bodies: list[bytes]) -> HttpWorkers:
    addr = f"127.0.0.1:{port}"
    heads = {**headers, "Content-Type": "application/json"}
    raw = [encode_request("POST", path, addr, heads, b) for b in bodies]
    return HttpWorkers("127.0.0.1", port, lambda n: raw[n % len(raw)], 200, lambda body: b'"success":true' in body)


async def indexing_throughput(admin: asyncpg.Connection, nats_url: str, events: int) -> str:
    """Publish `events` contact creations for a fresh tenant and time until all are applied."""
    tenant = str(uuid.uuid4())
    rng = random.Random(17)
    payloads = []
    for i in range(events):
        first, last, email, company, title = _person(rng, i)
        record = {"id": str(uuid.uuid4()), "firstName": first, "lastName": last, "email": email, "company": company,
                  "title": title, "ownerId": str(uuid.uuid4()), "tags": []}
        event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "crm/contacts",
                 "type": "crm.contacts.contact.created", "subject": record["id"], "time": "2026-01-01T00:00:00Z",
                 "datacontenttype": "application/json", "tenantid": tenant, "data": {"contact": record}}
        payloads.append((event["id"], json.dumps(event).encode()))
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    t0 = time.perf_counter()
    for start in range(0, events, 500):  # pipelined, as a busy relay publishes
        await asyncio.gather(*(js.publish("crm.contacts.contact.created", p, headers={"Nats-Msg-Id": mid})
                               for mid, p in payloads[start:start + 500]))
    published = time.perf_counter() - t0
    await nc.close()
    key = uuid.UUID(tenant)
    while await admin.fetchval("SELECT count(*) FROM search.documents WHERE tenant_id = $1", key) < events:
        if time.perf_counter() - t0 > 600:
            raise TimeoutError("the indexer did not apply every event within 10 minutes")
        await asyncio.sleep(0.05)
    applied = time.perf_counter() - t0
    return render_table(
        [f"indexing {events:,} contact events (one durable consumer)", "seconds", "events/s"],
        [["published to JetStream (pipelined)", f"{published:.2f}", f"{events / published:,.0f}"],
         ["from the first publish until every document is in the index", f"{applied:.2f}", f"{events / applied:,.0f}"]],
    )


async def wait_consumers_idle(nats_url: str, timeout: float = 300.0, names: tuple[str, ...] = ()) -> None:
    """Until every durable consumer of the event stream (search, audit, usage, conversions,
    automation ...), or those named, has caught up, so their work does not fall into a
    measured window."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            consumers = [c for c in await js.consumers_info("CRM") if not names or c.name in names]
            if all(not (c.num_pending or c.num_ack_pending) for c in consumers):
                return
            await asyncio.sleep(0.1)
    finally:
        await nc.close()
    raise TimeoutError("event consumers did not catch up")


async def wait_search_jobs(admin: asyncpg.Connection, timeout: float = 600.0) -> None:
    """Until no search job (a reindex an import started) runs beside a measurement."""
    t0 = time.monotonic()
    while await admin.fetchval("SELECT count(*) FROM search.job_queue"):
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("search jobs did not finish")
        await asyncio.sleep(0.1)
