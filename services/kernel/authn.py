"""Verifying callers: access tokens (EdDSA JWTs from the auth service) and revoked sessions.

Every service verifies the token again, whatever the edge did: internal callers get no free
pass. Revoked sessions arrive as `crm.auth.session.revoked` events; a new process replays the
last access-token lifetime of them from JetStream, which is exactly the set that can still
matter (older sessions' access tokens have expired).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jwt

from services.kernel.context import RequestContext
from services.kernel.errors import PermissionDenied, Unauthenticated

ALGORITHMS = ["EdDSA"]  # pinned: a token naming any other algorithm is refused
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "tid", "sid"]

# Permissions of the built-in roles; custom roles come with the identity platform.
BUILTIN_ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "manager": frozenset(
        {f"{r}:*" for r in ("contacts", "accounts", "leads", "deals", "pipelines", "activities", "reports")}
        | {"users:read", "teams:read"}
    ),
    # Reps see every record of the sales process but change only their own (the usual CRM default).
    "sales_rep": frozenset(
        {"contacts:read", "contacts:write:own", "contacts:delete:own", "contacts:import", "contacts:export"}
        | {f"{r}:read" for r in ("accounts", "leads", "deals", "pipelines", "activities", "users", "teams")}
        | {f"{r}:{a}:own" for r in ("accounts", "leads", "deals", "activities") for a in ("write", "delete")}
        | {"leads:convert"}
    ),
    "read_only": frozenset(
        {f"{r}:read" for r in ("contacts", "accounts", "leads", "deals", "pipelines", "activities", "users", "teams")}
    ),
    # Operators of the whole installation (made by the operator CLI, never by sign-up).
    "platform_operator": frozenset({"platform:*"}),
}


def issued_at(claims: dict[str, Any]) -> float:
    """When a token was issued, to the millisecond when it says (`iat_ms`): `iat` is whole
    seconds, and a token issued in the same second right after a user's revocation must live."""
    precise = claims.get("iat_ms")
    if isinstance(precise, int) and abs(precise / 1000 - float(claims["iat"])) < 1:
        return precise / 1000
    return float(claims["iat"])


def permissions_of(roles: list[str] | tuple[str, ...]) -> frozenset[str]:
    perms: set[str] = set()
    for role in roles:
        perms |= BUILTIN_ROLES.get(role, frozenset())
    return frozenset(perms)


class RevokedSessions:
    """Tokens that must stop working before they expire, each entry kept until they would.

    Two kinds: a whole session (logout, session kill), and every token a user was issued
    before a moment (deactivation, password change, role change: the client refreshes and
    its new token carries the new permissions, or it cannot refresh at all).
    """

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._users: dict[str, tuple[float, float]] = {}  # user id -> (issued before, kept until)

    def add(self, session_id: str, until: float) -> None:
        self._until[session_id] = max(until, self._until.get(session_id, 0.0))

    def add_user(self, user_id: str, before: float, until: float) -> None:
        old_before, old_until = self._users.get(user_id, (0.0, 0.0))
        self._users[user_id] = (max(before, old_before), max(until, old_until))

    def __contains__(self, session_id: str) -> bool:
        until = self._until.get(session_id)
        if until is None:
            return False
        if until < time.time():
            del self._until[session_id]
            return False
        return True

    def user_token_revoked(self, user_id: str, issued_at: float) -> bool:
        entry = self._users.get(user_id)
        if entry is None:
            return False
        before, until = entry
        if until < time.time():
            del self._users[user_id]
            return False
        return issued_at < before


class TokenVerifier:
    """Checks signature, algorithm, issuer, audience, time claims and revocation."""

    _CACHE_SIZE = 10_000

    def __init__(self, jwks: dict[str, Any], *, issuer: str, audience: str, revoked: RevokedSessions) -> None:
        self._keys = {k["kid"]: jwt.PyJWK(k) for k in jwks.get("keys", [])}
        self.issuer = issuer
        self.audience = audience
        self.revoked = revoked
        # A signature check costs more than the rest of a small rpc: remember verified tokens.
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> TokenVerifier:
        return cls(json.loads(path.read_text()), **kwargs)

    def claims(self, token: str) -> dict[str, Any]:
        cached = self._verified.get(token)
        if cached is None:
            cached = self._decode(token)
            self._verified[token] = cached
            if len(self._verified) > self._CACHE_SIZE:
                self._verified.popitem(last=False)
        if cached["exp"] <= time.time():
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED")
        if cached["sid"] in self.revoked:
            raise Unauthenticated("session has ended", reason="SESSION_REVOKED")
        if self.revoked.user_token_revoked(cached["sub"], issued_at(cached)):
            raise Unauthenticated("token no longer valid: refresh it", reason="TOKEN_REVOKED")
        return cached

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(header.get("kid", ""))
            if key is None or header.get("alg") not in ALGORITHMS:
                raise Unauthenticated("token not signed by a known key", reason="INVALID_TOKEN")
            return jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}", reason="INVALID_TOKEN") from None

    def context(self, metadata: dict[str, str], base: RequestContext) -> RequestContext:
        """The caller described by `authorization` and `x-tenant-id` metadata."""
        auth = metadata.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("missing bearer token", reason="MISSING_TOKEN")
        claims = self.claims(token.strip())
        tenant = claims["tid"]
        asked = metadata.get("x-tenant-id", "").strip()
        if asked and asked.lower() != tenant.lower():
            raise PermissionDenied("the token is not valid for this tenant", reason="TENANT_MISMATCH")
        roles = tuple(claims.get("roles", ()))
        # `perms` is the effective permission set the auth service resolved (custom roles
        # included); tokens without it get the built-in roles' permissions.
        perms = claims.get("perms")
        return RequestContext(
            request_id=base.request_id,
            tenant_id=tenant,
            user_id=claims["sub"],
            session_id=claims["sid"],
            roles=roles,
            permissions=frozenset(perms) if isinstance(perms, list) else permissions_of(roles),
            tier=str(claims.get("tier", "standard")),
            team=tuple(str(u) for u in claims.get("team", ()) if isinstance(u, str)),
            token=token.strip(),
            client_id=str(claims.get("cid", "")),
            client_ip=base.client_ip,
            user_agent=base.user_agent,
            if_match=base.if_match,
        )
