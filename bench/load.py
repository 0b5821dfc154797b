"""`make load`: a bounded load test of the whole stack on loopback, open loop, with a verdict.

It starts a DevStack as `make bench` does (free ports, a temporary data folder), signs up a few
tenants, adds a sales rep to each through `POST /v1/users` (so part of the traffic runs under
`:own` record scopes), seeds contacts, activities and, when a deals service answers, a pipeline and
deals. Then requests drawn from a weighted mix of what CRM users do all day (reads by id, filtered
and sorted list pages, searches, creates, updates, relationships, activities, audit log reads,
stage moves) go through Envoy at a fixed arrival rate for a fixed time.

The load is open loop: the i-th request is due at a fixed moment whatever happened to the
earlier ones, and its latency is counted from that moment. A slow stack shows as latency and
requests in flight, never as load silently withheld (a closed-loop client would wait and send less).

At the end it prints throughput against the target, per operation counts, failures by status and
latency percentiles, CPU per process and the memory of the services, Envoy, NATS and PostgreSQL
sampled every few seconds, with growth after warm-up flagged. Exit status 1 when any request was
not answered as intended in the envelope, or a process's memory grew past the threshold.

Knobs: flags, or the LOAD_* environment variables named in --help (`LOAD_DURATION=20 make load`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import itertools
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop

from bench.loadgen import HttpConnection, connect, encode_request
from bench.procstat import CpuGroups, MemoryGroups, delta
from bench.stats import percentile, render_table
from services.devstack import DevStack, free_port
from services.kernel.db import asyncpg_dsn

PASSWORD = "correct-horse-battery"
BULK_BATCH = 500
# Far above what a run spends, so that a 429 is a finding and not the budget of a quick test
# (the rate-limit service is still asked on every request, as in production).
RATE_LIMITS = "standard=100000000/h,premium=100000000/h,api_integration=100000000/h,bulk=1000000/h"
MIB = 1024 * 1024


def log(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


# --- settings ----------------------------------------------------------------------------

# Share of each operation in the mix (relative weights); `LOAD_MIX=get=40,audit=0` changes some.
DEFAULT_MIX: dict[str, float] = {
    "get": 27, "list": 13, "list_search": 6, "search": 6, "create": 8, "update": 8, "update_denied": 1,
    "rel_create": 3, "rel_list": 2, "act_create": 7, "act_list": 5, "contact_acts": 3, "audit": 4,
    "deal_move": 5, "deal_list": 2,
}


def parse_mix(spec: str, base: Mapping[str, float] = DEFAULT_MIX) -> dict[str, float]:
    """`base` with the weights `name=weight,...` of `spec` replaced; 0 leaves an operation out."""
    mix = dict(base)
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in base:
            raise ValueError(f"{item!r}: want NAME=WEIGHT with NAME one of {', '.join(base)}")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"{item!r}: the weight must be a number") from None
        if weight < 0 or not math.isfinite(weight):
            raise ValueError(f"{item!r}: the weight must be zero or more")
        mix[name] = weight
    if not any(mix.values()):
        raise ValueError("every weight of the mix is zero")
    return mix


@dataclass
class Settings:
    rate: float = 40.0  # requests per second, all operations together
    duration: float = 180.0  # measured seconds
    warmup: float = 15.0  # seconds of the same load before the measured window
    tenants: int = 3
    seed: int = 2000  # contacts per tenant owned by its admin (its rep gets a tenth as many)
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    rep_share: float = 0.5  # of the requests a rep may send, the share the rep sends
    arrivals: str = "uniform"  # or "poisson"
    memory_every: float = 5.0
    memory_growth: float = 0.20  # flag last > first x (1 + this) after warm-up ...
    memory_min_mib: float = 16.0  # ... and by more than this much (small processes jitter by a few MiB)
    max_in_flight: int = 256
    timeout: float = 30.0  # a request not answered by then is a failure
    random_seed: int = 1


# --- the world the load runs in --------------------------------------------------------

@dataclass
class Actor:
    role: str  # "admin" or "rep"
    user_id: str
    tenant_id: str
    access: str
    refresh: str
    issued: float
    expires_in: float
    contacts: list[str] = field(default_factory=list)  # contacts this actor owns
    deals: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}", "X-Tenant-ID": self.tenant_id}


@dataclass
class Tenant:
    index: int
    id: str
    admin: Actor
    rep: Actor
    contacts: list[str] = field(default_factory=list)  # every contact
    related: set[tuple[str, str, str]] = field(default_factory=set)  # relationships made: (from, to, type)
    with_relationships: list[str] = field(default_factory=list)
    with_activities: list[str] = field(default_factory=list)
    pipeline_id: str = ""
    stages: list[tuple[str, str]] = field(default_factory=list)  # (stage id, kind)
    deals: list[str] = field(default_factory=list)
    created: int = 0

    def actor(self, role: str) -> Actor:
        return self.admin if role == "admin" else self.rep


@dataclass
class World:
    tenants: list[Tenant]
    deals: bool  # whether a deals service answers
    deals_note: str = ""
    seeded_activities: int = 0


# --- the operations --------------------------------------------------------------------

@dataclass
class Request:
    """One request and the answer intended for it."""

    method: str
    path: str
    params: Mapping[str, str | int] | None = None
    body: Any = None
    status: int = 200
    code: str = ""  # the error code of an intended refusal
    listing: bool = False  # the answer carries meta.pagination
    done: Callable[[Any], None] | None = None  # called with `data` of an intended 2xx answer

    def target(self) -> str:
        return self.path + ("?" + urllib.parse.urlencode(self.params) if self.params else "")


Builder = Callable[[Tenant, Actor, random.Random], Request]

FIRST = ("Ada", "Ben", "Cleo", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Lars",
         "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Vera", "Wei", "Yusuf")
LAST = ("Anders", "Baker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ivanova", "Jensen",
        "Kowalski", "Lopez", "Martin", "Nakamura", "Okafor", "Petrov", "Quintero", "Rossi", "Schmidt",
        "Tanaka", "Ueda", "Vargas", "Weber", "Young")
STAGES = ("subscriber", "lead", "opportunity", "customer", "evangelist", "other")
SOURCES = ("web", "referral", "event", "partner", "import")
TAGS = ("vip", "newsletter", "churn-risk", "enterprise", "smb")
TITLES = ("Buyer", "CTO", "Head of Sales", "Engineer", "Office Manager", "CFO")
COMPANIES = 60
SORTS = ("-createdAt", "lastName", "company,lastName", "-updatedAt", "email")
RELATION_TYPES = ("colleague", "manager", "reports_to", "assistant", "partner", "referred_by", "friend")
SEARCH_TERMS = (*(n.lower() for n in LAST), "company 1", "buyer", "ada", "@t")
PIPELINE = [("New", 10, "open"), ("Qualified", 30, "open"), ("Proposal", 60, "open"), ("Negotiation", 80, "open"),
            ("Won", 100, "won"), ("Lost", 0, "lost")]


def contact_fields(i: int, tenant: int, tag: str) -> dict[str, Any]:
    first, last = FIRST[i % len(FIRST)], LAST[(i * 7 + tenant) % len(LAST)]
    return {"firstName": first, "lastName": last, "email": f"{first}.{last}.{tag}{i}@t{tenant}.example.com".lower(),
            "phone": f"+1555{i % 10_000_000:07d}", "company": f"Company {i % COMPANIES}", "title": TITLES[i % len(TITLES)],
            "lifecycleStage": STAGES[i % len(STAGES)], "source": SOURCES[i % len(SOURCES)], "tags": [TAGS[i % len(TAGS)]]}


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def op_get(t: Tenant, a: Actor, rng: random.Random) -> Request:
    return Request("GET", f"/v1/contacts/{rng.choice(t.contacts)}")


def op_list(t: Tenant, a: Actor, rng: random.Random) -> Request:
    params: dict[str, str | int] = {"limit": rng.choice((20, 20, 20, 50)), "page": rng.choice((1, 1, 1, 2, 3)),
                                    "sort": rng.choice(SORTS)}
    pick = rng.randrange(6)
    if pick == 1:
        params["company"] = f"Company {rng.randrange(COMPANIES)}"
    elif pick == 2:
        params["lifecycleStage"] = rng.choice(STAGES)
    elif pick == 3:
        params["source"] = rng.choice(SOURCES)
    elif pick == 4:
        params["ownerId"] = a.user_id
    elif pick == 5:
        params["tag"] = rng.choice(TAGS)
    return Request("GET", "/v1/contacts", params, listing=True)


def op_list_search(t: Tenant, a: Actor, rng: random.Random) -> Request:
    return Request("GET", "/v1/contacts", {"search": rng.choice(SEARCH_TERMS), "limit": 20, "sort": "-createdAt"},
                   listing=True)


def op_search(t: Tenant, a: Actor, rng: random.Random) -> Request:
    since = _iso(dt.datetime.now(dt.UTC) - dt.timedelta(hours=rng.choice((1, 24, 24 * 30))))
    filters: list[dict[str, Any]] = [{"field": "lifecycleStage", "operator": "in", "value": rng.sample(STAGES, 2)},
                                     {"field": "createdAt", "operator": "gte", "value": since}]
    if rng.random() < 0.5:
        filters.append({"field": "company", "operator": "startsWith", "value": f"Company {rng.randrange(1, 10)}"})
    body: dict[str, Any] = {"filters": filters, "sort": rng.choice(("lastName", "-createdAt")), "page": 1, "limit": 20}
    if rng.random() < 0.3:
        body["query"] = rng.choice(SEARCH_TERMS)
    return Request("POST", "/v1/contacts/search", body=body, listing=True)


def op_create(t: Tenant, a: Actor, rng: random.Random) -> Request:
    t.created += 1
    body = contact_fields(rng.randrange(1_000_000), t.index, f"new{t.created}-")

    def done(data: Any) -> None:
        t.contacts.append(data["id"])
        a.contacts.append(data["id"])

    return Request("POST", "/v1/contacts", body=body, status=201, done=done)


def _writable(t: Tenant, a: Actor, rng: random.Random) -> str:
    """A contact the actor may change: any for the admin, one of their own for a rep."""
    return rng.choice(t.contacts if a.role == "admin" else a.contacts)


def op_update(t: Tenant, a: Actor, rng: random.Random) -> Request:
    return Request("PUT", f"/v1/contacts/{_writable(t, a, rng)}", {"updateMask": "title,lifecycleStage"},
                   body={"title": rng.choice(TITLES), "lifecycleStage": rng.choice(STAGES)})


def op_update_denied(t: Tenant, a: Actor, rng: random.Random) -> Request:
    """A rep trying to change the admin's contact: refused by the record scope, as intended."""
    return Request("PUT", f"/v1/contacts/{rng.choice(t.admin.contacts)}", {"updateMask": "title"},
                   body={"title": "Taken over"}, status=403, code="OUT_OF_SCOPE")


