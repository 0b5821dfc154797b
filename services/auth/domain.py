"""Sign-up, login, token refresh and logout. No gRPC here: plain values in and out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.auth import identity, passwords
from services.auth.keys import SigningKey
from services.auth.plans import DEFAULT_PLAN
from services.kernel import context
from services.kernel.db import Database
from services.kernel.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    validation,
)
from services.kernel.events import emit
from services.kernel.settings import Settings

SCHEMA = "auth"
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    tenant_id: str


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _refresh_token(tenant_id: uuid.UUID, session_id: uuid.UUID) -> tuple[str, bytes]:
    """An opaque token naming its tenant and session, and the hash stored for its secret."""
    secret = secrets.token_bytes(32)
    return _b64(tenant_id.bytes + session_id.bytes + secret), hashlib.sha256(secret).digest()


def _parse_refresh(token: str) -> tuple[uuid.UUID, uuid.UUID, bytes]:
    try:
        raw = _unb64(token.strip())
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 64:
        raise Unauthenticated("invalid refresh token", reason="INVALID_GRANT")
    return uuid.UUID(bytes=raw[:16]), uuid.UUID(bytes=raw[16:32]), hashlib.sha256(raw[32:]).digest()


class AuthDomain:
    def __init__(self, db: Database, settings: Settings, key: SigningKey) -> None:
        self.db = db
        self.settings = settings
        self.key = key

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
        return str(tenant_id), user

    # --- login -----------------------------------------------------------------------------
    async def login(self, *, email: str, password: str, tenant_id: str) -> Tokens:
        email = normalize_email(email)
        if not email or not password:
            raise InvalidArgument(
                "email and password are required",
                violations=[FieldViolation(f, "is required", "REQUIRED") for f, v in
                            (("email", email), ("password", password)) if not v],
            )
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
                    await conn.execute(
                        text("SELECT u.*, t.status AS tenant_status FROM auth.users u "
                             "JOIN auth.tenants t ON t.id = u.tenant_id WHERE u.email = :e"), {"e": email})
                ).mappings().first()
        ok = await passwords.verify_password(user["password_hash"] if user else None, password)
        if user is None or not ok or not user["active"]:
            # One answer for unknown address, wrong password and disabled user: no enumeration.
            if user is not None:
                await self._record(str(user["tenant_id"]), "crm.auth.login.failed", str(user["id"]),
                                   {"userId": str(user["id"]), "reason": "bad_credentials" if not ok else "inactive"})
            raise Unauthenticated("invalid email or password", reason="INVALID_CREDENTIALS")
        identity.require_active_tenant(user["tenant_status"])
        return await self._open_session(user)

    async def _record(self, tenant_id: str, event_type: str, subject: str, data: dict[str, Any]) -> None:
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            await emit(conn, SCHEMA, event_type, subject, data, tenant_id=tenant_id)

    async def _open_session(self, user: RowMapping) -> Tokens:
        ctx = context.current()
        tenant_id, session_id = user["tenant_id"], uuid.uuid4()
        refresh, refresh_hash = _refresh_token(tenant_id, session_id)
        async with self.db.transaction(tenant_id=str(tenant_id)) as conn:
            await conn.execute(
                text(
                    "INSERT INTO auth.sessions (id, tenant_id, user_id, refresh_hash, user_agent, client_ip, expires_at) "
                    "VALUES (:id, :t, :u, :h, :ua, :ip, now() + make_interval(secs => :ttl))"
                ),
                {"id": session_id, "t": tenant_id, "u": user["id"], "h": refresh_hash, "ua": ctx.user_agent[:300],
                 "ip": ctx.client_ip[:100], "ttl": self.settings.refresh_token_ttl_seconds},
            )
            await emit(conn, SCHEMA, "crm.auth.login.succeeded", str(user["id"]),
                       {"userId": str(user["id"]), "sessionId": str(session_id)}, tenant_id=str(tenant_id))
            access = await self._access_token(conn, user, session_id)
        return Tokens(access, refresh, self.settings.access_token_ttl_seconds, str(tenant_id))

    async def _access_token(self, conn: AsyncConnection, user: RowMapping, session_id: uuid.UUID) -> str:
        """A signed access token carrying the user's effective permissions and rate-limit tier."""
        plan = (await conn.execute(text("SELECT plan FROM auth.tenants WHERE id = :t"),
                                   {"t": user["tenant_id"]})).scalar_one()
        now = int(time.time())
        claims = {
            "iss": self.settings.token_issuer,
            "aud": self.settings.token_audience,
            "sub": str(user["id"]),
            "tid": str(user["tenant_id"]),
            "sid": str(session_id),
            "roles": list(user["roles"]),
            "perms": await identity.effective_permissions(conn, list(user["roles"])),
            "tier": identity.tier_for(plan),
            "email": user["email"],
            "iat": now,
            "nbf": now,
            "exp": now + self.settings.access_token_ttl_seconds,
            "jti": _b64(secrets.token_bytes(12)),
        }
        return jwt.encode(claims, self.key.private, algorithm="EdDSA", headers={"kid": self.key.kid})

    # --- refresh and logout ----------------------------------------------------------------
    async def refresh(self, refresh_token: str) -> Tokens:
        tenant_id, session_id, presented = _parse_refresh(refresh_token)
        new_refresh, new_hash = _refresh_token(tenant_id, session_id)
        async with self.db.transaction(tenant_id=str(tenant_id)) as conn:
            session = (
                await conn.execute(
                    text("SELECT * FROM auth.sessions WHERE id = :id FOR UPDATE"), {"id": session_id}
                )
            ).mappings().first()
            if (
                session is None
                or not hmac.compare_digest(bytes(session["refresh_hash"]), presented)
                or session["revoked_at"] is not None
                or session["expires_at"].timestamp() < time.time()
            ):
                raise Unauthenticated("invalid refresh token", reason="INVALID_GRANT")
            user = (
                await conn.execute(text("SELECT * FROM auth.users WHERE id = :id"), {"id": session["user_id"]})
            ).mappings().one()
            if not user["active"]:
                raise Unauthenticated("invalid refresh token", reason="INVALID_GRANT")
            status = (await conn.execute(text("SELECT status FROM auth.tenants WHERE id = :t"),
                                         {"t": tenant_id})).scalar_one()
            identity.require_active_tenant(status)
            await conn.execute(
                text(
                    "UPDATE auth.sessions SET refresh_hash = :h, generation = generation + 1, last_used_at = now() "
                    "WHERE id = :id"
                ),
                {"h": new_hash, "id": session_id},
            )
            access = await self._access_token(conn, user, session_id)
        return Tokens(access, new_refresh, self.settings.access_token_ttl_seconds, str(tenant_id))

    async def logout(self, refresh_token: str) -> str:
        """Revoke the caller's session (or the refresh token's, which must be the caller's own)."""
        ctx = context.current()
        session_id = ctx.session_id
        if refresh_token:
            tenant_id, sid, _ = _parse_refresh(refresh_token)
            if str(tenant_id) != ctx.tenant_id or str(sid) != ctx.session_id:
                raise InvalidArgument(
                    "the refresh token belongs to another session",
                    violations=[FieldViolation("refreshToken", "does not belong to this session", "SESSION_MISMATCH")],
                )
        async with self.db.transaction() as conn:
            await identity.revoke_session(conn, self.settings, session_id=session_id, user_id=ctx.user_id,
                                          reason="logout")
        return session_id

    async def userinfo(self) -> tuple[RowMapping, list[str]]:
        ctx = context.current()
        async with self.db.transaction() as conn:
            user = (
                await conn.execute(text("SELECT * FROM auth.users WHERE id = :id"), {"id": uuid.UUID(ctx.user_id)})
            ).mappings().first()
            if user is None:
                raise NotFound("user not found")
            perms = await identity.effective_permissions(conn, list(user["roles"]))
        return user, perms
