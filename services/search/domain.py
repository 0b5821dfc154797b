"""The search domain: queries over the index, configuration, reindexing and status. No gRPC here.

Every query reads `search.tenant_documents` (the caller's tenant only, see the migration) and
adds the caller's read scope per type: a type the caller may not read is left out, and a
`:own`/`:team` scope keeps only those owners' documents. So a user never finds a record that
the owning service would not show them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from rapidfuzz.distance import OSA
from sqlalchemy import (
    Numeric,
    Select,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from services.kernel import context, listing
from services.kernel.clients import ServiceClients
from services.kernel.db import Database, RawQuery
from services.kernel.errors import FieldViolation, InvalidArgument, NotFound, validation
from services.kernel.events import STREAM, EventBus, emit
from services.kernel.jobs import JobResult, JobRunner
from services.search import config as search_config
from services.search import indexer, sources, statements
from services.search.query import Highlighter, Query, parse, to_tsquery
from services.search.records import TYPES, document
from services.search.tables import SCHEMA, documents

log = logging.getLogger(__name__)

CONSUMER = "search"
REINDEX_KIND = "search.reindex"
REWEIGH_KIND = "search.reweigh"
FACETS = ("type", "ownerId", "stage", "status", "tags")
MAX_FACET_VALUES = 50
MAX_SUGGESTIONS = 10
MAX_AUTOCOMPLETE = 20
FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}(\.[A-Za-z][A-Za-z0-9]{0,63}){0,2}$")
# Record fields compared as numbers or times in filters; every other record field as text.
NUMERIC_FIELDS = frozenset({"amount", "score", "durationSeconds", "employeeCount", "annualRevenue", "probability"})
TIME_FIELDS = frozenset({"dueAt", "startAt", "endAt", "expectedCloseDate", "closedAt", "qualifiedAt", "convertedAt",
                         "completedAt", "stageEnteredAt"})

d = documents.c
Scope = statements.Scope
if TYPE_CHECKING:
    Conn: TypeAlias = PoolConnectionProxy[asyncpg.Record]  # Database.read()'s connection


def _time_of(col: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((col.op("~")(r"^\d{4}-\d{2}-\d{2}"), cast(col, TIMESTAMP(timezone=True))), else_=None)


def _number_of(col: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((col.op("~")(r"^-?\d+(\.\d+)?$"), cast(col, Numeric)), else_=None)


_BASE_FIELDS: dict[str, listing.Field] = {
    "type": listing.Field(d.type, "text"),
    "id": listing.Field(d.id, "uuid"),
    "ownerId": listing.Field(d.owner_id, "uuid"),
    "title": listing.Field(d.title, "text"),
    "status": listing.Field(d.status, "text"),
    "stage": listing.Field(d.stage, "text"),
    "tags": listing.Field(d.tags, "tags"),
    "tag": listing.Field(d.tags, "tags"),
    "createdAt": listing.Field(func.coalesce(d.created_at, d.updated_at), "time"),
    "updatedAt": listing.Field(d.updated_at, "time"),
}


def filter_spec(conditions: Sequence[listing.Condition]) -> listing.ListSpec:
    """The filterable fields: the document's own, and any field of the records by its API name."""
    fields = dict(_BASE_FIELDS)
    for cond in conditions:
        name = cond.field
        if name in fields or not FIELD_RE.match(name):
            continue  # unknown names are reported by listing.condition_clause
        col = d.data[tuple(name.split("."))].astext if "." in name else d.data[name].astext
        if name in NUMERIC_FIELDS:
            fields[name] = listing.Field(_number_of(col), "int")
        elif name in TIME_FIELDS:
            fields[name] = listing.Field(_time_of(col), "time")
        else:
            fields[name] = listing.Field(col, "text")
    return listing.ListSpec(fields=fields, id_column=d.id)


@dataclass
class Hit:
    """One result as the API shows it."""

    type: str
    id: str
    title: str
    subtitle: str
    score: float
    owner_id: str
    updated_at: dt.datetime
    highlights: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Results:
    hits: list[Hit]
    page: listing.Page | None = None  # None for answers without pages (autocomplete)


@dataclass
class Matches:
    rows: list[asyncpg.Record]
    info: listing.Page  # the page's number, size and the total (its rows are `rows`)


@dataclass
class FacetCounts:
    field: str
    values: list[tuple[str, int]]