def op_rel_create(t: Tenant, a: Actor, rng: random.Random) -> Request:
    for _ in range(20):  # a pair not linked yet (a repeat would be a 409, not what this operation means)
        source, target, kind = _writable(t, a, rng), rng.choice(t.contacts), rng.choice(RELATION_TYPES)
        if source != target and (source, target, kind) not in t.related:
            break
    t.related.add((source, target, kind))

    def done(data: Any) -> None:
        t.with_relationships.append(source)

    return Request("POST", f"/v1/contacts/{source}/relationships", status=201, done=done,
                   body={"relatedContactId": target, "type": kind, "notes": "met at the load test"})


def op_rel_list(t: Tenant, a: Actor, rng: random.Random) -> Request:
    contact = rng.choice(t.with_relationships) if t.with_relationships and rng.random() < 0.8 else rng.choice(t.contacts)
    return Request("GET", f"/v1/contacts/{contact}/relationships", {"limit": 20}, listing=True)


def op_act_create(t: Tenant, a: Actor, rng: random.Random) -> Request:
    contact = rng.choice(t.contacts)
    kind = rng.choice(("tasks", "calls", "notes"))
    if kind == "tasks":
        due = dt.datetime.now(dt.UTC) + dt.timedelta(days=rng.randrange(1, 30), hours=rng.randrange(24))
        body: dict[str, Any] = {"subject": "Follow up", "dueAt": _iso(due.replace(microsecond=0)),
                                "priority": rng.choice(("low", "normal", "high"))}
    elif kind == "calls":
        body = {"direction": rng.choice(("inbound", "outbound")), "outcome": "connected",
                "durationSeconds": rng.randrange(30, 1800)}
    else:
        body = {"body": "Asked for pricing of the enterprise plan"}
    body["contactId"] = contact

    def done(data: Any) -> None:
        t.with_activities.append(contact)

    return Request("POST", f"/v1/activities/{kind}", body=body, status=201, done=done)


