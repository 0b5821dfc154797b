"""Security events of the auth service, in the outbox with the change they describe.

Each carries, besides the CloudEvent's tenant and actor, the acting principal, the client
address and user agent, so an audit consumer can tell who did what from where.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context
from services.kernel.events import emit

SCHEMA = "auth"


def client_facts() -> dict[str, str]:
    ctx = context.current()
    return {"clientIp": ctx.client_ip, "userAgent": ctx.user_agent[:300]}


async def security_event(conn: AsyncConnection, event_type: str, subject: str, data: dict[str, Any], *,
                         tenant_id: str, actor_id: str = "") -> None:
    ctx = context.current()
    payload = {**data, "actorId": actor_id or ctx.user_id, **client_facts()}
    await emit(conn, SCHEMA, event_type, subject, payload, tenant_id=tenant_id)
