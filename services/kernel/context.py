"""The caller of the current rpc, kept in a context variable for the rpc's duration."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from services.kernel.errors import PermissionDenied, Unauthenticated

PLATFORM = "platform"


@dataclass(frozen=True)
class RequestContext:
    """Who is calling, for which tenant, and how to correlate the call."""

    request_id: str = ""
    tenant_id: str = ""
    user_id: str = ""
    session_id: str = ""
    roles: tuple[str, ...] = ()
    permissions: frozenset[str] = field(default_factory=frozenset)
    client_ip: str = ""
    user_agent: str = ""
    tier: str = "standard"  # rate-limit tier: standard, premium, api_integration
    client_id: str = ""  # set when an OAuth client (client credentials) is calling

    @property
    def authenticated(self) -> bool:
        return bool(self.user_id and self.tenant_id)

    def can(self, permission: str) -> bool:
        """`contacts:write` is granted by itself, by `contacts:*` and by `*`.

        `platform:` permissions (operating every tenant) are never implied by `*`: a tenant's
        admin has every permission inside the tenant and none over the platform.
        """
        if not permission:
            return True
        resource = permission.split(":", 1)[0]
        granted = {permission, f"{resource}:*"} if resource == PLATFORM else {permission, f"{resource}:*", "*"}
        return bool(granted & self.permissions)

    def require(self, permission: str) -> None:
        if not self.authenticated:
            raise Unauthenticated("authentication required")
        if not self.can(permission):
            raise PermissionDenied(f"permission {permission!r} required", reason="MISSING_PERMISSION")


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "crm_request_context", default=RequestContext()  # noqa: B039 - frozen, never mutated
)


def current() -> RequestContext:
    """The context of the rpc being served (an anonymous one outside rpcs)."""
    return _current.get()


def tenant_id() -> str:
    ctx = _current.get()
    if not ctx.tenant_id:
        raise Unauthenticated("no tenant in context")
    return ctx.tenant_id


def bind(ctx: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(ctx)


def reset(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)