def op_act_list(t: Tenant, a: Actor, rng: random.Random) -> Request:
    pick = rng.randrange(3)
    params: dict[str, str | int] = {"limit": 20}
    if pick == 0 and t.with_activities:
        params.update(contactId=rng.choice(t.with_activities), sort="-occurredAt")
    elif pick == 1:
        params.update(type="task", status="open", sort="-createdAt")
    else:
        params.update(ownerId=a.user_id, sort="-occurredAt")
    return Request("GET", "/v1/activities", params, listing=True)


def op_contact_acts(t: Tenant, a: Actor, rng: random.Random) -> Request:
    contact = rng.choice(t.with_activities) if t.with_activities else rng.choice(t.contacts)
    return Request("GET", f"/v1/contacts/{contact}/activities", {"limit": 10}, listing=True)


def op_audit(t: Tenant, a: Actor, rng: random.Random) -> Request:
    pick = rng.randrange(4)
    params: dict[str, str | int] = {"limit": 20}
    if pick == 0:
        params["entityType"] = "contact"
    elif pick == 1:
        params.update(entityType="contact", entityId=rng.choice(t.contacts))
    elif pick == 2:
        params.update(action="updated", entityType="contact")
    else:
        params["actorId"] = t.rep.user_id
    return Request("GET", "/v1/audit/logs", params, listing=True)


def op_deal_move(t: Tenant, a: Actor, rng: random.Random) -> Request:
    deal = rng.choice(t.deals if a.role == "admin" else a.deals)
    # Mostly along the open stages; now and then won or lost (and reopened by a later move).
    open_stages = [s for s, kind in t.stages if kind == "open"]
    stage_id, kind = (rng.choice(open_stages), "open") if rng.random() < 0.85 else rng.choice(
        [(s, k) for s, k in t.stages if k != "open"])
    body = {"stageId": stage_id} | ({"lostReason": "price"} if kind == "lost" else {})
    return Request("POST", f"/v1/deals/{deal}/move-stage", body=body)


def op_deal_list(t: Tenant, a: Actor, rng: random.Random) -> Request:
    params: dict[str, str | int] = {"pipelineId": t.pipeline_id, "limit": 20, "sort": rng.choice(("-amount", "name"))}
    if rng.random() < 0.5:
        params["stageId"] = rng.choice(t.stages)[0]
    return Request("GET", "/v1/deals", params, listing=True)


@dataclass(frozen=True)
class Op:
    key: str
    label: str
    roles: tuple[str, ...]  # who sends it
    build: Builder
    deals: bool = False  # needs the deals service


BOTH = ("admin", "rep")
OPS: tuple[Op, ...] = (
    Op("get", "GET /v1/contacts/{id}", BOTH, op_get),
    Op("list", "GET /v1/contacts (filter, sort, page)", BOTH, op_list),
    Op("list_search", "GET /v1/contacts?search=", BOTH, op_list_search),
    Op("search", "POST /v1/contacts/search", BOTH, op_search),
    Op("create", "POST /v1/contacts", BOTH, op_create),
    Op("update", "PUT /v1/contacts/{id} (reps: own)", BOTH, op_update),
    Op("update_denied", "PUT another's contact as rep (403 intended)", ("rep",), op_update_denied),
    Op("rel_create", "POST /v1/contacts/{id}/relationships", BOTH, op_rel_create),
    Op("rel_list", "GET /v1/contacts/{id}/relationships", BOTH, op_rel_list),
    Op("act_create", "POST /v1/activities/{tasks,calls,notes}", BOTH, op_act_create),
    Op("act_list", "GET /v1/activities (filter, sort)", BOTH, op_act_list),
    Op("contact_acts", "GET /v1/contacts/{id}/activities", BOTH, op_contact_acts),
    Op("audit", "GET /v1/audit/logs (filters; admins)", ("admin",), op_audit),
    Op("deal_move", "POST /v1/deals/{id}/move-stage (reps: own)", BOTH, op_deal_move, deals=True),
    Op("deal_list", "GET /v1/deals (pipeline, stage, sort)", BOTH, op_deal_list, deals=True),
)
assert {op.key for op in OPS} == set(DEFAULT_MIX)


# --- answers -----------------------------------------------------------------------------

def check_answer(status: int, body: bytes, want: Request) -> tuple[str | None, Any]:
    """(None, data) when the answer is the intended one, in the envelope; else (what was wrong, None).

    The envelope: `{success, data, meta{timestamp, version, requestId, pagination?}, errors[]}`,
    `success` true exactly for 2xx, errors with a code otherwise; list answers carry pagination.
    """
    try:
        doc = json.loads(body)
    except ValueError:
        return f"{status} not JSON", None
    if not isinstance(doc, dict) or not isinstance(doc.get("success"), bool) or "data" not in doc:
        return f"{status} not in the envelope", None
    meta, errors = doc.get("meta"), doc.get("errors")
    if not isinstance(meta, dict) or not meta.get("requestId") or not meta.get("timestamp") or not isinstance(errors, list):
        return f"{status} envelope without meta.requestId, meta.timestamp or errors", None
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    code = str(first.get("code", ""))
    if status != want.status:
        return f"{status} {code}".rstrip(), None
    if 200 <= status < 300:
        if doc["success"] is not True or errors:
            return f"{status} with success false or errors", None
        if want.listing and not (isinstance(meta.get("pagination"), dict) and isinstance(doc["data"], list)):
            return f"{status} list without meta.pagination", None
        return None, doc["data"]
    if doc["success"] is not False or not code:
        return f"{status} without success false and an error code", None
    if want.code and code != want.code:
        return f"{status} {code} (intended {want.code})", None
    return None, doc["data"]


