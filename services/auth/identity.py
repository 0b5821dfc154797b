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
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context
from services.kernel.authn import BUILTIN_ROLES
from services.kernel.events import emit
from services.kernel.settings import Settings

SCHEMA = "auth"

# Rate-limit tier of a tenant's plan; OAuth clients (client credentials) use `api_integration`.
PLAN_TIERS = {"free": "standard", "standard": "standard", "professional": "premium", "premium": "premium",
              "enterprise": "premium"}


def tier_for(plan: str, *, client: bool = False) -> str:
    return "api_integration" if client else PLAN_TIERS.get(plan, "standard")


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
