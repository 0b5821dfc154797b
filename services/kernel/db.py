"""Database access: one async engine per process, one transaction per unit of work.

Every transaction that touches tenant data first sets `app.tenant_id`; the row-level security
policies of every tenant table compare against it, so a query that forgot its tenant filter
still sees only the caller's rows. The kernel commits or rolls back; services never commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import MetaData, Select, text
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.kernel import context
from services.kernel.errors import ConfigurationError, PermissionDenied

# Constraint names are predictable so migrations can name what they drop (Alembic convention).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def metadata(schema: str) -> MetaData:
    """The MetaData of one service's schema."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


_SET_CONTEXT = text(
    "SELECT set_config('app.tenant_id', :tenant_id, true), set_config('app.user_id', :user_id, true), "
    "set_config('app.read_owners', :read_owners, true), set_config('app.write_owners', :write_owners, true)"
)
# Admits rows of every tenant to the few read-only `platform_read` policies (auth.tenants ...).
_SET_PLATFORM = text("SELECT set_config('app.platform', 'on', true)")


@asynccontextmanager
async def every_owner_visible(conn: AsyncConnection) -> AsyncIterator[None]:
    """Inside this block the transaction reads every owner's rows of its tenant, whatever the
    caller's read scope (`:own`/`:team`). For integrity checks only (a hierarchy's cycles and
    depth must count rows the caller cannot see); never return what is read here to the caller.
    Tenant isolation still applies."""
    restore = text("SELECT set_config('app.read_owners', :o, true)")
    scoped = {"o": _owners(context.current().read_owners)}
    await conn.execute(text("SELECT set_config('app.read_owners', '*', true)"))
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # an aborted transaction is rolled back anyway
            await conn.execute(restore, scoped)
        raise
    await conn.execute(restore, scoped)


def _owners(owners: tuple[str, ...] | None) -> str:
    """The setting `owner_scope` policies read: `*` for every owner, else a list of user ids."""
    return "*" if owners is None else ",".join(owners)


def sqlalchemy_url(url: str) -> str:
    """Accept plain libpq URLs (postgresql://...) and pick the asyncpg driver."""
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if scheme == "postgresql+asyncpg":
        return url
    raise ConfigurationError(f"unsupported database URL scheme {scheme!r}")


def asyncpg_dsn(url: str) -> str:
    """The libpq form asyncpg.connect() takes."""
    return "postgresql://" + url.split("://", 1)[1]


# A row from either path: SQLAlchemy's RowMapping or asyncpg's Record (both index by column name).
Row = RowMapping | asyncpg.Record


@dataclass(frozen=True)
class RawQuery:
    """A statement compiled once to asyncpg's SQL (`$1` placeholders) for `Database.read`."""

    sql: str
    params: tuple[str, ...]

    def args(self, **values: Any) -> list[Any]:
        return [values[name] for name in self.params]


def raw_query(stmt: Select[Any]) -> RawQuery:
    """Compile a SQLAlchemy statement with named `bindparam`s, once, at import time."""
    compiled = stmt.compile(dialect=asyncpg_dialect.dialect())
    return RawQuery(compiled.string, tuple(compiled.positiontup or ()))


_ASYNCPG = asyncpg_dialect.dialect()


_COMPILED: OrderedDict[Any, Any] = OrderedDict()  # statement shape -> compiled SQL, LRU
_COMPILED_SIZE = 500


