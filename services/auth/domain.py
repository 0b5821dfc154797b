"""Sign-up, login, tokens and sessions. No gRPC here: plain values in and out.

OAuth 2.0 (oauth.py), MFA (mfa.py) and mailed tokens (recovery.py) build on this core: it
opens sessions, mints access tokens, rotates refresh tokens and ends sessions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.auth import identity, opaque, passwords, throttle
from services.auth.audit import security_event
from services.auth.keys import SigningKey
from services.auth.mail import Postman, email_verification
from services.auth.plans import DEFAULT_PLAN
from services.auth.vault import DataKey
from services.kernel import context
from services.kernel.authn import RevokedSessions, TokenVerifier
from services.kernel.db import Database
from services.kernel.errors import (
    DomainError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    validation,
)
from services.kernel.settings import Settings

SCHEMA = "auth"
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
EMAIL_VERIFY_TTL = 3 * 24 * 3600
MFA_CHALLENGE_TTL = 300
USED_REFRESH_KEPT = 50  # rotated-out refresh tokens remembered per session (reuse detection)


@dataclass(frozen=True)
class Tokens:
    """A login answer: tokens, or (MFA pending) only an MFA challenge token."""

    access_token: str = ""
    refresh_token: str = ""
    expires_in: int = 0
    tenant_id: str = ""
    scope: str = ""
    mfa_token: str = ""
    session_id: str = ""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def invalid_grant(message: str = "invalid refresh token") -> Unauthenticated:
    return Unauthenticated(message, reason="INVALID_GRANT", metadata={"error": "invalid_grant"})


@contextlib.contextmanager
def acting_as(tenant_id: str, user_id: str = "") -> Iterator[None]:
    """Within a public rpc, once the principal is known: its tenant scopes transactions and events."""
    token = context.bind(dataclasses.replace(context.current(), tenant_id=tenant_id,
                                             user_id=user_id or context.current().user_id))
    try:
        yield
    finally:
        context.reset(token)


class AuthDomain:
    def __init__(self, db: Database, settings: Settings, key: SigningKey, *, vault: DataKey, postman: Postman,
                 revoked: RevokedSessions, verifier: TokenVerifier) -> None:
        self.db = db
        self.settings = settings
        self.key = key
        self.vault = vault
        self.postman = postman
        self.revoked = revoked
        self.verifier = verifier
        self.throttle = throttle.Throttle(db)

    # --- revocation, effective in this process at once, in others through the event ---------
    def _revoked_here(self, *, session_id: str = "", user_id: str = "") -> None:
        until = time.time() + self.settings.access_token_ttl_seconds + 60
        if session_id:
            self.revoked.add(session_id, until)
        if user_id:
            self.revoked.add_user(user_id, time.time(), until)

    async def end_session(self, conn: AsyncConnection, session_id: str, user_id: str, reason: str) -> None:
        await identity.revoke_session(conn, self.settings, session_id=session_id, user_id=user_id, reason=reason)

    # --- sign-up ---------------------------------------------------------------------------
    async def register(
        self, *, email: str, password: str, first_name: str, last_name: str, tenant_name: str
    ) -> tuple[str, RowMapping]:
        email = normalize_email(email)
        problems = []
        if not EMAIL_RE.match(email) or len(email) > 254:
            problems.append(FieldViolation("email", "must be a valid email address"))
        weak = passwords.weakness(password)
        if weak:
            problems.append(FieldViolation("password", f"password {weak}", "WEAK_PASSWORD"))
        if not tenant_name.strip() or len(tenant_name) > 200:
            problems.append(FieldViolation("tenantName", "must be 1 to 200 characters"))
        for name, value in (("firstName", first_name), ("lastName", last_name)):
            if len(value) > 100:
                problems.append(FieldViolation(name, "must be at most 100 characters", "TOO_LONG"))
        if problems:
            raise validation(problems)
        password_hash = await passwords.hash_password(password)
        tenant_id = uuid.uuid4()
        async with self.db.transaction(tenant_id=str(tenant_id)) as conn:
            user = await identity.create_tenant_with_admin(
                conn, tenant_id=tenant_id, name=tenant_name.strip(), plan=DEFAULT_PLAN, email=email,
                password_hash=password_hash, first_name=first_name, last_name=last_name,
                event_type="crm.auth.tenant.created",
            )
            token = await self.user_token(conn, user, "email_verify", EMAIL_VERIFY_TTL)
        self.postman.later(email_verification(self.settings.public_url, email, token))
        return str(tenant_id), user

    async def user_token(self, conn: AsyncConnection, user: RowMapping, purpose: str, ttl: int,
                         source_event: str | None = None) -> str:
        """A new single-use mailed token; earlier unused ones of the same purpose stop working."""
        await conn.execute(
            text("UPDATE auth.user_tokens SET used_at = now() WHERE user_id = :u AND purpose = :p AND used_at IS NULL"),
            {"u": user["id"], "p": purpose},
        )
        token_id = uuid.uuid4()
        token, token_hash = opaque.issue(user["tenant_id"], token_id)
        await conn.execute(
            text("INSERT INTO auth.user_tokens (id, tenant_id, user_id, purpose, token_hash, expires_at, source_event) "
                 "VALUES (:id, :t, :u, :p, :h, now() + make_interval(secs => :ttl), :src)"),
            {"id": token_id, "t": user["tenant_id"], "u": user["id"], "p": purpose, "h": token_hash, "ttl": ttl,
             "src": source_event},
        )
        return token

    # --- login -----------------------------------------------------------------------------
    async def login(self, *, email: str, password: str, tenant_id: str) -> Tokens:
        email = normalize_email(email)
        if not email or not password:
            raise InvalidArgument(
                "email and password are required",
                violations=[FieldViolation(f, "is required", "REQUIRED") for f, v in
                            (("email", email), ("password", password)) if not v],
            )
        ctx = context.current()
        keys = [(f"login:account:{email}", throttle.ACCOUNT), (f"login:address:{ctx.client_ip}", throttle.ADDRESS)]
        try:
            await self.throttle.attempt(keys)
        except throttle.Throttled as err:
            await self._record("", "crm.auth.login.throttled", email,
                               {"email": email, "retryAfter": err.retry_after})
            raise
        async with self.db.transaction(tenant_id="") as conn:
            rows = (
                await conn.execute(text("SELECT tenant_id FROM auth.login_index WHERE email = :e"), {"e": email})
            ).scalars().all()
        tenants = [str(t) for t in rows]
        if tenant_id:
            tenants = [t for t in tenants if t == tenant_id.lower()]
        if len(tenants) > 1:
            raise InvalidArgument(
                "this address belongs to several tenants; name one with X-Tenant-ID",
                reason="TENANT_REQUIRED",
                violations=[FieldViolation("tenantId", "required for this address", "TENANT_REQUIRED")],
            )
        user: RowMapping | None = None
        if tenants:
            async with self.db.transaction(tenant_id=tenants[0]) as conn:
                user = (
                    await conn.execute(text("SELECT * FROM auth.users WHERE email = :e"), {"e": email})
                ).mappings().first()
        ok = await passwords.verify_password(user["password_hash"] if user else None, password)
        if user is None or not ok or not user["active"]:
            # One answer for unknown address, wrong password and disabled user: no enumeration.
            reason = "unknown_account" if user is None else ("bad_credentials" if not ok else "inactive")
            await self._record(str(user["tenant_id"]) if user else "", "crm.auth.login.failed",
                               str(user["id"]) if user else email,
                               {"userId": str(user["id"]) if user else "", "email": email, "reason": reason})
            raise Unauthenticated("invalid email or password", reason="INVALID_CREDENTIALS")
        await self.throttle.succeeded(keys, forget=(keys[0][0],))
        with acting_as(str(user["tenant_id"]), str(user["id"])):
            if await self._mfa_enabled(user):
                return await self._mfa_challenge(user)
            return await self.open_session(user, method="password")

    async def _record(self, tenant_id: str, event_type: str, subject: str, data: dict[str, Any]) -> None:
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            await security_event(conn, event_type, subject, data, tenant_id=tenant_id, actor_id=data.get("userId", ""))

    async def _mfa_enabled(self, user: RowMapping) -> bool:
        async with self.db.transaction(tenant_id=str(user["tenant_id"])) as conn:
            enabled = (await conn.execute(text("SELECT enabled_at FROM auth.mfa WHERE user_id = :u"),
                                          {"u": user["id"]})).scalar_one_or_none()
        return enabled is not None

    async def _mfa_challenge(self, user: RowMapping) -> Tokens:
        """The password was right; the second factor is still to come (mfa.complete_login)."""
        challenge_id = uuid.uuid4()
        token, token_hash = opaque.issue(user["tenant_id"], challenge_id)
        async with self.db.transaction(tenant_id=str(user["tenant_id"])) as conn:
            await conn.execute(
                text("INSERT INTO auth.mfa_challenges (id, tenant_id, user_id, token_hash, expires_at) "
                     "VALUES (:id, :t, :u, :h, now() + make_interval(secs => :ttl))"),
                {"id": challenge_id, "t": user["tenant_id"], "u": user["id"], "h": token_hash,
                 "ttl": MFA_CHALLENGE_TTL},
            )
            await security_event(conn, "crm.auth.login.mfa_required", str(user["id"]), {"userId": str(user["id"])},
                                 tenant_id=str(user["tenant_id"]), actor_id=str(user["id"]))
        return Tokens(tenant_id=str(user["tenant_id"]), mfa_token=token)

    async def open_session(self, user: RowMapping, *, method: str, client_id: str = "",
                           scope: list[str] | None = None, mfa: bool = False,
                           conn: AsyncConnection | None = None) -> Tokens:
        """A new session (refresh token family) and its first access token, in `conn`'s
        transaction when given (so it commits with what granted it)."""
        if conn is None:
            async with self.db.transaction(tenant_id=str(user["tenant_id"])) as own:
                return await self.open_session(user, method=method, client_id=client_id, scope=scope, mfa=mfa,
                                               conn=own)
        ctx = context.current()
        tenant_id, session_id = user["tenant_id"], uuid.uuid4()
        await require_active_tenant(conn, tenant_id)
        refresh, refresh_hash = opaque.issue(tenant_id, session_id)
        await conn.execute(
            text(
                "INSERT INTO auth.sessions (id, tenant_id, user_id, refresh_hash, user_agent, client_ip, expires_at) "
                "VALUES (:id, :t, :u, :h, :ua, :ip, now() + make_interval(secs => :ttl))"
            ),
            {"id": session_id, "t": tenant_id, "u": user["id"], "h": refresh_hash, "ua": ctx.user_agent[:300],
             "ip": ctx.client_ip[:100], "ttl": self.settings.refresh_token_ttl_seconds},
        )
        if client_id or mfa:
            await conn.execute(
                text("INSERT INTO auth.session_details (session_id, tenant_id, client_id, scope, mfa) "
                     "VALUES (:s, :t, :c, :scope, :mfa)"),
                {"s": session_id, "t": tenant_id, "c": uuid.UUID(client_id) if client_id else None,
                 "scope": scope, "mfa": mfa},
            )
        await security_event(conn, "crm.auth.login.succeeded", str(user["id"]),
                             {"userId": str(user["id"]), "sessionId": str(session_id), "method": method,
                              "clientId": client_id, "mfa": mfa},
                             tenant_id=str(tenant_id), actor_id=str(user["id"]))
        access, perms = await self.access_token(conn, user, session_id, scope=scope, client_id=client_id)
        return Tokens(access, refresh, self.settings.access_token_ttl_seconds, str(tenant_id),
                      scope=" ".join(perms) if client_id else "", session_id=str(session_id))

    async def access_token(self, conn: AsyncConnection, user: RowMapping, session_id: uuid.UUID, *,
                           scope: list[str] | None = None, client_id: str = "") -> tuple[str, list[str]]:
        """A signed access token with the user's effective permissions (narrowed to an OAuth
        grant's scope) and rate-limit tier, and the permissions it carries."""
        plan = (await conn.execute(text("SELECT plan FROM auth.tenants WHERE id = :t"),
                                   {"t": user["tenant_id"]})).scalar_one()
        perms = await identity.effective_permissions(conn, list(user["roles"]))
        if scope is not None:
            perms = narrow(perms, scope)
        extra: dict[str, Any] = {"roles": list(user["roles"]), "email": user["email"],
                                 "team": await identity.teammates(conn, str(user["id"]))}
        if client_id:
            extra["cid"] = client_id
        token = self.sign(sub=str(user["id"]), tenant_id=str(user["tenant_id"]), session_id=str(session_id),
                          perms=perms, tier=identity.tier_for(plan), **extra)
        return token, perms

    def sign(self, *, sub: str, tenant_id: str, session_id: str, perms: list[str], tier: str, **extra: Any) -> str:
        precise = time.time()
        now = int(precise)
        claims = {
            "iss": self.settings.token_issuer,
            "aud": self.settings.token_audience,
            "sub": sub,
            "tid": tenant_id,
            "sid": session_id,
            "perms": perms,
            "tier": tier,
            "iat": now,
            "iat_ms": int(precise * 1000),  # see services.kernel.authn.issued_at
            "nbf": now,
            "exp": now + self.settings.access_token_ttl_seconds,
            "jti": opaque.b64(secrets.token_bytes(12)),
            **extra,
        }
        return jwt.encode(claims, self.key.private, algorithm="EdDSA", headers={"kid": self.key.kid})

    # --- refresh and logout ----------------------------------------------------------------
    async def refresh(self, refresh_token: str, *, client_id: str | None = None) -> Tokens:
        """Rotate a refresh token. `client_id`: the authenticated OAuth client at the token
        endpoint, or None for the first-party endpoint (which refuses client-bound sessions)."""
        tenant_id, session_id, presented = opaque.parse_or(refresh_token, invalid_grant())
        new_refresh, new_hash = opaque.issue(tenant_id, session_id)
        reused: RowMapping | None = None
        with acting_as(str(tenant_id)):
            async with self.db.transaction() as conn:
                session = (
                    await conn.execute(text("SELECT * FROM auth.sessions WHERE id = :id FOR UPDATE"), {"id": session_id})
                ).mappings().first()
                if session is None:
                    raise invalid_grant()
                if not hmac.compare_digest(bytes(session["refresh_hash"]), presented):
                    used = (await conn.execute(
                        text("SELECT 1 FROM auth.refresh_tokens_used WHERE session_id = :s AND token_hash = :h"),
                        {"s": session_id, "h": presented})).first()
                    if used is not None and session["revoked_at"] is None:
                        # A rotated-out token came back: one of its holders is not the owner.
                        # End the family, both copies stop working.
                        reused = session
                        await self.end_session(conn, str(session_id), str(session["user_id"]), "refresh_token_reuse")
                        await security_event(conn, "crm.auth.refresh.reused", str(session_id),
                                             {"sessionId": str(session_id), "userId": str(session["user_id"])},
                                             tenant_id=str(tenant_id), actor_id=str(session["user_id"]))
                else:
                    if session["revoked_at"] is not None or session["expires_at"].timestamp() < time.time():
                        raise invalid_grant()
                    details = (await conn.execute(text("SELECT * FROM auth.session_details WHERE session_id = :s"),
                                                  {"s": session_id})).mappings().first()
                    bound = str(details["client_id"]) if details and details["client_id"] else ""
                    if (client_id or "") != bound:
                        raise invalid_grant("the refresh token was issued to another client")
                    user = (await conn.execute(text("SELECT * FROM auth.users WHERE id = :id"),
                                               {"id": session["user_id"]})).mappings().one()
                    if not user["active"]:
                        raise invalid_grant()
                    await require_active_tenant(conn, tenant_id)
                    await conn.execute(
                        text("INSERT INTO auth.refresh_tokens_used (session_id, tenant_id, token_hash) "
                             "VALUES (:s, :t, :h) ON CONFLICT DO NOTHING"),
                        {"s": session_id, "t": tenant_id, "h": presented},
                    )
                    # The newest ones are enough to catch a stolen copy: older ones are useless
                    # to a thief anyway (not current), and a long session would pile them up.
                    await conn.execute(
                        text("DELETE FROM auth.refresh_tokens_used WHERE session_id = :s AND token_hash NOT IN "
                             "(SELECT token_hash FROM auth.refresh_tokens_used WHERE session_id = :s "
                             "ORDER BY used_at DESC LIMIT :keep)"),
                        {"s": session_id, "keep": USED_REFRESH_KEPT},
                    )
                    await conn.execute(
                        text("UPDATE auth.sessions SET refresh_hash = :h, generation = generation + 1, "
                             "last_used_at = now() WHERE id = :id"),
                        {"h": new_hash, "id": session_id},
                    )
                    scope = list(details["scope"]) if details and details["scope"] is not None else None
                    access, perms = await self.access_token(conn, user, session_id, scope=scope, client_id=bound)
                    return Tokens(access, new_refresh, self.settings.access_token_ttl_seconds, str(tenant_id),
                                  scope=" ".join(perms) if bound else "", session_id=str(session_id))
        if reused is not None:
            self._revoked_here(session_id=str(session_id))
        raise invalid_grant()

    async def logout(self, refresh_token: str) -> str:
        """Revoke the caller's session (or the refresh token's, which must be the caller's own)."""
        ctx = context.current()
        session_id = ctx.session_id
        if refresh_token:
            parsed = opaque.parse(refresh_token)
            if parsed is None or str(parsed[0]) != ctx.tenant_id or str(parsed[1]) != ctx.session_id:
                raise InvalidArgument(
                    "the refresh token belongs to another session",
                    violations=[FieldViolation("refreshToken", "does not belong to this session", "SESSION_MISMATCH")],
                )
        async with self.db.transaction() as conn:
            await self.end_session(conn, session_id, ctx.user_id, "logout")
        self._revoked_here(session_id=session_id)
        return session_id

    async def userinfo(self) -> tuple[RowMapping, list[str], bool]:
        ctx = context.current()
        async with self.db.transaction() as conn:
            user = (
                await conn.execute(text("SELECT * FROM auth.users WHERE id = :id"), {"id": _uuid_or_none(ctx.user_id)})
            ).mappings().first()
            if user is None:
                raise NotFound("no user behind this token (client credentials)" if ctx.client_id else "user not found")
            perms = await identity.effective_permissions(conn, list(user["roles"]))
            mfa = (await conn.execute(text("SELECT enabled_at FROM auth.mfa WHERE user_id = :u"),
                                      {"u": user["id"]})).scalar_one_or_none()
        return user, perms, mfa is not None

    # --- sessions --------------------------------------------------------------------------
    _SESSION_SQL = (
        "SELECT s.*, d.client_id, coalesce(d.mfa, false) AS mfa FROM auth.sessions s "
        "LEFT JOIN auth.session_details d ON d.session_id = s.id "
    )

    async def list_sessions(self) -> list[RowMapping]:
        ctx = context.current()
        async with self.db.transaction() as conn:
            rows = (await conn.execute(
                text(self._SESSION_SQL + "WHERE s.user_id = :u AND s.revoked_at IS NULL AND s.expires_at > now() "
                     "ORDER BY s.created_at DESC"),
                {"u": _uuid_or_none(ctx.user_id)})).mappings().all()
        return list(rows)

    async def current_session(self) -> RowMapping:
        ctx = context.current()
        async with self.db.transaction() as conn:
            row = (await conn.execute(text(self._SESSION_SQL + "WHERE s.id = :id AND s.user_id = :u"),
                                      {"id": _uuid_or_none(ctx.session_id), "u": _uuid_or_none(ctx.user_id)})
                   ).mappings().first()
        if row is None:
            raise NotFound("the token has no session (client credentials)", reason="NO_SESSION")
        return row

    async def delete_session(self, session_id: str) -> None:
        ctx = context.current()
        sid = _uuid_or_none(session_id)
        async with self.db.transaction() as conn:
            row = (await conn.execute(
                text("SELECT id FROM auth.sessions WHERE id = :id AND user_id = :u AND revoked_at IS NULL "
                     "AND expires_at > now()"),
                {"id": sid, "u": _uuid_or_none(ctx.user_id)})).first()
            if row is None:
                raise NotFound("session not found")  # or another user's: same answer
            await self.end_session(conn, session_id.lower(), ctx.user_id, "session_terminated")
        self._revoked_here(session_id=session_id.lower())

    async def validate(self, token: str) -> dict[str, Any]:
        """Whether a token of the caller's tenant works now, and what it says."""
        ctx = context.current()
        token = token.strip()
        if not token:
            raise InvalidArgument("token is required", violations=[FieldViolation("token", "is required", "REQUIRED")])
        if token.count(".") == 2:
            return await self._validate_access(token, ctx.tenant_id)
        parsed = opaque.parse(token)
        if parsed is None or str(parsed[0]) != ctx.tenant_id:
            return {"active": False}
        _, session_id, presented = parsed
        async with self.db.transaction() as conn:
            row = (await conn.execute(
                text(self._SESSION_SQL + "WHERE s.id = :id AND s.revoked_at IS NULL AND s.expires_at > now()"),
                {"id": session_id})).mappings().first()
        if row is None or not hmac.compare_digest(bytes(row["refresh_hash"]), presented):
            return {"active": False}
        return {"active": True, "token_type": "refresh_token", "session_id": str(row["id"]),
                "user_id": str(row["user_id"]), "tenant_id": str(row["tenant_id"]),
                "client_id": str(row["client_id"] or ""), "expires_at": row["expires_at"]}

    async def _validate_access(self, token: str, tenant_id: str) -> dict[str, Any]:
        try:
            claims = self.verifier.claims(token)
        except DomainError:
            return {"active": False}
        if claims["tid"] != tenant_id:
            return {"active": False}  # another tenant's token: nothing to tell
        async with self.db.transaction() as conn:
            # The database is the authority: a session ended elsewhere is ended here too.
            session = (await conn.execute(text("SELECT revoked_at, expires_at FROM auth.sessions WHERE id = :id"),
                                          {"id": _uuid_or_none(claims["sid"])})).mappings().first()
        if session is not None and session["revoked_at"] is not None:
            return {"active": False}
        return {"active": True, "token_type": "access_token", "session_id": claims["sid"], "user_id": claims["sub"],
                "tenant_id": claims["tid"], "client_id": str(claims.get("cid", "")),
                "permissions": list(claims.get("perms", [])), "roles": list(claims.get("roles", [])),
                "expires_at": claims["exp"], "issued_at": claims["iat"]}

    def require_first_party(self) -> None:
        """Credential changes and grants need the user's own session, not a delegated token."""
        ctx = context.current()
        if not ctx.authenticated:
            raise Unauthenticated("authentication required")
        if ctx.client_id:
            raise PermissionDenied("this needs a first-party session, not an OAuth client's token",
                                   reason="FIRST_PARTY_SESSION_REQUIRED")


async def require_active_tenant(conn: AsyncConnection, tenant_id: uuid.UUID | str) -> None:
    """No new tokens for a suspended or deleted tenant, whatever the way in (password, second
    factor, OAuth grant, refresh)."""
    status = (await conn.execute(text("SELECT status FROM auth.tenants WHERE id = :t"),
                                 {"t": uuid.UUID(str(tenant_id))})).scalar_one_or_none()
    if status != "active":
        raise PermissionDenied(f"this tenant is {status or 'gone'}", reason="TENANT_INACTIVE")


def narrow(user_perms: list[str], scope: list[str]) -> list[str]:
    """Permissions a user delegates to a client: what both hold, wildcards understood."""
    user = context.RequestContext(permissions=frozenset(user_perms))
    granted = context.RequestContext(permissions=frozenset(scope))
    return sorted({p for p in scope if user.can(p)} | {p for p in user_perms if granted.can(p)})


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        return None
