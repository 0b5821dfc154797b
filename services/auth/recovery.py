"""Tokens sent by mail: password reset, email verification, invitations.

A mailed token is single-use, expires, and is stored hashed (opaque.py). A reset request
answers the same, in about the same time, whether or not the address has an account: the
request only checks the address's form and hands the rest to a background task. A confirmed
reset (or invitation) sets the password and ends every session of the user.

Invitations: the users service creates users without a password and emits
`crm.auth.user.invited {userId, tenantId, email}`; a durable consumer (services/kernel/
consumers.py: once per event id) mails them a link to choose their password
(`POST /auth/password/confirm`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.auth import identity, opaque, passwords, throttle
from services.auth.audit import security_event
from services.auth.domain import EMAIL_RE, AuthDomain, acting_as, normalize_email
from services.auth.mail import email_verification, invitation, password_reset
from services.kernel import context
from services.kernel.errors import FieldViolation, InvalidArgument, validation

log = logging.getLogger(__name__)

RESET_TTL = 3600
INVITE_TTL = 7 * 24 * 3600
INVITED = "crm.auth.user.invited"
# Reset mails per address: a few an hour, so the form cannot be used to flood a mailbox.
RESET_MAILS = throttle.Rule(free=3, base=300.0, cap=3600.0, window=3600.0)


def _bad_token() -> InvalidArgument:
    return InvalidArgument("the token is invalid, used or expired", reason="INVALID_TOKEN",
                           violations=[FieldViolation("token", "is invalid, used or expired", "INVALID_TOKEN")])


class RecoveryDomain:
    def __init__(self, core: AuthDomain) -> None:
        self.core = core
        self.db = core.db
        self._tasks: set[asyncio.Task[None]] = set()

    # --- password reset --------------------------------------------------------------------
    async def request_reset(self, email: str, tenant_id: str) -> None:
        email = normalize_email(email)
        if not EMAIL_RE.match(email) or len(email) > 254:
            raise validation([FieldViolation("email", "must be a valid email address")])
        # Everything that depends on the account happens off the request path.
        task = asyncio.create_task(self._reset(email, tenant_id.strip().lower()), name="password-reset")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(list(self._tasks), timeout=10)

    async def _reset(self, email: str, only_tenant: str) -> None:
        try:
            try:
                await self.core.throttle.attempt([(f"reset:{email}", RESET_MAILS)])
            except throttle.Throttled:
                log.info("password reset mails to one address throttled")
                return
            async with self.db.transaction(tenant_id="") as conn:
                tenants = [str(t) for t in (await conn.execute(
                    text("SELECT tenant_id FROM auth.login_index WHERE email = :e"), {"e": email})).scalars()]
            if only_tenant:
                tenants = [t for t in tenants if t == only_tenant]
            sent = 0
            for tenant in tenants:
                with acting_as(tenant):
                    async with self.db.transaction() as conn:
                        user = (await conn.execute(text("SELECT * FROM auth.users WHERE email = :e AND active"),
                                                   {"e": email})).mappings().first()
                        if user is None:
                            continue
                        tenant_name = (await conn.execute(text("SELECT name FROM auth.tenants WHERE id = :t"),
                                                          {"t": user["tenant_id"]})).scalar_one()
                        token = await self.core.user_token(conn, user, "password_reset", RESET_TTL)
                        await security_event(conn, "crm.auth.password.reset_requested", str(user["id"]),
                                             {"userId": str(user["id"]), "email": email}, tenant_id=tenant,
                                             actor_id=str(user["id"]))
                    await self.core.postman.send(password_reset(self.core.settings.public_url, email, token,
                                                                tenant_name))
                    sent += 1
            if not sent:
                async with self.db.transaction(tenant_id="") as conn:
                    await security_event(conn, "crm.auth.password.reset_requested", email,
                                         {"userId": "", "email": email, "unknownAccount": True}, tenant_id="")
        except Exception:
            log.warning("password reset for one address failed", exc_info=True)

    async def confirm_reset(self, token: str, password: str) -> tuple[str, str]:
        """Set the password; answers the account's (email, tenant id)."""
        weak = passwords.weakness(password)
        problems = [FieldViolation("password", f"password {weak}", "WEAK_PASSWORD")] if weak else []
        if not token.strip():
            problems.append(FieldViolation("token", "is required", "REQUIRED"))
        if problems:
            raise validation(problems)
        parsed = opaque.parse(token)
        if parsed is None:
            raise _bad_token()
        tenant_id, token_id, presented = parsed
        password_hash = await passwords.hash_password(password)
        with acting_as(str(tenant_id)):
            async with self.db.transaction() as conn:
                row = await self._spend(conn, token_id, presented, ("password_reset", "invite"))
                user = (await conn.execute(text("SELECT * FROM auth.users WHERE id = :u FOR UPDATE"),
                                           {"u": row["user_id"]})).mappings().one()
                if not user["active"]:
                    raise _bad_token()
                with acting_as(str(tenant_id), str(user["id"])):
                    # Whoever received the mail controls the address: it is verified now.
                    await conn.execute(
                        text("UPDATE auth.users SET password_hash = :h, email_verified = true, updated_at = now() "
                             "WHERE id = :u"), {"h": password_hash, "u": user["id"]})
                    await conn.execute(
                        text("UPDATE auth.user_tokens SET used_at = now() WHERE user_id = :u AND used_at IS NULL "
                             "AND purpose IN ('password_reset', 'invite')"), {"u": user["id"]})
                    await identity.revoke_user_tokens(conn, self.core.settings, user_id=str(user["id"]),
                                                      reason="password_reset", end_sessions=True)
                    await security_event(conn, "crm.auth.password.reset_completed", str(user["id"]),
                                         {"userId": str(user["id"]), "via": row["purpose"]}, tenant_id=str(tenant_id))
        self.core._revoked_here(user_id=str(user["id"]))
        return user["email"], str(tenant_id)

    async def _spend(self, conn: Any, token_id: uuid.UUID, presented: bytes, purposes: tuple[str, ...]) -> RowMapping:
        row = (await conn.execute(
            text("SELECT * FROM auth.user_tokens WHERE id = :id AND purpose = ANY(:p) AND used_at IS NULL "
                 "AND expires_at > now() FOR UPDATE"), {"id": token_id, "p": list(purposes)})).mappings().first()
        if row is None or not hmac.compare_digest(bytes(row["token_hash"]), presented):
            raise _bad_token()
        await conn.execute(text("UPDATE auth.user_tokens SET used_at = now() WHERE id = :id"), {"id": token_id})
        return row

    # --- email verification ----------------------------------------------------------------
    async def verify_email(self, token: str) -> str:
        if not token.strip():
            raise validation([FieldViolation("token", "is required", "REQUIRED")])
        parsed = opaque.parse(token)
        if parsed is None:
            raise _bad_token()
        tenant_id, token_id, presented = parsed
        with acting_as(str(tenant_id)):
            async with self.db.transaction() as conn:
                row = await self._spend(conn, token_id, presented, ("email_verify",))
                email = (await conn.execute(
                    text("UPDATE auth.users SET email_verified = true, updated_at = now() WHERE id = :u "
                         "RETURNING email"), {"u": row["user_id"]})).scalar_one()
                await security_event(conn, "crm.auth.email.verified", str(row["user_id"]),
                                     {"userId": str(row["user_id"]), "email": email}, tenant_id=str(tenant_id),
                                     actor_id=str(row["user_id"]))
        return str(email)

    async def resend_verification(self) -> bool:
        self.core.require_first_party()
        ctx = context.current()
        async with self.db.transaction() as conn:
            user = (await conn.execute(text("SELECT * FROM auth.users WHERE id = :u"),
                                       {"u": uuid.UUID(ctx.user_id)})).mappings().one()
            if user["email_verified"]:
                return False
            token = await self.core.user_token(conn, user, "email_verify", 3 * 24 * 3600)
        self.core.postman.later(email_verification(self.core.settings.public_url, user["email"], token))
        return True

    # --- invitations (durable consumer of crm.auth.user.invited) ---------------------------
    async def on_user_invited(self, conn: AsyncConnection, event: dict[str, Any]) -> None:
        """Mail an invited user (created without a password) a link to choose one.

        Runs once per event in the consumer's transaction, scoped to the event's tenant; a mail
        server that refuses makes it fail and come again later, with nothing kept meanwhile.
        """
        data = event["data"]
        try:
            user_id = uuid.UUID(str(data["userId"]))
        except (KeyError, ValueError):
            log.warning("invitation event %s without a valid userId: ignored", event.get("id"))
            return
        user = (await conn.execute(text("SELECT * FROM auth.users WHERE id = :u"), {"u": user_id})
                ).mappings().first()
        if user is None or not user["active"] or user["password_hash"] is not None:
            return  # gone, disabled, or already has a password: nothing to invite to
        if normalize_email(str(data.get("email", user["email"]))) != user["email"]:
            log.warning("invitation event %s names another address than the user's: ignored", event.get("id"))
            return
        token = await self.core.user_token(conn, user, "invite", INVITE_TTL, source_event=str(event["id"]))
        tenant_name = (await conn.execute(text("SELECT name FROM auth.tenants WHERE id = :t"),
                                          {"t": user["tenant_id"]})).scalar_one()
        await self.core.postman.send(invitation(self.core.settings.public_url, user["email"], token, tenant_name))
        await security_event(conn, "crm.auth.user.invitation_sent", str(user_id),
                             {"userId": str(user_id), "email": user["email"]}, tenant_id=str(user["tenant_id"]),
                             actor_id=str(event.get("actorid", "")))