@dataclass
class Suggestions:
    query: str
    suggestions: list[tuple[str, float, int]]  # text, score, matches
    terms: list[tuple[str, bool, list[str]]]  # term, known, alternatives


@dataclass
class TypeState:
    type: str
    documents: int
    source: str
    deployed: bool
    last_indexed_at: dt.datetime | None


@dataclass
class Status:
    types: list[TypeState]
    last_event_at: dt.datetime | None
    last_applied_at: dt.datetime | None
    events_applied: int
    pending_events: int
    last_reindex: RowMapping | None
    skipped: list[str]


@dataclass
class SearchInput:
    """A search request after decoding, before checks."""

    query: str = ""
    types: list[str] = field(default_factory=list)
    conditions: list[listing.Condition] = field(default_factory=list)
    page: int = 0
    limit: int = 0
    sort: str = ""


def check_types(names: Sequence[str], path: str = "types") -> list[str]:
    unknown = [FieldViolation(f"{path}[{i}]", f"unknown type {n!r}; use one of {', '.join(TYPES)}")
               for i, n in enumerate(names) if n not in TYPES]
    if unknown:
        raise InvalidArgument("unknown record type", violations=unknown)
    return list(dict.fromkeys(names)) or list(TYPES)


def read_scope(names: Sequence[str]) -> Scope:
    """The types among `names` the caller may read, each with the owners it may read."""
    ctx = context.current()
    out: Scope = []
    for name in names:
        owners = ctx.owners(TYPES[name].read_permission)
        if owners != ():
            out.append((name, owners))
    return out


def _visible_terms_statement() -> RawQuery:
    word = func.unnest(bindparam("words", type_=ARRAY(Text))).table_valued("word").render_derived()
    held = select(literal_column("1")).where(statements.scope_clause(), d.tsv.op("@@")(
        func.to_tsquery(statements.SIMPLE, func.quote_literal(word.c.word)))).exists()
    return statements.compile_statement(select(word.c.word).where(held)).raw


# Which of some words documents the caller may read hold; how many such documents match a query.
VISIBLE_TERMS = _visible_terms_statement()
COUNT = statements.compile_statement(select(func.count()).where(
    statements.scope_clause(), d.tsv.op("@@")(statements.tsquery("tsq")))).raw


async def config_of(conn: Conn) -> search_config.Config:
    """The configuration of the read transaction's tenant (row-level security picks the row);
    the statement also makes the transaction's settings (see statements.CONFIG)."""
    return parsed_config(await conn.fetchval(statements.CONFIG.sql))


@functools.lru_cache(maxsize=1024)
def parsed_config(stored: str | None) -> search_config.Config:
    """A stored configuration (JSON text) over the defaults, parsed once per distinct text.
    Shared between requests: readers never change it."""
    return search_config.from_json(json.loads(stored) if stored else None)


