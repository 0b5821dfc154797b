"""The reads that grow with the data: the deal board and forecast on many deals, contact lists
and searches on many contacts, REST through Envoy.

Rows are written with PostgreSQL COPY straight into deals.deals and contacts.contacts as the
tables' owner (the migration role; the same tenant and scope settings the services set, since
row-level security binds the owner too), then ANALYZEd. COPY skips the services, so no events
are emitted: these rows are only read.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from bench.loadgen import HttpWorkers, encode_request

FIRST_NAMES = ("Ada", "Ben", "Chloé", "Dan", "Eva", "Finn", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam",
               "Maya", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wen", "Yara", "Zoe")
LAST_NAMES = tuple(f"{stem}{suffix}" for stem in ("Berg", "Stone", "Field", "Brook", "Wood", "Hill", "Ford", "Lake")
                   for suffix in ("man", "son", "er", "ley", "ton", "well", "by", "ham", "ard", "mond"))
STAGES = ("lead", "prospect", "opportunity", "customer", "evangelist")
SOURCES = ("web", "referral", "event", "import", "partner")
CURRENCIES = ("USD", "USD", "USD", "EUR", "GBP")  # mostly one currency, as a real book is
CATEGORIES = ("pipeline", "best_case", "commit", "")
# The term searched for: one last name of the eighty, about 1 in 80 contacts.
SEARCH_TERM = "stoneley"
CONTACT_COLUMNS = ("id", "tenant_id", "first_name", "last_name", "email", "phone", "title", "company", "owner_id",
                   "lifecycle_stage", "source", "created_by", "created_at", "updated_at")
DEAL_COLUMNS = ("id", "tenant_id", "name", "amount", "currency", "pipeline_id", "stage_id", "expected_close_date",
                "status", "forecast_category", "owner_id", "created_by", "created_at", "updated_at",
                "stage_entered_at", "closed_at")


@dataclass
class Kind:
    """One request kind of this part: what it asks, of how many rows."""

    name: str
    method: str
    target: str
    body: dict[str, Any] | None = None


def _uuids(rng: random.Random, n: int) -> Iterator[uuid.UUID]:
    for _ in range(n):
        yield uuid.UUID(int=rng.getrandbits(128), version=4)


def contact_rows(tenant_id: str, owner_id: str, count: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    tenant, owner = uuid.UUID(tenant_id), uuid.UUID(owner_id)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=730)
    step = dt.timedelta(days=730) / count
    for i, cid in enumerate(_uuids(rng, count)):
        first, last = FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        created = start + i * step
        yield (cid, tenant, first, last, f"{first.lower()}.{last.lower()}{i}@example{i % 997}.com",
               f"+1555{i:07d}", "Buyer", f"Company {rng.randrange(20000)}", owner,
               STAGES[rng.randrange(len(STAGES))], SOURCES[i % len(SOURCES)], owner, created, created)


def deal_rows(tenant_id: str, owner_id: str, pipeline: dict[str, Any], count: int,
              rng: random.Random) -> Iterator[tuple[Any, ...]]:
    tenant, owner, pipeline_id = uuid.UUID(tenant_id), uuid.UUID(owner_id), uuid.UUID(pipeline["id"])
    stages = pipeline["stages"]
    open_stages = [s for s in stages if s["kind"] == "open"]
    closed = {k: next(s for s in stages if s["kind"] == k) for k in ("won", "lost")}
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    for i, did in enumerate(_uuids(rng, count)):
        roll = rng.random()
        stage = closed["won"] if roll < 0.15 else closed["lost"] if roll < 0.25 else rng.choice(open_stages)
        status = stage["kind"]
        created = now - dt.timedelta(days=rng.uniform(0, 365))
        # Open deals close in the next two quarters; closed ones closed after their creation.
        close_date = today + dt.timedelta(days=rng.randrange(-30, 180)) if status == "open" else created.date()
        closed_at = None if status == "open" else created + dt.timedelta(days=rng.uniform(1, 30))
        updated = closed_at or created
        yield (did, tenant, f"Deal {i}", rng.randrange(1_000, 500_000), CURRENCIES[i % len(CURRENCIES)],
               pipeline_id, uuid.UUID(stage["id"]), close_date, status, CATEGORIES[i % len(CATEGORIES)], owner,
               owner, created, updated, updated, closed_at)


async def _copy(admin: asyncpg.Connection, tenant_id: str, table: str, columns: tuple[str, ...],
                rows: Iterator[tuple[Any, ...]]) -> None:
    schema, name = table.split(".")
    async with admin.transaction():
        # The owner is bound by row-level security too (FORCE): act as the tenant, unscoped.
        await admin.execute("SELECT set_config('app.tenant_id', $1, true), set_config('app.read_owners', '*', true), "
                            "set_config('app.write_owners', '*', true)", tenant_id)
        await admin.copy_records_to_table(name, schema_name=schema, columns=list(columns), records=rows)
    await admin.execute(f"ANALYZE {table}")


async def seed_deals(admin: asyncpg.Connection, tenant_id: str, owner_id: str, pipeline: dict[str, Any],
                     count: int) -> float:
    t0 = time.monotonic()
    await _copy(admin, tenant_id, "deals.deals", DEAL_COLUMNS,
                deal_rows(tenant_id, owner_id, pipeline, count, random.Random(1)))
    return time.monotonic() - t0


async def seed_contacts(admin: asyncpg.Connection, tenant_id: str, owner_id: str, count: int) -> float:
    t0 = time.monotonic()
    await _copy(admin, tenant_id, "contacts.contacts", CONTACT_COLUMNS,
                contact_rows(tenant_id, owner_id, count, random.Random(2)))
    return time.monotonic() - t0


async def default_pipeline(api: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """The tenant's default pipeline (the first list creates it)."""
    r = await api.get("/v1/pipelines", headers=headers)
    r.raise_for_status()
    return next(p for p in r.json()["data"] if p["isDefault"])


def deal_kinds(pipeline_id: str) -> list[Kind]:
    return [
        Kind("deal board", "GET", f"/v1/deals/pipeline/{pipeline_id}"),
        Kind("forecast", "GET", "/v1/deals/forecast"),
    ]


def contact_kinds() -> list[Kind]:
    return [
        Kind("contacts sort=lastName", "GET", "/v1/contacts?limit=50&sort=lastName"),
        Kind("contacts sort=-createdAt", "GET", "/v1/contacts?limit=50&sort=-createdAt"),
        Kind(f"contacts search={SEARCH_TERM}", "GET", f"/v1/contacts?limit=50&search={SEARCH_TERM}"),
        Kind("contacts/search stage=customer", "POST", "/v1/contacts/search",
             {"filters": [{"field": "lifecycleStage", "operator": "eq", "value": "customer"}],
              "sort": "-createdAt", "limit": 50}),
    ]


def workers(port: int, kind: Kind, headers: dict[str, str]) -> HttpWorkers:
    addr = f"127.0.0.1:{port}"
    if kind.body is None:
        raw = encode_request(kind.method, kind.target, addr, headers)
    else:
        raw = encode_request(kind.method, kind.target, addr, {**headers, "Content-Type": "application/json"},
                             json.dumps(kind.body).encode())
    return HttpWorkers("127.0.0.1", port, lambda n: raw, 200, lambda body: b'"success":true' in body)