def compile_for_asyncpg(stmt: Select[Any]) -> tuple[str, list[Any]]:
    """A statement built per request (a list page) as asyncpg SQL and its arguments.

    Compiling costs more than running a small query, so each statement shape is compiled once
    (keyed by SQLAlchemy's own cache key, as its engine does) and this request's values are
    bound into it; asyncpg then prepares each distinct SQL text once per connection."""
    key = stmt._generate_cache_key()
    compiled = _COMPILED.get(key.key) if key is not None else None
    if compiled is None:
        compiled = stmt.compile(dialect=_ASYNCPG, cache_key=key)
        if key is not None:
            _COMPILED[key.key] = compiled
            if len(_COMPILED) > _COMPILED_SIZE:
                _COMPILED.popitem(last=False)
    elif key is not None:
        _COMPILED.move_to_end(key.key)
    params = compiled.construct_params(extracted_parameters=key.bindparams if key is not None else None,
                                       _no_postcompile=True)
    expanded = compiled._process_parameters_for_postcompile(params)  # IN lists: one $n per value
    processors = expanded.processors
    args = [processors[name](params_value) if name in processors else params_value
            for name, params_value in zip(expanded.positiontup or (), expanded.positional_parameters, strict=True)]
    return expanded.statement, args


def _literal_uuid(value: str) -> str:
    return str(uuid.UUID(value)) if value else ""


def _context_sql(ctx: context.RequestContext, tenant: str, *, local: bool = False) -> str:
    """The settings of `_SET_CONTEXT` as literals, for the session (see `read`) or, `local`, for
    the transaction (see `write`): the simple-query protocol takes no parameters and needs no
    prepare round trip.
    Every value is a validated UUID or `*`, so nothing a client sent reaches the SQL as text."""
    owners = [("app.read_owners", ctx.read_owners), ("app.write_owners", ctx.write_owners)]
    values = [("app.tenant_id", _literal_uuid(tenant)), ("app.user_id", _literal_uuid(ctx.user_id))]
    values += [(name, "*" if o is None else ",".join(_literal_uuid(x) for x in o)) for name, o in owners]
    scope = "true" if local else "false"
    return "SELECT " + ", ".join(f"set_config('{name}', '{value}', {scope})" for name, value in values)


