"""The floor: the least a Python HTTP service does for the same three contact requests.

uvicorn (httptools + uvloop, one process like the services) runs a bare ASGI callable with no
framework, no authentication and no gRPC. Each request still does what the service's SQL path
does: reads (get, list) as the kernel's read path (`Database.read`: the tenant settings for the
session in one round trip, then the queries), a create in one transaction with the kernel's own
`set_config` statement, so row-level security applies; the very statements the contacts domain
sends (compiled from its SQLAlchemy objects; a list page then, when the page does not tell the
total, the capped count), the contact rules for a create plus an outbox row, and the API's JSON
envelope. So the gap to it is what the edge, gRPC and the kernel
cost; it is not a different amount of database work.

Creates write their outbox rows to `bench.outbox` (the kernel's outbox DDL, notifying another
channel) so the services' relay does not wake up and do work on the floor's behalf.

Search (`POST /v1/search/autocomplete`, `POST /v1/search/global`) does what the search service
does for a caller who may read every type: the kernel's read path (the same `set_config`
settings for the session), the tenant's configuration, and the service's own
compiled statements (services/search/statements.py) in the same order: the page, and for a
query nothing matches the vocabulary's look-alike words, the widened page and the titles that
look alike. Highlights come from the service's own pure code, so both answer the same JSON.

`python -m bench.floor --port N --dsn postgresql://crm_app@...` serves until interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import parse_qs

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import Integer, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

from services.contacts.domain import _SELECT, LIST_SPEC, c, contacts, public
from services.contacts.rules import WRITABLE_FIELDS, camel, check
from services.kernel import listing
from services.kernel.context import RequestContext
from services.kernel.db import _SET_CONTEXT, _context_sql, _end_transaction, _json_codecs, asyncpg_dsn
from services.kernel.events import cloudevent
from services.search import config as search_config
from services.search import statements as search_sql
from services.search.domain import parsed_config, pick_look_alikes
from services.search.query import Highlighter, Query, parse, to_tsquery
from services.search.records import TYPES

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

OUTBOX_DDL = (
    "CREATE SCHEMA IF NOT EXISTS bench",
    """CREATE TABLE IF NOT EXISTS bench.outbox (
        seq bigserial PRIMARY KEY,
        id uuid NOT NULL UNIQUE,
        subject text NOT NULL,
        payload bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE OR REPLACE FUNCTION bench.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('bench_outbox', 'bench'); RETURN NULL; END $$""",
    "DROP TRIGGER IF EXISTS outbox_notify ON bench.outbox",
    """CREATE TRIGGER outbox_notify AFTER INSERT ON bench.outbox
        FOR EACH STATEMENT EXECUTE FUNCTION bench.outbox_notify()""",
)


def outbox_grants(role: str) -> tuple[str, ...]:
    return (f"GRANT USAGE ON SCHEMA bench TO {role}", f"GRANT INSERT ON bench.outbox TO {role}",
            f"GRANT USAGE ON SEQUENCE bench.outbox_seq_seq TO {role}")


def _compile(stmt: ClauseElement) -> tuple[str, list[str]]:
    """The SQL text asyncpg receives from SQLAlchemy, and its parameter names in $n order."""
    compiled = stmt.compile(dialect=asyncpg_dialect())
    return str(compiled), list(getattr(compiled, "positiontup", None) or [])


SET_CONTEXT, _ = _compile(_SET_CONTEXT)
GET_SQL, _ = _compile(_SELECT.where(c.id == bindparam("id"), c.tenant_id == bindparam("tenant")))
# A list page as the kernel's listing sends it: the ordered page (one row more: is there a next
# page?), then, when the page does not tell the total, a count that stops at COUNT_CAP + 1.
_TENANT_ROWS = _SELECT.where(c.tenant_id == bindparam("tenant"))
LIST_SQL, _ = _compile(
    _TENANT_ROWS.order_by(*listing.order_by(LIST_SPEC, ""))
    .limit(bindparam("limit", type_=Integer))
    .offset(bindparam("offset", type_=Integer))
)
COUNT_SQL, _ = _compile(
    select(func.count()).select_from(_TENANT_ROWS.limit(bindparam("cap", type_=Integer)).subquery())
)
# A create's row has every writable field (as the transcoded request has) plus these keys.
_INSERT_KEYS = (*WRITABLE_FIELDS, "id", "tenant_id", "created_by")
INSERT_SQL, INSERT_PARAMS = _compile(
    insert(contacts).values({k: bindparam(k) for k in _INSERT_KEYS}).returning(*_SELECT.selected_columns)
)
OUTBOX_SQL = 'INSERT INTO "bench".outbox (id, subject, payload) VALUES ($1, $2, $3)'
_EMPTY_VALUES: dict[str, Any] = {name: "" for name in WRITABLE_FIELDS} | {"tags": [], "address": {}, "custom_fields": {}}


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if value is None:
        return ""
    if isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)  # UUIDs


def _lower_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_FIELD_NAMES = {str(col.key): _lower_camel(str(col.key)) for col in _SELECT.selected_columns if col.key != "tenant_id"}


def contact_json(row: asyncpg.Record) -> dict[str, Any]:
    return {name: _json_value(row[key]) for key, name in _FIELD_NAMES.items()}


def envelope(data: Any, pagination: dict[str, Any] | None = None) -> bytes:
    meta: dict[str, Any] = {"timestamp": dt.datetime.now(dt.UTC).isoformat(), "version": "v1",
                            "requestId": str(uuid.uuid4())}
    if pagination is not None:
        meta["pagination"] = pagination
    return json.dumps({"success": True, "data": data, "meta": meta, "errors": []}, separators=(",", ":")).encode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class Floor:
    def __init__(self, dsn: str, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.pool: asyncpg.Pool | None = None
        self.read_pool: asyncpg.Pool | None = None  # as Database.read()'s: no reset round trip on release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        headers = dict(scope["headers"])
        tenant = headers.get(b"x-tenant-id", b"").decode()
        user = headers.get(b"x-user-id", b"").decode()
        path, method = scope["path"], scope["method"]
        status, body = 404, b'{"success":false}'
        if path == "/v1/contacts" and method == "GET":
            query = parse_qs(scope["query_string"].decode())
            status, body = await self.list(tenant, user, int(query.get("limit", ["20"])[0]))
        elif path == "/v1/contacts" and method == "POST":
            status, body = await self.create(tenant, user, await _read_body(receive))
        elif path.startswith("/v1/contacts/") and method == "GET":
            status, body = await self.get(tenant, user, path.rsplit("/", 1)[1])
        elif path == "/v1/search/autocomplete" and method == "POST":
            status, body = await self.autocomplete(tenant, user, json.loads(await _read_body(receive)))
        elif path == "/v1/search/global" and method == "POST":
            status, body = await self.search(tenant, user, json.loads(await _read_body(receive)))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def open(self) -> None:
        # The services' pool: pool_size kept plus as many overflow connections.
        self.pool = await asyncpg.create_pool(self.dsn, min_size=self.pool_size, max_size=2 * self.pool_size,
                                              init=_init_connection)
        self.read_pool = await asyncpg.create_pool(self.dsn, min_size=self.pool_size, max_size=self.pool_size,
                                                   init=_json_codecs, reset=_end_transaction,
                                                   server_settings={"default_transaction_read_only": "on"})

    async def close(self) -> None:
        for pool in (self.pool, self.read_pool):
            if pool is not None:
                await pool.close()

    async def get(self, tenant: str, user: str, contact_id: str) -> tuple[int, bytes]:
        async with self._read(tenant, user) as conn:
            row = await conn.fetchrow(GET_SQL, uuid.UUID(contact_id), uuid.UUID(tenant))
        if row is None:
            return 404, b'{"success":false}'
        return 200, envelope(contact_json(row))

    async def list(self, tenant: str, user: str, limit: int) -> tuple[int, bytes]:
        async with self._read(tenant, user) as conn:
            rows = await conn.fetch(LIST_SQL, uuid.UUID(tenant), limit + 1, 0)
            more = len(rows) > limit
            total = await conn.fetchval(COUNT_SQL, uuid.UUID(tenant), listing.COUNT_CAP + 1) if more else len(rows)
        page = {"page": 1, "limit": limit, "total": min(total, listing.COUNT_CAP), "hasNext": more, "hasPrev": False,
                "totalCapped": total > listing.COUNT_CAP}
        return 200, envelope([contact_json(r) for r in rows[:limit]], page)

    async def create(self, tenant: str, user: str, body: bytes) -> tuple[int, bytes]:
        assert self.pool is not None
        sent = json.loads(body)
        values = dict(_EMPTY_VALUES)
        values.update({name: sent[camel(name)] for name in WRITABLE_FIELDS if camel(name) in sent})
        clean, problems = check(values)
        if problems:
            return 422, b'{"success":false}'
        user_id = uuid.UUID(user)
        row_values = {**clean, "id": uuid.uuid4(), "tenant_id": uuid.UUID(tenant), "created_by": user_id}
        if row_values.get("owner_id") is None:
            row_values["owner_id"] = user_id
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.fetchrow(SET_CONTEXT, tenant, user, "*", "*")
            row = await conn.fetchrow(INSERT_SQL, *(row_values[k] for k in INSERT_PARAMS))
            assert row is not None
            event = cloudevent(event_type="crm.contacts.contact.created", source="crm/contacts", subject=str(row["id"]),
                               data={"contact": public(cast(Any, row))}, tenant_id=tenant)
            await conn.execute(OUTBOX_SQL, uuid.UUID(event["id"]), event["type"], json.dumps(event, default=str).encode())
        return 201, envelope(contact_json(row))


    # --- search --------------------------------------------------------------------------------
    async def autocomplete(self, tenant: str, user: str, body: dict[str, Any]) -> tuple[int, bytes]:
        q = parse(str(body.get("query", "")), all_prefix=True)
        low, high = search_sql.prefix_range(" ".join(q.words))
        args = search_sql.AUTOCOMPLETE.args(
            low=low, high=high, n=int(body.get("limit") or 10), in_title=to_tsquery(q, weights="A"),
            elsewhere=to_tsquery(q, weights="B"), ranked=to_tsquery(q, weights="AB"), **SEARCH_SCOPE)
        async with self._read(tenant, user) as conn:
            cfg = parsed_config(await conn.fetchval(search_sql.CONFIG.sql))
            rows = await conn.fetch(search_sql.AUTOCOMPLETE.sql, *args)
        words = cfg.synonym_map()
        hits = _hits(sorted(rows, key=lambda r: r["step"]), q, cfg, words)
        return 200, envelope(hits, {"page": 1, "limit": len(hits), "total": len(hits), "hasNext": False,
                                    "hasPrev": False, "nextPageToken": "", "totalCapped": False})

    async def search(self, tenant: str, user: str, body: dict[str, Any]) -> tuple[int, bytes]:
        q = parse(str(body.get("query", "")))
        limit = int(body.get("limit") or 20)
        async with self._read(tenant, user) as conn:
            cfg = parsed_config(await conn.fetchval(search_sql.CONFIG.sql))
            words = cfg.synonym_map()
            rows = await _search_page(conn, q, words, limit)
            if not rows and cfg.fuzzy:
                checkable = sorted({t.word for t in q.terms if 3 <= len(t.word) <= 40 and not t.word.isdigit()})
                if checkable:
                    alike = pick_look_alikes(await conn.fetch(search_sql.LOOK_ALIKES.sql, checkable), 3)
                    if alike:
                        words = {w: [*words.get(w, []), *(t for t, _ in alike.get(w, []))] for w in {*words, *alike}}
                        rows = await _search_page(conn, q, words, limit)
            if not rows and cfg.fuzzy and len(q.plain()) >= 3 and not q.phrases:
                await conn.fetchval(search_sql.SET_WORD_SIMILARITY.sql, str(cfg.fuzzy_threshold))
                rows = await _search_page(conn, q, words, limit, titles_alike=True)
        total = rows[0]["_total"] if rows else 0
        hits = _hits(rows[:limit], q, cfg, words)
        return 200, envelope(hits, {"page": 1, "limit": limit, "total": total, "hasNext": total > limit,
                                    "hasPrev": False, "nextPageToken": "", "totalCapped": False})

    @asynccontextmanager
    async def _read(self, tenant: str, user: str) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        """The kernel's read path (Database.read): the tenant settings for the session in one
        round trip, then each query in its own implicit transaction, on a pool set up as the
        kernel's read pool (read-only connections, no reset round trip)."""
        assert self.read_pool is not None
        async with self.read_pool.acquire() as conn:
            await conn.execute(_context_sql(RequestContext(tenant_id=tenant, user_id=user), tenant))
            yield conn


# The scope of a caller who may read every type of record, whoever owns it.
SEARCH_SCOPE = search_sql.scope_params([(name, None) for name in TYPES])
_SEARCH_PAGE = search_sql.page(has_query=True)


async def _search_page(conn: PoolConnectionProxy[asyncpg.Record], q: Query, words: dict[str, list[str]], limit: int, *,
                       titles_alike: bool = False) -> list[asyncpg.Record]:
    values: dict[str, Any] = {**SEARCH_SCOPE, "tsq": to_tsquery(q, words), "limit": limit + 1, "offset": 0}
    stmt = _SEARCH_PAGE
    if titles_alike:
        stmt = search_sql.page(has_query=True, titles_alike=True, excluded=bool(q.excluded))
        values["plain"] = q.plain()
        if q.excluded:
            values["unwanted"] = " | ".join(f"'{w}'" for w in q.excluded)
    rows: list[asyncpg.Record] = await conn.fetch(stmt.raw.sql, *stmt.args(**values))
    return rows


def _hits(rows: list[asyncpg.Record], q: Query, cfg: search_config.Config, words: dict[str, list[str]]
          ) -> list[dict[str, Any]]:
    mark = Highlighter(q, words)
    fields = {t: [f for f, _ in cfg.weighted(t)] for t in {r["type"] for r in rows}}
    return [{"type": r["type"], "id": str(r["id"]), "title": r["title"], "subtitle": r["subtitle"],
             "score": round(float(r["score"] or 0.0), 6), "ownerId": str(r["owner_id"] or ""),
             "updatedAt": _json_value(r["updated_at"]),
             "highlights": [{"field": f, "snippet": s} for f, s in mark(r["data"], fields[r["type"]])]} for r in rows]


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True, help="the services' runtime role (row-level security applies)")
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    uvicorn.run(Floor(asyncpg_dsn(args.dsn), args.pool_size), host="127.0.0.1", port=args.port, loop="uvloop",
                http="httptools", lifespan="on", access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