# --- open loop ---------------------------------------------------------------------------

def arrival_offsets(rate: float, arrivals: str, rng: random.Random) -> Iterator[float]:
    """Seconds from the start at which each request is due: evenly spaced, or a Poisson process
    (exponential gaps) of the same mean rate."""
    if arrivals == "uniform":
        for i in itertools.count():
            yield i / rate
    elif arrivals == "poisson":
        at = 0.0
        while True:
            yield at
            at += rng.expovariate(rate)
    else:
        raise ValueError(f"arrivals must be uniform or poisson, not {arrivals!r}")


async def open_loop(offsets: Iterator[float], start: float, end: float,
                    fire: Callable[[int, float], Coroutine[Any, Any, None]]) -> int:
    """Start `fire(i, due)` at each due moment `start + offset` before `end` (perf_counter seconds),
    without waiting for earlier requests; then wait for all of them. Returns how many were sent."""
    pending: set[asyncio.Task[None]] = set()
    sent = 0
    for i, offset in enumerate(offsets):
        due = start + offset
        if due >= end:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(fire(i, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
        sent += 1
    if pending:
        await asyncio.gather(*pending)
    return sent


class Connections:
    """Keep-alive HTTP/1.1 connections, one request at a time each, opened as the load needs them
    (an open loop has as many requests in flight as the latency makes it) up to `limit`."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self.idle: list[HttpConnection] = []
        self.slots = asyncio.Semaphore(limit)
        self.opened = 0

    async def request(self, raw: bytes, timeout: float) -> tuple[int, bytes]:
        async with self.slots:
            conn = None
            while self.idle and conn is None:
                candidate = self.idle.pop()
                conn = None if candidate.closed else candidate
            if conn is None:
                conn = await connect(self.host, self.port)
                self.opened += 1
            try:
                answer = await asyncio.wait_for(conn.request(raw), timeout)
            except BaseException:
                conn.close()  # a late answer must not be read as the next request's
                raise
            if not conn.closed:
                self.idle.append(conn)
            return answer

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


@dataclass
class OpStats:
    latencies_ns: list[int] = field(default_factory=list)  # intended answers in the window
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    warmup_ok: int = 0
    examples: dict[str, str] = field(default_factory=dict)  # failure -> first answer seen

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    def latency_ms(self, q: float) -> float:
        return percentile(sorted(self.latencies_ns), q) / 1e6


@dataclass
class Outcome:
    settings: Settings
    ops: dict[str, OpStats]
    sent: int = 0  # in the measured window
    answered_in_window: int = 0  # intended answers that arrived inside the window
    send_lag_ns: list[int] = field(default_factory=list)
    most_in_flight: int = 0
    connections: int = 0
    warmup_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    machine_cpu: float = 0.0
    # (seconds since the load started, bytes per process group, processes per tree group)
    memory: list[tuple[float, dict[str, int], dict[str, int]]] = field(default_factory=list)
    memory_before: dict[str, int] = field(default_factory=dict)
    memory_unchecked: set[str] = field(default_factory=set)  # reported, never flagged (shared buffers)
    problems: list[str] = field(default_factory=list)  # token refreshes that failed ...

    @property
    def failed(self) -> int:
        return sum(s.errors for s in self.ops.values()) + sum(self.warmup_failures.values())


class Driver:
    """Sends the mix at the target rate and records every answer."""

    def __init__(self, world: World, cfg: Settings, base_url: str, api: httpx.AsyncClient) -> None:
        self.world, self.cfg, self.api = world, cfg, api
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.rng = random.Random(cfg.random_seed)
        self.ops = [op for op in OPS if cfg.mix.get(op.key, 0) > 0 and (world.deals or not op.deals)]
        if not self.ops:
            raise RuntimeError("nothing to send: the mix holds only deal operations and there is no deals service")
        self.weights = [cfg.mix[op.key] for op in self.ops]
        self.outcome = Outcome(cfg, {op.key: OpStats() for op in self.ops})
        self.in_flight = 0

    def pick(self) -> tuple[Op, Tenant, Actor]:
        op = self.rng.choices(self.ops, self.weights)[0]
        tenant = self.rng.choice(self.world.tenants)
        role = op.roles[0] if len(op.roles) == 1 else ("rep" if self.rng.random() < self.cfg.rep_share else "admin")
        return op, tenant, tenant.actor(role)

    async def run(self, memory: MemoryGroups, cpu: CpuGroups) -> Outcome:
        cfg, out = self.cfg, self.outcome
        conns = Connections(self.host, self.port, cfg.max_in_flight)
        start = time.perf_counter() + 0.05
        measured = start + cfg.warmup
        end = measured + cfg.duration
        out.memory_before = memory.sample()
        out.memory_unchecked = memory.shared_names

        async def fire(i: int, due: float) -> None:
            op, tenant, actor = self.pick()
            want = op.build(tenant, actor, self.rng)
            body = json.dumps(want.body, separators=(",", ":")).encode() if want.body is not None else b""
            headers = actor.headers() | ({"Content-Type": "application/json"} if want.body is not None else {})
            raw = encode_request(want.method, want.target(), f"{self.host}:{self.port}", headers, body)
            in_window = due >= measured
            self.in_flight += 1
            out.most_in_flight = max(out.most_in_flight, self.in_flight)
            sent_at = time.perf_counter()
            try:
                status, answer = await conns.request(raw, cfg.timeout)
                problem, data = check_answer(status, answer, want)
            except TimeoutError:
                problem, data, answer = f"no answer in {cfg.timeout:g} s", None, b""
            except Exception as exc:  # noqa: BLE001 - a refused or broken connection is a failure to report
                problem, data, answer = f"connection: {exc.__class__.__name__}", None, str(exc).encode()
            finally:
                self.in_flight -= 1
            finished = time.perf_counter()
            stats = out.ops[op.key]
            if problem is None:
                if want.done is not None:
                    want.done(data)
                if in_window:
                    stats.latencies_ns.append(int((finished - due) * 1e9))  # from when it was due
                    out.answered_in_window += finished <= end
                else:
                    stats.warmup_ok += 1
            else:
                (stats.failures if in_window else out.warmup_failures)[problem] += 1
                stats.examples.setdefault(problem, f"{want.method} {want.target()} -> {answer[:300]!r}")
            if in_window:
                out.send_lag_ns.append(int((sent_at - due) * 1e9))

        async def sample_memory() -> None:
            # Off the event loop: walking /proc for PostgreSQL's backends must not delay due requests.
            while True:
                sample = await asyncio.to_thread(memory.sample)
                out.memory.append((time.perf_counter() - start, sample, dict(memory.processes)))
                if time.perf_counter() >= end:
                    return
                await asyncio.sleep(min(cfg.memory_every, max(0.0, end - time.perf_counter())))

        async def sample_cpu() -> None:
            await asyncio.sleep(max(0.0, measured - time.perf_counter()))
            first = await asyncio.to_thread(cpu.sample)
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            out.cpu, out.machine_cpu, _ = delta(first, await asyncio.to_thread(cpu.sample))

        async def keep_tokens_fresh() -> None:
            """Access tokens last `expiresIn` seconds; a long run refreshes them like a client would."""
            while time.perf_counter() < end:
                await asyncio.sleep(min(10.0, max(0.0, end - time.perf_counter())))
                for tenant in self.world.tenants:
                    for actor in (tenant.admin, tenant.rep):
                        if time.time() - actor.issued > actor.expires_in / 2:
                            try:
                                await refresh(self.api, actor)
                            except (httpx.HTTPError, RuntimeError) as exc:
                                out.problems.append(f"token refresh failed: {exc}")

        log(f"load: {cfg.rate:g} req/s for {cfg.warmup:g} s warm-up + {cfg.duration:g} s measured "
            f"({', '.join(op.key for op in self.ops)})")
        progress = asyncio.create_task(self.report_progress(start, end))
        sent_total, *_ = await asyncio.gather(
            open_loop(arrival_offsets(cfg.rate, cfg.arrivals, random.Random(cfg.random_seed + 1)), start, end, fire),
            sample_memory(), sample_cpu(), keep_tokens_fresh())
        progress.cancel()
        conns.close()
        out.connections = conns.opened
        out.sent = len(out.send_lag_ns)
        log(f"sent {sent_total:,} requests ({out.sent:,} in the measured window) over {conns.opened} connections")
        return out

    async def report_progress(self, start: float, end: float) -> None:
        while True:
            await asyncio.sleep(15)
            done = sum(len(s.latencies_ns) + s.warmup_ok for s in self.outcome.ops.values())
            log(f"{time.perf_counter() - start:5.0f} s of {end - start:.0f}: {done:,} answered, "
                f"{self.outcome.failed} failed, {self.in_flight} in flight")


# --- setup -------------------------------------------------------------------------------

async def refresh(api: httpx.AsyncClient, actor: Actor) -> None:
    r = await api.post("/v1/auth/token/refresh", json={"refreshToken": actor.refresh})
    if r.status_code != 200:
        raise RuntimeError(f"{r.status_code} {r.text[:200]}")
    data = r.json()["data"]
    actor.access, actor.refresh = data["accessToken"], data["refreshToken"]
    actor.issued, actor.expires_in = time.time(), float(data["expiresIn"])


async def _ok(r: Awaitable[httpx.Response], status: int, what: str) -> Any:
    answer = await r
    if answer.status_code != status:
        raise RuntimeError(f"{what}: {answer.status_code} {answer.text[:500]}")
    return answer.json()["data"]


async def login(api: httpx.AsyncClient, email: str, role: str, user_id: str, tenant_id: str) -> Actor:
    data = await _ok(api.post("/v1/auth/login", json={"email": email, "password": PASSWORD}), 200, f"login {email}")
    return Actor(role, user_id, tenant_id, data["accessToken"], data["refreshToken"], time.time(),
                 float(data["expiresIn"]))


async def bulk_contacts(api: httpx.AsyncClient, actor: Actor, tenant: int, count: int, tag: str) -> list[str]:
    ids: list[str] = []
    for begin in range(0, count, BULK_BATCH):
        items = [contact_fields(i, tenant, tag) for i in range(begin, min(count, begin + BULK_BATCH))]
        data = await _ok(api.post("/v1/contacts/bulk", json={"items": items}, headers=actor.headers()), 200, "bulk")
        if data["failed"]:
            raise RuntimeError(f"seeding refused some contacts: {json.dumps(data['results'])[:500]}")
        ids.extend(x["id"] for x in data["results"])
    return ids


async def make_tenant(api: httpx.AsyncClient, index: int, run: str, seed: int) -> Tenant:
    email = f"admin-{run}-{index}@load.example.com"
    data = await _ok(api.post("/v1/auth/register", json={
        "email": email, "password": PASSWORD, "firstName": "Ada", "lastName": f"Admin{index}",
        "tenantName": f"Load Tenant {index + 1}"}), 201, "sign-up")
    tenant_id = data["tenantId"]
    admin = await login(api, email, "admin", data["user"]["id"], tenant_id)
    rep_email = f"rep-{run}-{index}@load.example.com"
    rep_user = await _ok(api.post("/v1/users", headers=admin.headers(), json={
        "email": rep_email, "password": PASSWORD, "firstName": "Rita", "lastName": f"Rep{index}",
        "roles": ["sales_rep"]}), 201, "POST /v1/users")
    rep = await login(api, rep_email, "rep", rep_user["id"], tenant_id)
    t = Tenant(index, tenant_id, admin, rep)
    admin.contacts = await bulk_contacts(api, admin, index, seed, "a")
    rep.contacts = await bulk_contacts(api, rep, index, max(20, seed // 10), "r")
    t.contacts = admin.contacts + rep.contacts
    return t


async def seed_activities(api: httpx.AsyncClient, t: Tenant, count: int) -> None:
    for i in range(count):
        actor = t.rep if i % 2 else t.admin
        contact = t.contacts[(i * 37) % len(t.contacts)]
        due = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1 + i % 20)
        await _ok(api.post("/v1/activities/tasks", headers=actor.headers(), json={
            "subject": f"Call back #{i}", "dueAt": _iso(due), "contactId": contact}), 201, "seed activity")
        t.with_activities.append(contact)


async def deals_available(api: httpx.AsyncClient, t: Tenant) -> tuple[bool, str]:
    """Whether this build serves deals; when not, why (the route is unknown, or no service hosts it)."""
    r = await api.get("/v1/deals", params={"limit": 1}, headers=t.admin.headers())
    if r.status_code == 200:
        return True, ""
    code = ""
    try:
        code = r.json()["errors"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    if (r.status_code, code) in ((404, "NOT_FOUND"), (501, "UNIMPLEMENTED")) or code == "UNIMPLEMENTED":
        return False, f"GET /v1/deals answers {r.status_code} {code}: no deals service in this build"
    raise RuntimeError(f"GET /v1/deals answered {r.status_code}: {r.text[:300]}")


async def seed_deals(api: httpx.AsyncClient, t: Tenant, count: int) -> None:
    pipeline = await _ok(api.post("/v1/pipelines", headers=t.admin.headers(), json={
        "name": "Load pipeline", "stages": [{"name": n, "probability": p, "kind": k} for n, p, k in PIPELINE]}),
        201, "POST /v1/pipelines")
    t.pipeline_id = pipeline["id"]
    t.stages = [(s["id"], s.get("kind", "open")) for s in pipeline["stages"]]
    for i in range(count):
        actor = t.rep if i % 3 == 0 else t.admin
        deal = await _ok(api.post("/v1/deals", headers=actor.headers(), json={
            "name": f"Deal {i}", "amount": f"{1000 + 250 * (i % 40)}.00", "currency": "USD", "pipelineId": t.pipeline_id,
            "contactId": t.contacts[i % len(t.contacts)]}), 201, "POST /v1/deals")
        actor.deals.append(deal["id"])
        t.deals.append(deal["id"])


async def wait_quiet(api: httpx.AsyncClient, migration_url: str, world: World, timeout: float = 180.0) -> None:
    """Until the seeding's events are relayed (every outbox empty) and audited (each tenant's audit
    log holds its contacts' creations), so that the load does not start behind a backlog."""
    t0 = time.monotonic()
    admin = await asyncpg.connect(asyncpg_dsn(migration_url))
    try:
        schemas = [r["schema"] for r in await admin.fetch(
            "SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'outbox'")]
        while any([await admin.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{s}".outbox)') for s in schemas]):
            if time.monotonic() - t0 > timeout:
                raise TimeoutError("the outbox relays did not drain the seeding's events")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    for t in world.tenants:
        while True:
            r = await api.get("/v1/audit/logs", headers=t.admin.headers(),
                              params={"entityType": "contact", "action": "created", "limit": 1})
            if r.status_code == 200 and r.json()["meta"]["pagination"]["total"] >= len(t.contacts):
                break
            if time.monotonic() - t0 > timeout:
                log(f"the audit log of tenant {t.index + 1} is still behind after {timeout:g} s; starting anyway")
                break
            await asyncio.sleep(0.5)
    log(f"seeding's events relayed and audited {time.monotonic() - t0:.1f} s after the last write")


async def build_world(api: httpx.AsyncClient, cfg: Settings, migration_url: str | None) -> World:
    run = uuid.uuid4().hex[:8]
    t0 = time.monotonic()
    tenants = [await make_tenant(api, i, run, cfg.seed) for i in range(cfg.tenants)]
    activities = max(10, cfg.seed // 40)
    for t in tenants:
        await seed_activities(api, t, activities)
    available, note = await deals_available(api, tenants[0])
    world = World(tenants, available, note, activities)
    if available:
        for t in tenants:
            await seed_deals(api, t, max(20, cfg.seed // 50))
    else:
        print(f"Note: deals skipped: {note}.", flush=True)
    log(f"{cfg.tenants} tenants, {sum(len(t.contacts) for t in tenants):,} contacts, "
        f"{activities * cfg.tenants} activities, {sum(len(t.deals) for t in tenants)} deals seeded in "
        f"{time.monotonic() - t0:.1f} s")
    if migration_url:
        await wait_quiet(api, migration_url, world)
    return world


# --- report ------------------------------------------------------------------------------

def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


@dataclass(frozen=True)
class MemoryRow:
    name: str
    before: int  # bytes before the load
    first: int  # first sample after warm-up
    last: int
    top: int  # most after warm-up
    growth: float  # median of the last three samples over median of the first three, minus 1 (trees: per process)
    grew: bool
    processes: tuple[int, int] | None  # of a tree group: first and last after warm-up


def _median(values: list[int]) -> int:
    return sorted(values)[len(values) // 2]


def memory_verdicts(outcome: Outcome) -> list[MemoryRow]:
    """Per process group, the samples after warm-up and whether memory grew too much: the median of
    the last three samples exceeds that of the first three by more than the threshold, relative
    and in MiB. Medians, because PostgreSQL's autovacuum workers come and go between samples. For a
    tree (PostgreSQL) the relative growth is per process: a pool opening the connections it is
    allowed under a burst adds backends, not a leak; a backend that keeps growing shows."""
    cfg = outcome.settings
    after = [(s, n) for t, s, n in outcome.memory if t >= cfg.warmup] or [(s, n) for _, s, n in outcome.memory[-1:]]
    rows = []
    for name in outcome.memory_before:
        values = [s.get(name, 0) for s, _ in after]
        head, tail = _median(values[:3]), _median(values[-3:])
        tree = all(n.get(name) for _, n in after)
        if tree:
            per_process = [s.get(name, 0) // n[name] for s, n in after]
            growth = _median(per_process[-3:]) / max(1, _median(per_process[:3])) - 1
        else:
            growth = tail / head - 1 if head else math.nan
        grew = (name not in outcome.memory_unchecked and head > 0 and growth > cfg.memory_growth
                and tail - head > cfg.memory_min_mib * MIB)
        counts = (after[0][1][name], after[-1][1][name]) if tree else None
        rows.append(MemoryRow(name, outcome.memory_before[name], values[0], values[-1], max(values), growth, grew, counts))
    return rows


def report(outcome: Outcome, world: World, load_before: float) -> tuple[str, bool]:
    """The printed report, and whether the run passed."""
    cfg = outcome.settings
    cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.machine())
    lines = [
        (f"Machine: {os.cpu_count()} cores ({cpu_model}), shared with other work; load average before the run "
         f"{load_before:.2f}. Python {platform.python_version()}, Envoy with "
         f"{os.environ.get('CRM_ENVOY_CONCURRENCY', '1')} worker thread, one services process."),
        f"Load: {cfg.rate:g} req/s target, {cfg.arrivals} arrivals, open loop; {cfg.duration:g} s measured after "
        f"{cfg.warmup:g} s warm-up; {cfg.tenants} tenants, each with its admin and a sales rep made through "
        f"POST /v1/users (the rep sends {cfg.rep_share:.0%} of what both may send); {cfg.seed:,} contacts seeded per "
        f"tenant (+{max(20, cfg.seed // 10):,} owned by the rep), {world.seeded_activities} activities per tenant"
        + (f", {len(world.tenants[0].deals)} deals in a 6-stage pipeline." if world.deals else
           f"; deals skipped ({world.deals_note})."),
        "",
    ]
    seconds = cfg.duration
    lags = sorted(outcome.send_lag_ns)
    achieved = outcome.answered_in_window / seconds
    lines.append(
        f"Throughput: target {cfg.rate:,.1f} req/s; sent {outcome.sent:,} in the window ({outcome.sent / seconds:,.1f} "
        f"req/s; sent late by p99 {percentile(lags, 99) / 1e6:.1f} ms, at most {(lags[-1] if lags else 0) / 1e6:.1f} ms); "
        f"answered as intended inside it {achieved:,.1f} req/s ({achieved / cfg.rate:.1%} of target); "
        f"most in flight {outcome.most_in_flight}, over {outcome.connections} connections.")
    lines.append("Latency counts from the moment a request was due, so time queued in the client counts too.")
    lines.append("")
    rows = []
    total = OpStats()
    by_key = {op.key: op for op in OPS}
    for key, s in outcome.ops.items():
        total.latencies_ns.extend(s.latencies_ns)
        total.failures.update(s.failures)
        count = len(s.latencies_ns) + s.errors
        rows.append([by_key[key].label, f"{count:,}", f"{count / seconds:,.1f}", str(s.errors),
                     _ms(s.latency_ms(50)), _ms(s.latency_ms(95)), _ms(s.latency_ms(99)), _ms(s.latency_ms(100))])
    count = len(total.latencies_ns) + total.errors
    rows.append(["all", f"{count:,}", f"{count / seconds:,.1f}", str(total.errors), _ms(total.latency_ms(50)),
                 _ms(total.latency_ms(95)), _ms(total.latency_ms(99)), _ms(total.latency_ms(100))])
    lines.append(render_table(["operation", "requests", "req/s", "failed", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows))
    lines.append("")

    failures = [(by_key[k].label, what, n, s.examples.get(what, "")) for k, s in outcome.ops.items()
                for what, n in s.failures.most_common()]
    if failures or outcome.warmup_failures:
        lines.append("Failures (status and error code, or what was wrong; first answer seen):")
        for label, what, n, example in failures:
            lines.append(f"- {label}: {n} x {what}: {example}")
        for what, n in outcome.warmup_failures.most_common():
            lines.append(f"- during warm-up: {n} x {what}")
        lines.append("")

    cores = {k: v / seconds for k, v in outcome.cpu.items()}
    other = max(0.0, outcome.machine_cpu - sum(outcome.cpu.values())) / seconds
    answered = max(1, len(total.latencies_ns))
    mem_rows = []
    verdicts = memory_verdicts(outcome)
    for m in verdicts:
        name = m.name
        label = f"{name} ({m.processes[0]} -> {m.processes[1]} processes)" if m.processes else name
        mem_rows.append([label, f"{m.before / MIB:,.1f}", f"{m.first / MIB:,.1f}", f"{m.last / MIB:,.1f}",
                         f"{m.top / MIB:,.1f}", "-" if math.isnan(m.growth) else f"{m.growth:+.1%}",
                         "not checked" if name in outcome.memory_unchecked else "GREW" if m.grew else "ok",
                         f"{cores[name]:.2f}" if name in cores else "-",
                         f"{1000 * outcome.cpu[name] / answered:.2f}" if name in cores else "-"])
    mem_rows.append(["load generator", "-", "-", "-", "-", "-", "-", f"{cores.get('client', 0):.2f}",
                     f"{1000 * outcome.cpu.get('client', 0) / answered:.2f}"])
    mem_rows.append(["other work on the machine", "-", "-", "-", "-", "-", "-", f"{other:.2f}", "-"])
    lines.append(f"Memory in MiB, sampled every {cfg.memory_every:g} s: RSS of each process; for PostgreSQL, PSS "
                 "summed over the postmaster and its backends, its own memory apart from the shared buffers "
                 "(which fill as data is touched, up to shared_buffers). `first` is the first sample after "
                 "warm-up; growth compares the medians of the first and the last three (for PostgreSQL, per "
                 "process: pools may open more backends under a burst). CPU over the measured window:")
    lines.append("")
    lines.append(render_table(["process", "before load", "first", "last", "max", "growth", "memory", "CPU cores",
                               "CPU ms/request"], mem_rows))
    lines.append("")

    reasons = []
    if outcome.failed:
        reasons.append(f"{outcome.failed} request(s) not answered as intended")
    grown = [m.name for m in verdicts if m.grew]
    if grown:
        reasons.append(f"memory grew by more than {cfg.memory_growth:.0%} and {cfg.memory_min_mib:g} MiB after "
                       f"warm-up: {', '.join(grown)}")
    reasons.extend(outcome.problems)
    if achieved < 0.95 * cfg.rate:
        lines.append(f"Note: the stack answered {achieved / cfg.rate:.0%} of the target rate inside the window; "
                     "the rest was still in flight or late (see the latencies). Not a failure by itself.")
    if other > 0.25:
        lines.append(f"Note: other work on the machine took {other:.2f} cores during the window.")
    lines.append("PASS" if not reasons else "FAIL: " + "; ".join(reasons))
    return "\n".join(lines), not reasons


# --- the run -------------------------------------------------------------------------------

def process_groups(stack: DevStack) -> tuple[MemoryGroups, CpuGroups]:
    memory, cpu = MemoryGroups(), CpuGroups()
    cpu.add("client", os.getpid())
    for name in ("services", "ratelimit", "envoy", "nats"):
        proc = stack.named.get(name)
        if proc is not None:
            memory.add(name, proc.pid)
            cpu.add(name, proc.pid)
    pidfile = stack.data_dir / "postgres" / "postmaster.pid"
    if pidfile.exists():  # the embedded server; its backends are the postmaster's children
        postmaster = int(pidfile.read_text().split()[0])
        memory.add("postgres", postmaster, tree=True)
        cpu.add("postgres", postmaster, tree=True)
    return memory, cpu


async def drive(stack: DevStack, cfg: Settings) -> tuple[Outcome, World]:
    """Seed a world on a running stack and put the load on it."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as api:
        world = await build_world(api, cfg, stack.migration_database_url or None)
        memory, cpu = process_groups(stack)
        outcome = await Driver(world, cfg, stack.base_url, api).run(memory, cpu)
    return outcome, world


def parse_args(argv: list[str] | None = None) -> Settings:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=env("LOAD_RATE", "40"),
                   help="requests per second, all operations together (LOAD_RATE, default 40)")
    p.add_argument("--duration", type=float, default=env("LOAD_DURATION", "180"),
                   help="measured seconds (LOAD_DURATION, default 180)")
    p.add_argument("--warmup", type=float, default=env("LOAD_WARMUP", "15"),
                   help="seconds of the same load before the measured window (LOAD_WARMUP, default 15)")
    p.add_argument("--tenants", type=int, default=env("LOAD_TENANTS", "3"),
                   help="tenants signed up, each with an admin and a sales rep (LOAD_TENANTS, default 3)")
    p.add_argument("--seed", type=int, default=env("LOAD_SEED", "2000"),
                   help="contacts seeded per tenant (LOAD_SEED, default 2000)")
    p.add_argument("--mix", default=env("LOAD_MIX", ""),
                   help="weights to change, NAME=WEIGHT,... (LOAD_MIX); 0 leaves one out. Default: "
                        + ",".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items()))
    p.add_argument("--rep-share", type=float, default=env("LOAD_REP_SHARE", "0.5"),
                   help="share of the requests a sales rep may send that the rep sends (LOAD_REP_SHARE, default 0.5)")
    p.add_argument("--arrivals", choices=("uniform", "poisson"), default=env("LOAD_ARRIVALS", "uniform"),
                   help="evenly spaced or Poisson arrivals (LOAD_ARRIVALS, default uniform)")
    p.add_argument("--memory-every", type=float, default=env("LOAD_MEMORY_EVERY", "5"),
                   help="seconds between memory samples (LOAD_MEMORY_EVERY, default 5)")
    p.add_argument("--memory-growth", type=float, default=env("LOAD_MEMORY_GROWTH", "0.2"),
                   help="fail when a process's memory after warm-up grows by more than this fraction (median of "
                        "the last three samples against the first three; LOAD_MEMORY_GROWTH, default 0.2) ...")
    p.add_argument("--memory-min-mib", type=float, default=env("LOAD_MEMORY_MIN_MIB", "16"),
                   help="... and by more than this many MiB (LOAD_MEMORY_MIN_MIB, default 16)")
    p.add_argument("--max-in-flight", type=int, default=env("LOAD_MAX_IN_FLIGHT", "256"),
                   help="connections at most; beyond, due requests wait (and their latency shows it) "
                        "(LOAD_MAX_IN_FLIGHT, default 256)")
    p.add_argument("--timeout", type=float, default=env("LOAD_TIMEOUT", "30"),
                   help="seconds before an unanswered request counts as failed (LOAD_TIMEOUT, default 30)")
    p.add_argument("--random-seed", type=int, default=env("LOAD_RANDOM_SEED", "1"),
                   help="seed of the mix's random choices (LOAD_RANDOM_SEED, default 1)")
    a = p.parse_args(argv)
    try:
        mix = parse_mix(a.mix)
    except ValueError as exc:
        p.error(str(exc))
    if a.rate <= 0 or a.duration <= 0 or a.warmup < 0 or a.seed < 1 or a.max_in_flight < 1 or a.timeout <= 0:
        p.error("rate, duration, seed, max in flight and timeout must be positive, warm-up zero or more")
    if not 1 <= a.tenants <= 50 or not 0 <= a.rep_share <= 1 or a.memory_every <= 0 or a.memory_growth < 0:
        p.error("tenants must be 1 to 50, rep share 0 to 1, memory sampling positive, growth zero or more")
    return Settings(a.rate, a.duration, a.warmup, a.tenants, a.seed, mix, a.rep_share, a.arrivals, a.memory_every,
                    a.memory_growth, a.memory_min_mib, a.max_in_flight, a.timeout, a.random_seed)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="crm-load-") as tmp:
        stack = DevStack(Path(tmp), http_port=free_port(), grpc_port=free_port(), nats_port=free_port(),
                         admin_port=free_port(), rate_limits=RATE_LIMITS)
        try:
            log(f"starting the stack in {tmp}")
            stack.start()
            outcome, world = uvloop.run(drive(stack, cfg))
        finally:
            stack.stop()
    text, passed = report(outcome, world, load_before)
    print(text, flush=True)
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
