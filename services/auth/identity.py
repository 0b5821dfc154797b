"""Identity facts shared by the auth, users and tenants services (one schema, `auth`).

Identity is one consistency boundary: a sign-up creates a tenant and its admin together, and
deactivating a user or changing their roles must end their tokens at once. So the three
services share the `auth` schema, each with its own migration history, and these helpers are
the one place that resolves permissions, plan tiers and token revocations.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.auth.plans import PLANS
from services.kernel import context
from services.kernel.authn import BUILTIN_ROLES
from services.kernel.errors import PermissionDenied
from services.kernel.events import emit
from services.kernel.settings import Settings

SCHEMA = "auth"

# Rate-limit tier of a tenant's plan, from the plan catalogue (services/auth/plans.py);
# OAuth clients (client credentials) use `api_integration`.
PLAN_TIERS = {key: p.tier for key, p in PLANS.items()}


def tier_for(plan: str, *, client: bool = False) -> str:
    return "api_integration" if client else PLAN_TIERS.get(plan, "standard")


def require_active_tenant(status: str) -> None:
    """Users of a suspended or deleted tenant get no tokens (the tenants service ends the ones
    they hold when it suspends the tenant)."""
    if status != "active":
        raise PermissionDenied(f"this tenant is {status}", reason="TENANT_INACTIVE")


async def effective_permissions(conn: AsyncConnection, role_keys: list[str] | tuple[str, ...]) -> list[str]:
    """Permissions granted by built-in and custom roles (custom ones read in the caller's tenant)."""
    perms: set[str] = set()
    custom = [k for k in role_keys if k not in BUILTIN_ROLES]
    for key in role_keys:
        perms |= BUILTIN_ROLES.get(key, frozenset())
    if custom:
        rows = await conn.execute(text("SELECT permissions FROM auth.roles WHERE key = ANY(:k)"), {"k": custom})
        for (granted,) in rows:
            perms.update(granted)
    return sorted(perms)


def _until(settings: Settings) -> float:
    return time.time() + settings.access_token_ttl_seconds + 60


def _where_from() -> dict[str, str]:
    """Client address and agent of the request that caused a revocation (for audit)."""
    ctx = context.current()
    return {"clientIp": ctx.client_ip, "userAgent": ctx.user_agent[:300]}


async def revoke_session(conn: AsyncConnection, settings: Settings, *, session_id: str, user_id: str,
                         reason: str) -> None:
    """End one session: its refresh token stops at once, its access tokens in every service."""
    await conn.execute(
        text("UPDATE auth.sessions SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL"),
        {"id": uuid.UUID(session_id)},
    )
    await emit(conn, SCHEMA, "crm.auth.session.revoked", session_id,
               {"sessionId": session_id, "userId": user_id, "until": _until(settings), "reason": reason,
                **_where_from()})


async def revoke_user_tokens(conn: AsyncConnection, settings: Settings, *, user_id: str, reason: str,
                             end_sessions: bool) -> None:
    """Refuse every access token the user holds now (issued before this moment).

    With `end_sessions` their refresh tokens die too (deactivation, password reset); without it
    the client refreshes and its new token carries the new roles (role changes).
    """
    if end_sessions:
        await conn.execute(
            text("UPDATE auth.sessions SET revoked_at = now() WHERE user_id = :u AND revoked_at IS NULL"),
            {"u": uuid.UUID(user_id)},
        )
    await emit(conn, SCHEMA, "crm.auth.user.revoked", user_id,
               {"userId": user_id, "before": time.time(), "until": _until(settings), "reason": reason,
                **_where_from()})


async def insert_user(conn: AsyncConnection, *, tenant_id: uuid.UUID, email: str, password_hash: str,
                      first_name: str, last_name: str, roles: list[str], user_id: uuid.UUID | None = None
                      ) -> RowMapping:
    """A user of `tenant_id` (the transaction's tenant) who can sign in; announces it."""
    user_id = user_id or uuid.uuid4()
    user = (
        await conn.execute(
            text("INSERT INTO auth.users (id, tenant_id, email, password_hash, first_name, last_name, roles) "
                 "VALUES (:id, :t, :email, :hash, :fn, :ln, :roles) RETURNING *"),
            {"id": user_id, "t": tenant_id, "email": email, "hash": password_hash, "fn": first_name.strip(),
             "ln": last_name.strip(), "roles": roles},
        )
    ).mappings().one()
    await conn.execute(
        text("INSERT INTO auth.login_index (email, tenant_id, user_id) VALUES (:e, :t, :u)"),
        {"e": email, "t": tenant_id, "u": user_id},
    )
    await emit(conn, SCHEMA, "crm.auth.user.created", str(user_id),
               {"userId": str(user_id), "email": email, "roles": roles}, tenant_id=str(tenant_id))
    return user


async def create_tenant_with_admin(conn: AsyncConnection, *, tenant_id: uuid.UUID, name: str, plan: str,
                                   email: str, password_hash: str, first_name: str, last_name: str,
                                   event_type: str, roles: list[str] | None = None) -> RowMapping:
    """A tenant and its first user (sign-up, operators' POST /tenants, the operator CLI), in the
    caller's transaction, which must be scoped to `tenant_id`. Returns the user."""
    user_id = uuid.uuid4()
    await conn.execute(text("INSERT INTO auth.tenants (id, name, plan) VALUES (:id, :name, :plan)"),
                       {"id": tenant_id, "name": name, "plan": plan})
    await emit(conn, SCHEMA, event_type, str(tenant_id),
               {"tenantId": str(tenant_id), "name": name, "plan": plan, "adminUserId": str(user_id)},
               tenant_id=str(tenant_id))
    return await insert_user(conn, tenant_id=tenant_id, email=email, password_hash=password_hash,
                             first_name=first_name, last_name=last_name, roles=roles or ["admin"], user_id=user_id)


MAX_TEAMMATES = 500  # a bigger circle is better served by an unscoped (`x:read`) permission
_team_table: bool | None = None


async def teammates(conn: AsyncConnection, user_id: str) -> list[str]:
    """The user and everyone sharing a team with them: whose records `x:read:team` reaches.
    Carried in the access token (`team`), so no service asks for it per request."""
    global _team_table
    if _team_table is None:  # the users service (which owns teams) may not be deployed
        _team_table = bool((await conn.execute(text("SELECT to_regclass('auth.team_members') IS NOT NULL"))).scalar())
    if not _team_table:
        return [user_id]
    rows = await conn.execute(text(
        "SELECT DISTINCT other.user_id FROM auth.team_members mine "
        "JOIN auth.team_members other ON other.team_id = mine.team_id "
        "WHERE mine.user_id = :u ORDER BY other.user_id LIMIT :n"), {"u": uuid.UUID(user_id), "n": MAX_TEAMMATES})
    return sorted({user_id, *(str(r[0]) for r in rows)})
