"""Database access: one async engine per process, one transaction per unit of work.

Every transaction that touches tenant data first sets `app.tenant_id`; the row-level security
policies of every tenant table compare against it, so a query that forgot its tenant filter
still sees only the caller's rows. The kernel commits or rolls back; services never commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.kernel import context
from services.kernel.errors import ConfigurationError

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
    async def transaction(self, tenant_id: str | None = None) -> AsyncIterator[AsyncConnection]:
        """A transaction scoped to `tenant_id` (the caller's tenant when not given).

        Pass tenant_id="" for platform work that touches no tenant table.
        """
        ctx = context.current()
        tenant = ctx.tenant_id if tenant_id is None else tenant_id
        async with self.engine.begin() as conn:
            if tenant:
                await conn.execute(_SET_CONTEXT, {"tenant_id": tenant, "user_id": ctx.user_id,
                                                  "read_owners": _owners(ctx.read_owners),
                                                  "write_owners": _owners(ctx.write_owners)})
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()