class SearchDomain:
    def __init__(self, db: Database, jobs: JobRunner, bus: EventBus, clients: ServiceClients) -> None:
        self.db = db
        self.jobs = jobs
        self.bus = bus
        self.clients = clients
        self._starting: set[asyncio.Task[None]] = set()
        jobs.handler(REINDEX_KIND, self._run_reindex)
        jobs.handler(REWEIGH_KIND, self._run_reweigh)

    # --- indexing --------------------------------------------------------------------------------
    async def on_event(self, conn: AsyncConnection, event: dict[str, Any]) -> None:
        """The consumer's handler: index the event's record; after an import (whose records have
        no events of their own) rebuild that type from its service."""
        await indexer.apply_event(conn, event)
        parts = str(event.get("type", "")).split(".")
        rtype = next((t for t in TYPES.values() if t.service == parts[1]), None) if len(parts) == 4 else None
        if rtype is None or parts[2:] != ["import", "completed"]:
            return
        waiting = (await conn.execute(text(
            "SELECT 1 FROM search.jobs WHERE kind = :k AND status = 'queued' AND params -> 'types' ? :t LIMIT 1"
        ), {"k": REINDEX_KIND, "t": rtype.name})).first()
        if waiting is None:  # a queued rebuild of the type will see this import's records too
            job = await self.jobs.create(conn, REINDEX_KIND, params={
                "types": [rtype.name], "reason": "import", "event": str(event.get("id", ""))})
            self._start_once_committed(job["id"], context.tenant_id())

    def _start_once_committed(self, job_id: uuid.UUID, tenant_id: str) -> None:
        """Start a job queued inside the consumer's transaction once that transaction commits
        (if it rolls back, the redelivered event queues another; if this process dies first,
        the next one resumes the queue)."""

        async def wait_then_start() -> None:
            for _ in range(600):
                async with self.db.transaction(tenant_id="") as conn:
                    queued = (await conn.execute(text("SELECT 1 FROM search.job_queue WHERE job_id = :id"),
                                                 {"id": job_id})).first()
                if queued is not None:
                    self.jobs.start(job_id, tenant_id)
                    return
                await asyncio.sleep(0.05)

        task = asyncio.get_running_loop().create_task(wait_then_start(), name=f"start-{job_id}")
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def close(self) -> None:
        """Stop waiting to start jobs (a queued job is resumed by the next process anyway)."""
        for task in list(self._starting):
            task.cancel()
        for task in list(self._starting):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- searching ---------------------------------------------------------------------------
    async def search(self, req: SearchInput, *, require_query: bool) -> Results:
        """Word-for-word matches first. When there are none (and fuzzy matching is on), words the
        tenant's records do not hold are widened to the look-alike words they do hold
        (`jhon` -> `jhon | john`); failing that, titles that merely look like the query match."""
        q = parse(req.query)
        if q.empty and (require_query or not req.conditions):
            message = "type what to search for" if require_query else "give a query or at least one filter"
            raise validation([FieldViolation("query", message, "REQUIRED")])
        p = listing.params(page=req.page, limit=req.limit, sort=req.sort)
        p.sort = p.sort or ("-score" if not q.empty else "-updatedAt")
        scope = read_scope(check_types(req.types))
        spec = filter_spec(req.conditions)
        filters = [listing.condition_clause(spec, c) for c in req.conditions]
        async with self.db.read() as conn:
            cfg = await config_of(conn)
            if not scope:
                return Results([], listing.Page(rows=[], page=p.page, limit=p.limit, total=0))
            words = cfg.synonym_map()
            page = await self._page(conn, q, words, scope, filters, p)
            if page.info.total == 0 and cfg.fuzzy and not q.empty:
                alike = await self._look_alikes(conn, [t.word for t in q.terms], per_word=3)
                if alike:
                    words = {w: [*words.get(w, []), *(t for t, _ in alike.get(w, []))] for w in {*words, *alike}}
                    page = await self._page(conn, q, words, scope, filters, p)
            if page.info.total == 0 and cfg.fuzzy and len(q.plain()) >= 3 and not q.phrases:
                await conn.fetchval(statements.SET_WORD_SIMILARITY.sql, str(cfg.fuzzy_threshold))
                page = await self._page(conn, q, words, scope, filters, p, titles_alike=True)
        return Results(self._hits(page.rows, q, cfg, words), page.info)

    async def _page(self, conn: Conn, q: Query, words: Mapping[str, Sequence[str]], scope: Scope,
                    filters: list[ColumnElement[bool]], p: listing.ListParams, *, titles_alike: bool = False
                    ) -> Matches:
        """One page of results by number (a ranking has no stable keyset) with the total."""
        excluded = titles_alike and bool(q.excluded)
        stmt = statements.page(has_query=not q.empty, titles_alike=titles_alike, excluded=excluded, sort=p.sort,
                               filters=filters)
        values: dict[str, Any] = {**statements.scope_params(scope), "limit": p.limit + 1,
                                  "offset": (p.page - 1) * p.limit}
        if not q.empty:
            values["tsq"] = to_tsquery(q, words)
        if titles_alike:
            values["plain"] = q.plain()
        if excluded:
            values["unwanted"] = " | ".join(f"'{w}'" for w in q.excluded)
        rows = await conn.fetch(stmt.raw.sql, *stmt.args(**values))
        if rows:
            total = int(rows[0]["_total"])
        elif p.page > 1:  # past the last page: the count comes from the first row
            first = await conn.fetch(stmt.raw.sql, *stmt.args(**{**values, "limit": 1, "offset": 0}))
            total = int(first[0]["_total"]) if first else 0
        else:
            total = 0
        return Matches(rows[: p.limit], listing.Page(rows=[], page=p.page, limit=p.limit, total=total))

    async def _look_alikes(self, conn: Conn, words: Sequence[str], per_word: int
                           ) -> dict[str, list[tuple[str, float]]]:
        """For each word of 3 letters or more that no document holds, the vocabulary's words a few
        edits away (a transposition counts once), best first, with their similarity."""
        checkable = sorted({w for w in words if 3 <= len(w) <= 40 and not w.isdigit()})
        if not checkable:
            return {}
        return pick_look_alikes(await conn.fetch(statements.LOOK_ALIKES.sql, checkable), per_word)

    def _hits(self, rows: Sequence[asyncpg.Record], q: Query, cfg: search_config.Config,
              words: Mapping[str, Sequence[str]]) -> list[Hit]:
        mark = Highlighter(q, words)
        fields = {t: [f for f, _ in cfg.weighted(t)] for t in {r["type"] for r in rows}}
        return [Hit(type=r["type"], id=str(r["id"]), title=r["title"], subtitle=r["subtitle"],
                    score=round(float(r["score"] or 0.0), 6), owner_id=str(r["owner_id"] or ""),
                    updated_at=r["updated_at"], highlights=mark(r["data"], fields[r["type"]])) for r in rows]

    async def faceted(self, req: SearchInput, facets: Sequence[str], facet_limit: int
                      ) -> tuple[Results, list[FacetCounts]]:
        wanted = list(dict.fromkeys(facets)) or list(FACETS)
        bad = [FieldViolation(f"facets[{i}]", f"unknown facet; use {', '.join(FACETS)}")
               for i, f in enumerate(wanted) if f not in FACETS]
        if bad:
            raise InvalidArgument("unknown facet", violations=bad)
        if facet_limit < 0 or facet_limit > MAX_FACET_VALUES:
            raise InvalidArgument("bad facet limit", violations=[
                FieldViolation("facetLimit", f"must be between 1 and {MAX_FACET_VALUES}", "OUT_OF_RANGE")])
        q = parse(req.query)
        p = listing.params(page=req.page, limit=req.limit, sort=req.sort)
        p.sort = p.sort or ("-score" if not q.empty else "-updatedAt")
        scope = read_scope(check_types(req.types))
        spec = filter_spec(req.conditions)
        filters = [listing.condition_clause(spec, c) for c in req.conditions]
        async with self.db.read() as conn:
            cfg = await config_of(conn)
            if not scope:
                return Results([], listing.Page([], p.page, p.limit, 0)), [FacetCounts(f, []) for f in wanted]
            words = cfg.synonym_map()
            page = await self._page(conn, q, words, scope, filters, p)
            counts = await self._facets(conn, q, words, scope, filters, wanted, facet_limit or 10)
        hits = self._hits(page.rows, q, cfg, words)
        return Results(hits, page.info), [FacetCounts(f, counts.get(f, [])) for f in wanted]

    async def _facets(self, conn: Conn, q: Query, words: Mapping[str, Sequence[str]], scope: Scope,
                      filters: list[ColumnElement[bool]], wanted: list[str], limit: int
                      ) -> dict[str, list[tuple[str, int]]]:
        """Counts of every wanted facet over all matches, in one statement."""
        where = [statements.scope_clause(), *filters]
        values: dict[str, Any] = {**statements.scope_params(scope), "facet_limit": limit}
        if not q.empty:
            where.append(d.tsv.op("@@")(statements.tsquery("tsq")))
            values["tsq"] = to_tsquery(q, words)
        m = select(d.type, d.owner_id, d.stage, d.status, d.tags).where(*where).cte("matches")

        def count(name: str, col: ColumnElement[Any], *where: ColumnElement[bool]) -> Select[str, str, int]:
            return (select(literal(name).label("facet"), cast(col, Text).label("value"), func.count().label("n"))
                    .where(*where).group_by(col))

        parts = []
        if "type" in wanted:
            parts.append(count("type", m.c.type))
        if "ownerId" in wanted:
            parts.append(count("ownerId", m.c.owner_id, m.c.owner_id.is_not(None)))
        for name in ("stage", "status"):
            if name in wanted:
                parts.append(count(name, m.c[name], m.c[name] != ""))
        if "tags" in wanted:
            tags = select(func.unnest(m.c.tags).label("tag")).subquery()
            parts.append(count("tags", tags.c.tag))
        every = union_all(*parts).subquery()
        ranked = select(every, func.row_number().over(partition_by=every.c.facet,
                                                      order_by=(every.c.n.desc(), every.c.value)).label("rank")
                        ).subquery()
        stmt = statements.compile_statement(
            select(ranked.c.facet, ranked.c.value, ranked.c.n)
            .where(ranked.c.rank <= bindparam("facet_limit")).order_by(ranked.c.facet, ranked.c.rank))
        out: dict[str, list[tuple[str, int]]] = {}
        for facet, value, n in await conn.fetch(stmt.raw.sql, *stmt.args(**values)):
            out.setdefault(facet, []).append((str(value), int(n)))
        return out

    async def autocomplete(self, prefix: str, types: Sequence[str], limit: int) -> Results:
        """Titles starting with what was typed, then titles with a word starting so, then emails,
        companies and domains (see statements.AUTOCOMPLETE), in one statement."""
        if limit < 0 or limit > MAX_AUTOCOMPLETE:
            raise InvalidArgument("bad limit", violations=[
                FieldViolation("limit", f"must be between 1 and {MAX_AUTOCOMPLETE}", "OUT_OF_RANGE")])
        q = parse(prefix, all_prefix=True)
        if q.empty:
            raise validation([FieldViolation("query", "type the start of a name", "REQUIRED")])
        scope = read_scope(check_types(types))
        if not scope:
            return Results([])
        low, high = statements.prefix_range(" ".join(q.words))
        args = statements.AUTOCOMPLETE.args(
            low=low, high=high, n=limit or 10, in_title=to_tsquery(q, weights="A"),
            elsewhere=to_tsquery(q, weights="B"), ranked=to_tsquery(q, weights="AB"), **statements.scope_params(scope))
        async with self.db.read() as conn:
            cfg = await config_of(conn)
            rows = await conn.fetch(statements.AUTOCOMPLETE.sql, *args)
        words = cfg.synonym_map()
        # The steps come in order; sorting by step keeps that whatever the executor did.
        return Results(self._hits(sorted(rows, key=lambda r: r["step"]), q, cfg, words))

    async def suggestions(self, typed: str, types: Sequence[str], limit: int) -> Suggestions:
        """Corrections of misspelled words from the tenant's vocabulary, kept only when they find
        records the caller may read.

        Look-alike words come from the vocabulary's trigram index (loosely: transposed letters
        share few trigrams), then are judged by edit distance (a transposition counts once).
        """
        if limit < 0 or limit > MAX_SUGGESTIONS:
            raise InvalidArgument("bad limit", violations=[
                FieldViolation("limit", f"must be between 1 and {MAX_SUGGESTIONS}", "OUT_OF_RANGE")])
        q = parse(typed)
        if q.empty:
            raise validation([FieldViolation("query", "type what to correct", "REQUIRED")])
        scope = read_scope(check_types(types))
        words = list(dict.fromkeys(q.words))
        checkable = [w for w in words if 3 <= len(w) <= 40 and not w.isdigit()]
        async with self.db.read() as conn:
            cfg = await config_of(conn)
            candidates: dict[str, list[tuple[str, float]]] = {w: [] for w in checkable} | (
                await self._look_alikes(conn, checkable, per_word=20) if scope else {})
            visible = await self._visible_terms(
                conn, scope, set(checkable) | {t for cs in candidates.values() for t, _ in cs})
            corrections: list[tuple[str, bool, list[str]]] = []
            for w in words:
                alternatives = [t for t, _ in candidates.get(w, []) if t in visible][:5]
                corrections.append((w, w in visible or w not in candidates, alternatives))
            texts = _corrected_queries(corrections, candidates, limit or 5)
            found = []
            for sentence, score in texts:
                matches = await self._count(conn, scope, parse(sentence), cfg)
                if matches:
                    found.append((sentence, round(score, 4), matches))
        return Suggestions(query=typed, suggestions=found, terms=corrections)

    async def _visible_terms(self, conn: Conn, scope: Scope, words: set[str]) -> set[str]:
        """Those of `words` that some document the caller may read holds."""
        if not words or not scope:
            return set()
        rows = await conn.fetch(VISIBLE_TERMS.sql, *VISIBLE_TERMS.args(words=sorted(words),
                                                                         **statements.scope_params(scope)))
        return {r[0] for r in rows}

    async def _count(self, conn: Conn, scope: Scope, q: Query, cfg: search_config.Config) -> int:
        if q.empty or not scope:
            return 0
        args = COUNT.args(tsq=to_tsquery(q, cfg.synonym_map()), **statements.scope_params(scope))
        return int(await conn.fetchval(COUNT.sql, *args))

    # --- configuration ---------------------------------------------------------------------------
    async def get_config(self) -> tuple[search_config.Config, dt.datetime | None]:
        async with self.db.transaction() as conn:
            row = (await conn.execute(text("SELECT config, updated_at FROM search.configs"))).first()
        return search_config.from_json(row[0] if row else None), row[1] if row else None

    async def update_config(self, types: list[tuple[str, list[tuple[str, str]]]], synonyms: list[list[str]],
                            fuzzy: bool | None, threshold: float
                            ) -> tuple[search_config.Config, dt.datetime, str]:
        ctx = context.current()
        async with self.db.transaction() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('search-config:' || :t))"),
                               {"t": ctx.tenant_id})
            current = await indexer.load_config(conn)
            new, problems = search_config.merge(current, types, synonyms, fuzzy, threshold)
            if problems:
                raise validation(problems)
            row = (await conn.execute(text(
                "INSERT INTO search.configs (tenant_id, config, updated_by, updated_at) "
                "VALUES (CAST(:t AS uuid), CAST(:c AS jsonb), :by, now()) ON CONFLICT (tenant_id) DO UPDATE "
                "SET config = EXCLUDED.config, updated_by = EXCLUDED.updated_by, updated_at = now() RETURNING updated_at"
            ), {"t": ctx.tenant_id, "c": json.dumps(new.to_json()),
                "by": uuid.UUID(ctx.user_id) if ctx.user_id else None})).one()
            changed = search_config.changed_types(current, new)
            job_id = ""
            if changed:
                job = await self.jobs.create(conn, REWEIGH_KIND, params={"types": changed})
                job_id = str(job["id"])
            await emit(conn, SCHEMA, "crm.search.config.updated", ctx.tenant_id,
                       {"config": new.to_json(), "reweighedTypes": changed})
        if job_id:
            self.jobs.start(uuid.UUID(job_id), ctx.tenant_id)
        return new, row[0], job_id

    async def _run_reweigh(self, job: RowMapping, conn: AsyncConnection) -> JobResult:
        cfg = await indexer.load_config(conn)
        result = JobResult()
        for name in job["params"].get("types", []):
            if name in TYPES:
                result.total += await indexer.reweigh(conn, name, cfg)
        result.succeeded = result.total
        return result

    # --- reindexing ------------------------------------------------------------------------------
    async def start_reindex(self, types: Sequence[str]) -> RowMapping:
        bad = [FieldViolation(f"types[{i}]", f"unknown type {n!r}; use one of {', '.join(TYPES)}")
               for i, n in enumerate(types) if n not in TYPES]
        if bad:
            raise validation(bad)
        chosen = list(dict.fromkeys(types)) or list(TYPES)
        async with self.db.transaction() as conn:
            job = await self.jobs.create(conn, REINDEX_KIND, params={"types": chosen})
        self.jobs.start(job["id"], context.tenant_id())
        return job

    async def get_job(self, job_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            try:
                return await self.jobs.get(conn, job_id, REINDEX_KIND)
            except NotFound:
                return await self.jobs.get(conn, job_id, REWEIGH_KIND)

    async def _run_reindex(self, job: RowMapping, conn: AsyncConnection) -> JobResult:
        """Read every record of the chosen types from their services, then swap them in at once.

        The whole job is one transaction: a failure leaves the index as it was.
        """
        tenant = str(job["tenant_id"])
        started = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
        cfg = await indexer.load_config(conn)
        await indexer.create_stage(conn)
        result = JobResult()
        rebuilt: list[str] = []
        for name in job["params"].get("types", []):
            rtype = TYPES[name]
            source = sources.resolve(rtype, self.clients)
            if isinstance(source, str):
                result.errors.append({"row": 0, "field": name, "code": "SKIPPED", "message": source})
                continue
            async for records in sources.pages(source, self.clients, tenant):
                docs = [document(rtype, r) for r in records]
                good = [x for x in docs if x is not None]
                result.total += len(docs)
                result.failed += len(docs) - len(good)
                result.succeeded += len(good)
                await indexer.stage(conn, tenant, good, cfg)
            rebuilt.append(name)
        written = removed = 0
        if rebuilt:
            written, removed = await indexer.swap(conn, tenant, rebuilt, started)
        await emit(conn, SCHEMA, "crm.search.reindex.completed", str(job["id"]), {
            "jobId": str(job["id"]), "types": rebuilt, "skipped": [e["field"] for e in result.errors],
            "documents": result.succeeded, "written": written, "removed": removed})
        return result

    # --- status ----------------------------------------------------------------------------------
    async def status(self) -> Status:
        async with self.db.transaction() as conn:
            counts = {r.type: r for r in (await conn.execute(
                select(d.type, func.count().label("n"), func.max(d.indexed_at).label("last")).group_by(d.type)
            )).all()}
            state = (await conn.execute(text(
                "SELECT last_event_at, last_applied_at, events_applied FROM search.index_state"))).first()
            last = (await conn.execute(text(
                "SELECT * FROM search.jobs WHERE kind = :k ORDER BY created_at DESC LIMIT 1"), {"k": REINDEX_KIND}
            )).mappings().first()
        types = []
        for name, rtype in TYPES.items():
            row: Row[Any] | None = counts.get(name)
            types.append(TypeState(name, int(row.n) if row else 0, rtype.grpc_service,
                                   self.clients.deployed(rtype.grpc_service), row.last if row else None))
        skipped = [e.get("field", "") for e in (last["errors"] if last else []) if e.get("code") == "SKIPPED"]
        return Status(types=types, last_event_at=state[0] if state else None, last_applied_at=state[1] if state else None,
                      events_applied=int(state[2]) if state else 0, pending_events=await self._pending(),
                      last_reindex=last, skipped=skipped)

    async def _pending(self) -> int:
        if self.bus.js is None:
            return -1
        try:
            info = await asyncio.wait_for(self.bus.js.consumer_info(STREAM, CONSUMER), timeout=2)
        except Exception:  # noqa: BLE001 - the status still answers when NATS does not
            return -1
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


def pick_look_alikes(rows: Sequence[asyncpg.Record], per_word: int) -> dict[str, list[tuple[str, float]]]:
    """The candidates (word, term, documents holding it) close enough in edit distance, best
    first, with their similarity."""
    found: dict[str, list[tuple[str, float]]] = {}
    for word, term, holding in rows:
        if OSA.distance(word, term) <= max_edits(word):
            # Equally close: the word more records hold first.
            found.setdefault(word, []).append((term, OSA.normalized_similarity(word, term) + holding * 1e-9))
    return {w: sorted(cs, key=lambda x: -x[1])[:per_word] for w, cs in found.items()}


def max_edits(word: str) -> int:
    """Edits a correction may be away from a typed word: 1 up to 4 letters, 2 up to 8, then 3."""
    return 1 if len(word) <= 4 else 2 if len(word) <= 8 else 3


def _corrected_queries(corrections: list[tuple[str, bool, list[str]]], candidates: Mapping[str, list[tuple[str, float]]],
                       limit: int) -> list[tuple[str, float]]:
    """Queries with unknown words replaced: the best alternative of each first, then variations
    of one word at a time; scored by the mean similarity (1 - edits / length) of the replaced words."""
    sims = {w: {t: round(s, 4) for t, s in cs} for w, cs in candidates.items()}
    unknown = [i for i, (_, known, alts) in enumerate(corrections) if not known and alts]
    if not unknown:
        return []
    best = [alts[0] if i in unknown else w for i, (w, _, alts) in enumerate(corrections)]
    variants = [best]
    for i in unknown:
        for alt in corrections[i][2][1:]:
            v = list(best)
            v[i] = alt
            variants.append(v)
    out: list[tuple[str, float]] = []
    for v in variants:
        sentence = " ".join(v)
        if sentence in (s for s, _ in out):
            continue
        scores = [sims[corrections[i][0]].get(v[i], 0.0) for i in unknown]
        out.append((sentence, sum(scores) / len(scores)))
        if len(out) >= limit:
            break
    return sorted(out, key=lambda x: -x[1])


__all__ = ["CONSUMER", "FACETS", "REINDEX_KIND", "Results", "SearchDomain", "SearchInput", "Status", "Suggestions"]
