"""The caller of the current rpc, kept in a context variable for the rpc's duration."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field, replace

from services.kernel.errors import PermissionDenied, Unauthenticated

PLATFORM = "platform"
SCOPES = ("team", "own")  # `contacts:read:team`: only records owned by the caller's team


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
    team: tuple[str, ...] = ()  # user ids of the caller's teams (the caller included)
    token: str = field(default="", repr=False)  # the caller's bearer token, forwarded on internal calls
    # Owners whose records this rpc may read / change; None means every owner in the tenant.
    # Set by the interceptor from the rpc's resource and enforced by row-level security.
    read_owners: tuple[str, ...] | None = None
    write_owners: tuple[str, ...] | None = None
    if_match: str = ""  # the caller's If-Match header, for conditional rpcs (kernel.preconditions)

    @property
    def authenticated(self) -> bool:
        return bool(self.user_id and self.tenant_id)

    def can(self, permission: str) -> bool:
        """`contacts:write` is granted by itself, by `contacts:*`, by `*`, and within a scope by
        `contacts:write:team` or `contacts:write:own` (see `owners`).

        `platform:` permissions (operating every tenant) are never implied by `*`: a tenant's
        admin has every permission inside the tenant and none over the platform.
        """
        if not permission:
            return True
        return self._unscoped(permission) or bool({f"{permission}:{s}" for s in SCOPES} & self.permissions)

    def _unscoped(self, permission: str) -> bool:
        resource = permission.split(":", 1)[0]
        granted = {permission, f"{resource}:*"} if resource == PLATFORM else {permission, f"{resource}:*", "*"}
        return bool(granted & self.permissions)

    def owners(self, permission: str) -> tuple[str, ...] | None:
        """Whose records `permission` reaches: None for all, the team's or only the caller's."""
        if self._unscoped(permission):
            return None
        if f"{permission}:team" in self.permissions:
            return tuple(sorted({self.user_id, *self.team}))
        if f"{permission}:own" in self.permissions:
            return (self.user_id,)
        return ()

    def scoped_to(self, resource: str) -> RequestContext:
        """This caller with the record scopes of `resource` (`<resource>:read` and `:write`)."""
        read, write = self.owners(f"{resource}:read"), self.owners(f"{resource}:write")
        # What one may change one may also see (INSERT ... RETURNING reads the new row).
        read = None if read is None or write is None else tuple(sorted({*read, *write}))
        return replace(self, read_owners=read, write_owners=write)

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


# --- what an rpc asks the REST edge to add to its answer -------------------------------------

# Response headers a service may set; edge/envelope.lua copies exactly these (sent as
# `x-crm-header-<name>` metadata) onto the REST answer and drops any other.
RESPONSE_HEADERS = frozenset({"cache-control", "pragma", "location", "retry-after", "www-authenticate", "etag"})
# Members the envelope owns; extra top-level members may not shadow them.
ENVELOPE_MEMBERS = frozenset({"success", "data", "meta", "errors"})


@dataclass
class ResponseExtras:
    """Headers and extra top-level JSON members for the REST answer of one rpc.

    Kept apart from RequestContext (which is frozen and describes the caller); the interceptor
    sends them as metadata with the answer, error answers included.
    """

    headers: dict[str, str] = field(default_factory=dict)
    members: dict[str, object] = field(default_factory=dict)


_extras: contextvars.ContextVar[ResponseExtras | None] = contextvars.ContextVar("crm_response_extras", default=None)


def _current_extras() -> ResponseExtras:
    extras = _extras.get()
    if extras is None:  # outside an rpc (jobs, consumers): nothing to answer, keep it anyway
        extras = ResponseExtras()
        _extras.set(extras)
    return extras


def set_response_header(name: str, value: str) -> None:
    """Ask the edge to answer with this header (one of RESPONSE_HEADERS)."""
    key = name.lower()
    if key not in RESPONSE_HEADERS:
        raise ValueError(f"response header {name!r} is not forwarded by the edge")
    if any(c in value for c in "\r\n"):
        raise ValueError("header values cannot hold line breaks")
    _current_extras().headers[key] = value


def set_envelope_members(**members: object) -> None:
    """Add top-level JSON members beside the envelope's own, for clients that need a given
    document shape (OAuth 2.0 libraries read `access_token` or `error` at the top level)."""
    clash = ENVELOPE_MEMBERS & members.keys()
    if clash:
        raise ValueError(f"{sorted(clash)} belong to the envelope")
    _current_extras().members.update(members)


def bind_extras() -> contextvars.Token[ResponseExtras | None]:
    return _extras.set(ResponseExtras())


def extras() -> ResponseExtras:
    return _current_extras()


def reset_extras(token: contextvars.Token[ResponseExtras | None]) -> None:
    _extras.reset(token)
