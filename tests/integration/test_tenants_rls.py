"""The one path across tenants: `db.transaction(platform=True)`, for `platform:` callers only, read-only.

Run against the stack's database as its runtime role (row-level security binds it).
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text

from services.devstack import DevStack
from services.kernel import context
from services.kernel.context import RequestContext
from services.kernel.db import Database
from services.kernel.errors import PermissionDenied
from tests.integration.conftest import sign_up


async def _as(db: Database, ctx: RequestContext, sql: str, *, platform: bool = False, **params: object) -> list:
    token = context.bind(ctx)
    try:
        async with db.transaction(platform=platform) as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        context.reset(token)


async def test_only_platform_callers_read_across_tenants(stack: DevStack, api: httpx.Client) -> None:
    a, b = sign_up(api)["x-tenant-id"], sign_up(api)["x-tenant-id"]
    db = Database(stack.database_url, pool_size=1)
    try:
        admin = RequestContext(tenant_id=a, user_id=str(uuid.uuid4()), permissions=frozenset({"*"}))
        # A tenant admin holds every tenant permission, and still cannot ask for the platform path.
        with pytest.raises(PermissionDenied):
            await _as(db, admin, "SELECT id FROM auth.tenants", platform=True)
        with pytest.raises(PermissionDenied):
            await _as(db, RequestContext(tenant_id=a, user_id="u", permissions=frozenset({"tenants:*"})),
                      "SELECT 1", platform=True)
        # Without it, its transactions see its own tenant row only.
        rows = await _as(db, admin, "SELECT id FROM auth.tenants")
        assert [str(r[0]) for r in rows] == [a]

        operator = RequestContext(tenant_id=str(uuid.uuid4()), user_id="o",
                                  permissions=frozenset({"platform:tenants.read"}))
        seen = {str(r[0]) for r in await _as(db, operator, "SELECT id FROM auth.tenants", platform=True)}
        assert {a, b} <= seen
        # The platform policy admits reading only: an update across tenants touches nothing.
        changed = await _as(db, operator, "UPDATE auth.tenants SET name = 'pwned' WHERE id = :b RETURNING id",
                            platform=True, b=uuid.UUID(b))
        assert changed == []
        # And it admits nothing beyond its tables: other tenants' users stay invisible.
        users = await _as(db, operator, "SELECT tenant_id FROM auth.users WHERE tenant_id = :b", platform=True,
                          b=uuid.UUID(b))
        assert users == []
        # The setting lives for one transaction: the pooled connection forgets it.
        rows = await _as(db, admin, "SELECT current_setting('app.platform', true)")
        assert rows[0][0] in (None, "")
    finally:
        await db.close()