async def _json_codecs(conn: asyncpg.Connection) -> None:
    """JSON columns as Python values, as SQLAlchemy gives them on the other path."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class _RawConnection(asyncpg.Connection):
    """A connection of `read`'s pool that knows which tenant settings its session holds, so a
    caller whose settings are already there skips the round trip that would set them again."""

    _crm_settings = ""

    def session_settings(self) -> str:
        return self._crm_settings

    def remember_settings(self, setup: str) -> None:
        self._crm_settings = setup


async def _end_transaction(conn: asyncpg.Connection) -> None:
    """Pool reset: the next `read` overwrites the tenant settings before any query, so only a
    transaction left open needs undoing (asyncpg's default reset costs a round trip on every
    release)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class Database:
    """The process's connection pool and its transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=10,
            pool_recycle=1800,
        )
        self._pool_size = pool_size
        self._raw_pool: asyncpg.Pool | None = None
        self._raw_lock = asyncio.Lock()

    async def check_runtime_role(self) -> None:
        """Refuse a role that would bypass row-level security: tenant isolation depends on it."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
                )
            ).scalar_one()
        if row:
            raise ConfigurationError(
                "the runtime database role bypasses row-level security; use a plain role "
                "(see README: 'Pointing at your own PostgreSQL')"
            )

    @asynccontextmanager
    async def transaction(self, tenant_id: str | None = None, *, platform: bool = False
                          ) -> AsyncIterator[AsyncConnection]:
        """A transaction scoped to `tenant_id` (the caller's tenant when not given).

        Pass tenant_id="" for platform work that touches no tenant table. `platform=True` is
        the one way to read across tenants (tables with a `platform_read` policy): it is
        refused unless the caller holds a `platform:` permission, which `*` never implies.
        """
        ctx = context.current()
        if platform and not any(p.startswith(context.PLATFORM + ":") for p in ctx.permissions):
            raise PermissionDenied("platform access requires a platform permission", reason="NOT_PLATFORM_OPERATOR")
        tenant = ctx.tenant_id if tenant_id is None else tenant_id
        async with self.engine.begin() as conn:
            if tenant:
                await conn.execute(_SET_CONTEXT, {"tenant_id": tenant, "user_id": ctx.user_id,
                                                  "read_owners": _owners(ctx.read_owners),
                                                  "write_owners": _owners(ctx.write_owners)})
            if platform:
                await conn.execute(_SET_PLATFORM)
            yield conn

    @asynccontextmanager
    async def read(self, tenant_id: str | None = None) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        """A read-only connection in the caller's tenant, on a plain asyncpg connection.

        The hot read path (get by id, list pages): prepared statements, no SQL-toolkit cost per
        statement, and at most one round trip before the queries: the tenant settings, set for
        the session rather than for a transaction, so each query runs in its own implicit
        transaction with no BEGIN or COMMIT to wait for; a connection whose session already
        holds exactly these settings (the same caller's last read on it) skips even that. Sound
        because this pool serves only this method, which sets every setting before any query
        (a failed setup reverts all four and is forgotten, so the next use sets them again), and
        `write`, whose settings end with its transaction; its connections are read-only
        (`default_transaction_read_only`). Row-level security applies exactly as in
        `transaction`. Queries of one `read` block do not share a snapshot: use `transaction`
        where two reads must agree.
        """
        ctx = context.current()
        tenant = ctx.tenant_id if tenant_id is None else tenant_id
        if not tenant:
            raise PermissionDenied("no tenant for a tenant read", reason="NO_TENANT")
        setup = _context_sql(ctx, tenant)
        pool = self._raw_pool or await self._open_raw_pool()
        async with pool.acquire() as conn:
            raw = cast(_RawConnection, conn)  # the pool's proxy hands these on to the connection
            if raw.session_settings() != setup:  # the exact text: same tenant, user and scopes
                raw.remember_settings("")  # a setup that fails midway leaves none of it behind
                await conn.execute(setup)
                raw.remember_settings(setup)
            yield conn

    @asynccontextmanager
    async def write(self, tenant_id: str | None = None) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        """A read-write transaction in the caller's tenant on a plain asyncpg connection, for hot
        write paths (a single create): no SQL-toolkit cost per statement, and BEGIN goes out
        with the tenant settings in one round trip. Commits when the block ends, rolls back on
        any error. Shares `read`'s pool: `READ WRITE` overrides the pool's read-only default
        for this transaction alone, and the settings are transaction-local, so the connection
        returns to the pool with the session settings `read` left on it (and remembers).
        Row-level security applies exactly as in `transaction`; `emit` takes this connection.
        """
        ctx = context.current()
        tenant = ctx.tenant_id if tenant_id is None else tenant_id
        if not tenant:
            raise PermissionDenied("no tenant for a tenant write", reason="NO_TENANT")
        setup = "BEGIN READ WRITE; " + _context_sql(ctx, tenant, local=True)
        pool = self._raw_pool or await self._open_raw_pool()
        async with pool.acquire() as conn:
            await conn.execute(setup)
            try:
                yield conn
            except BaseException:
                if not conn.is_closed():  # else the pool's reset rolls back, or the connection is gone
                    with contextlib.suppress(Exception):
                        await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def fetchrow(self, query: RawQuery, **values: Any) -> asyncpg.Record | None:
        async with self.read() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(query.sql, *query.args(**values))
            return row

    async def _open_raw_pool(self) -> asyncpg.Pool:
        async with self._raw_lock:
            if self._raw_pool is None:
                self._raw_pool = await asyncpg.create_pool(asyncpg_dsn(self.url), min_size=0,
                                                           max_size=self._pool_size, reset=_end_transaction,
                                                           init=_json_codecs, connection_class=_RawConnection,
                                                           server_settings={"default_transaction_read_only": "on"})
        return self._raw_pool

    async def ping(self, timeout: float) -> bool:
        """Whether the database answers within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False

    async def close(self) -> None:
        if self._raw_pool is not None:
            await self._raw_pool.close()
        await self.engine.dispose()
