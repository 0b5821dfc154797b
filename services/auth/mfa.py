"""Multi-factor authentication: TOTP (RFC 6238) with ten single-use backup codes.

Enrolment is two steps (setup makes a pending secret, a correct code turns it on), so a user
never locks themself out with a secret their app did not take. The TOTP seed is sealed with the
service's data key (vault.py); backup codes are kept as keyed hashes, so they can be listed
(which positions remain) but never shown again. A code is accepted once (the step it belongs to
must be newer than the last accepted one) and wrong codes are throttled per user.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.auth import opaque, passwords, throttle, totp
from services.auth.audit import security_event
from services.auth.domain import AuthDomain, Tokens, acting_as
from services.kernel import context
from services.kernel.errors import FailedPrecondition, FieldViolation, Unauthenticated, validation

BACKUP_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without doubt
ISSUER = "CRM"


def new_backup_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalize_backup(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def _invalid_challenge() -> Unauthenticated:
    return Unauthenticated("the MFA token is invalid or expired; sign in again", reason="INVALID_MFA_TOKEN")


class MfaDomain:
    def __init__(self, core: AuthDomain) -> None:
        self.core = core
        self.db = core.db
        self.vault = core.vault

    def _sealing_context(self, user_id: object, tenant_id: object) -> str:
        return f"totp:{tenant_id}:{user_id}"

    def _backup_hash(self, user_id: object, code: str) -> bytes:
        return self.vault.mac(normalize_backup(code), f"backup:{user_id}")

    # --- enrolment -------------------------------------------------------------------------
    async def setup(self) -> tuple[str, str]:
        self.core.require_first_party()
        ctx = context.current()
        secret = totp.new_secret()
        async with self.db.transaction() as conn:
            user = await self._user(conn, ctx.user_id)
            row = await self._mfa(conn, user["id"], lock=True)
            if row is not None and row["enabled_at"] is not None:
                raise FailedPrecondition("MFA is already on; disable it first to enrol a new device",
                                         reason="MFA_ALREADY_ENABLED")
            sealed = self.vault.seal(secret, self._sealing_context(user["id"], user["tenant_id"]))
            await conn.execute(
                text("INSERT INTO auth.mfa (user_id, tenant_id, pending_secret_enc) VALUES (:u, :t, :s) "
                     "ON CONFLICT (user_id) DO UPDATE SET pending_secret_enc = :s, updated_at = now()"),
                {"u": user["id"], "t": user["tenant_id"], "s": sealed},
            )
        return totp.b32(secret), totp.otpauth_uri(secret, user["email"], ISSUER)

    async def enable(self, code: str) -> list[str]:
        """Confirm enrolment with a code from the app; answers the new backup codes."""
        self.core.require_first_party()
        ctx = context.current()
        self._require_code(code)
        keys = [(f"mfa:{ctx.user_id}", throttle.MFA_CODE)]
        await self.core.throttle.attempt(keys)
        async with self.db.transaction() as conn:
            user = await self._user(conn, ctx.user_id)
            row = await self._mfa(conn, user["id"], lock=True)
            if row is not None and row["enabled_at"] is not None:
                raise FailedPrecondition("MFA is already on", reason="MFA_ALREADY_ENABLED")
            if row is None or row["pending_secret_enc"] is None:
                raise FailedPrecondition("start with POST /auth/mfa/setup", reason="MFA_NOT_SET_UP")
            secret = self.vault.open(bytes(row["pending_secret_enc"]), self._sealing_context(user["id"], user["tenant_id"]))
            step = totp.match(secret, code, after_step=row["last_step"])
            if step is not None:
                await conn.execute(
                    text("UPDATE auth.mfa SET secret_enc = pending_secret_enc, pending_secret_enc = NULL, "
                         "enabled_at = now(), last_step = :step, updated_at = now() WHERE user_id = :u"),
                    {"step": step, "u": user["id"]},
                )
                codes = await self._new_backup_codes(conn, user["id"], user["tenant_id"])
                await security_event(conn, "crm.auth.mfa.enabled", str(user["id"]), {"userId": str(user["id"])},
                                     tenant_id=ctx.tenant_id)
        if step is None:
            raise validation([FieldViolation("code", "is not the current code of the authenticator app",
                                             "INVALID_CODE")], "wrong code")
        await self.core.throttle.succeeded(keys, forget=(keys[0][0],))
        return codes

    # --- login, second step ----------------------------------------------------------------
    async def complete_login(self, mfa_token: str, code: str) -> tuple[Tokens, int | None]:
        """Finish a login that answered mfaRequired; also answers the backup codes left when
        one was used."""
        self._require_code(code)
        parsed = opaque.parse(mfa_token)
        if parsed is None:
            raise _invalid_challenge()
        tenant_id, challenge_id, presented = parsed
        with acting_as(str(tenant_id)):
            async with self.db.transaction() as conn:
                challenge = await self._challenge(conn, challenge_id, presented, lock=False)
            user_id = str(challenge["user_id"])
            keys = [(f"mfa:{user_id}", throttle.MFA_CODE)]
            await self.core.throttle.attempt(keys)
            with acting_as(str(tenant_id), user_id):
                async with self.db.transaction() as conn:
                    challenge = await self._challenge(conn, challenge_id, presented, lock=True)
                    user = await self._user(conn, user_id)
                    row = await self._mfa(conn, user["id"], lock=True)
                    if row is None or row["enabled_at"] is None or not user["active"]:
                        raise _invalid_challenge()
                    factor = await self._check(conn, user, row, code)
                    if factor is not None:
                        await conn.execute(text("UPDATE auth.mfa_challenges SET used_at = now() WHERE id = :id"),
                                           {"id": challenge_id})
                        remaining = None
                        if factor == "backup":
                            remaining = await self._remaining(conn, user["id"])
                            await security_event(conn, "crm.auth.mfa.backup_code_used", user_id,
                                                 {"userId": user_id, "remaining": remaining},
                                                 tenant_id=str(tenant_id))
                        tokens = await self.core.open_session(user, method=f"password+{factor}", mfa=True, conn=conn)
                if factor is None:
                    await self._failed(str(tenant_id), user_id, "login")
                    raise Unauthenticated("wrong code", reason="INVALID_MFA_CODE")
        await self.core.throttle.succeeded(keys, forget=(keys[0][0],))
        return tokens, remaining

    async def _challenge(self, conn: AsyncConnection, challenge_id: uuid.UUID, presented: bytes, *,
                         lock: bool) -> RowMapping:
        row = (await conn.execute(
            text("SELECT * FROM auth.mfa_challenges WHERE id = :id AND used_at IS NULL AND expires_at > now()"
                 + (" FOR UPDATE" if lock else "")), {"id": challenge_id})).mappings().first()
        if row is None or not secrets.compare_digest(bytes(row["token_hash"]), presented):
            raise _invalid_challenge()
        return row

    # --- turning it off, backup codes ------------------------------------------------------
    async def disable(self, code: str, password: str) -> None:
        await self._reauthenticated_change(code, password, "disable")

    async def regenerate(self, code: str, password: str) -> list[str]:
        return await self._reauthenticated_change(code, password, "regenerate")

    async def _reauthenticated_change(self, code: str, password: str, action: str) -> list[str]:
        """Disable or regenerate, after a current code (or backup code) or the password."""
        self.core.require_first_party()
        ctx = context.current()
        if not code and not password:
            raise validation([FieldViolation("code", "give a current code, or the password", "REQUIRED"),
                              FieldViolation("password", "give the password, or a current code", "REQUIRED")])
        keys = [(f"mfa:{ctx.user_id}", throttle.MFA_CODE)]
        await self.core.throttle.attempt(keys)
        async with self.db.transaction() as conn:
            user = await self._user(conn, ctx.user_id)
            row = await self._mfa(conn, user["id"], lock=True)
            if row is None or row["enabled_at"] is None:
                raise FailedPrecondition("MFA is not on", reason="MFA_NOT_ENABLED")
        ok = bool(password) and await passwords.verify_password(user["password_hash"], password)
        codes: list[str] = []
        async with self.db.transaction() as conn:
            row = await self._mfa(conn, user["id"], lock=True)
            if row is None or row["enabled_at"] is None:
                raise FailedPrecondition("MFA is not on", reason="MFA_NOT_ENABLED")
            if not ok and code:
                ok = await self._check(conn, user, row, code) is not None
            if ok:
                if action == "disable":
                    await conn.execute(text("DELETE FROM auth.mfa_backup_codes WHERE user_id = :u"), {"u": user["id"]})
                    await conn.execute(text("DELETE FROM auth.mfa WHERE user_id = :u"), {"u": user["id"]})
                    await security_event(conn, "crm.auth.mfa.disabled", str(user["id"]), {"userId": str(user["id"])},
                                         tenant_id=ctx.tenant_id)
                else:
                    codes = await self._new_backup_codes(conn, user["id"], user["tenant_id"])
                    await security_event(conn, "crm.auth.mfa.backup_codes_regenerated", str(user["id"]),
                                         {"userId": str(user["id"])}, tenant_id=ctx.tenant_id)
        if not ok:
            await self._failed(ctx.tenant_id, ctx.user_id, action)
            field = "code" if code else "password"
            raise validation([FieldViolation(field, f"the {field} is not right", f"INVALID_{field.upper()}")],
                             f"wrong {field}")
        await self.core.throttle.succeeded(keys, forget=(keys[0][0],))
        return codes

    async def backup_codes(self) -> tuple[list[RowMapping], RowMapping | None]:
        ctx = context.current()
        self.core.require_first_party()
        async with self.db.transaction() as conn:
            row = await self._mfa(conn, uuid.UUID(ctx.user_id), lock=False)
            if row is None or row["enabled_at"] is None:
                raise FailedPrecondition("MFA is not on", reason="MFA_NOT_ENABLED")
            codes = (await conn.execute(
                text("SELECT position, used_at FROM auth.mfa_backup_codes WHERE user_id = :u ORDER BY position"),
                {"u": uuid.UUID(ctx.user_id)})).mappings().all()
        return list(codes), row

    # --- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _require_code(code: str) -> None:
        if not code.strip():
            raise validation([FieldViolation("code", "is required", "REQUIRED")])

    async def _user(self, conn: AsyncConnection, user_id: str | uuid.UUID) -> RowMapping:
        row = (await conn.execute(text("SELECT * FROM auth.users WHERE id = :id"),
                                  {"id": uuid.UUID(str(user_id))})).mappings().first()
        if row is None:
            raise Unauthenticated("no user behind this token")
        return row

    @staticmethod
    async def _mfa(conn: AsyncConnection, user_id: uuid.UUID, *, lock: bool) -> RowMapping | None:
        return (await conn.execute(text("SELECT * FROM auth.mfa WHERE user_id = :u" + (" FOR UPDATE" if lock else "")),
                                   {"u": user_id})).mappings().first()

    async def _check(self, conn: AsyncConnection, user: RowMapping, row: RowMapping, code: str) -> str | None:
        """Spend a TOTP code or a backup code: which one it was, or None when wrong."""
        digits = code.strip().replace(" ", "")
        if digits.isdigit():
            secret = self.vault.open(bytes(row["secret_enc"]), self._sealing_context(user["id"], user["tenant_id"]))
            step = totp.match(secret, digits, after_step=row["last_step"])
            if step is None:
                return None
            await conn.execute(text("UPDATE auth.mfa SET last_step = :s, updated_at = now() WHERE user_id = :u"),
                               {"s": step, "u": user["id"]})
            return "totp"
        spent = (await conn.execute(
            text("UPDATE auth.mfa_backup_codes SET used_at = now() WHERE user_id = :u AND code_hash = :h "
                 "AND used_at IS NULL RETURNING position"),
            {"u": user["id"], "h": self._backup_hash(user["id"], code)})).first()
        return "backup" if spent is not None else None

    async def _remaining(self, conn: AsyncConnection, user_id: uuid.UUID) -> int:
        return int((await conn.execute(
            text("SELECT count(*) FROM auth.mfa_backup_codes WHERE user_id = :u AND used_at IS NULL"),
            {"u": user_id})).scalar_one())

    async def _new_backup_codes(self, conn: AsyncConnection, user_id: uuid.UUID, tenant_id: uuid.UUID) -> list[str]:
        codes = [new_backup_code() for _ in range(BACKUP_CODES)]
        await conn.execute(text("DELETE FROM auth.mfa_backup_codes WHERE user_id = :u"), {"u": user_id})
        for position, code in enumerate(codes, start=1):
            await conn.execute(
                text("INSERT INTO auth.mfa_backup_codes (user_id, tenant_id, position, code_hash) "
                     "VALUES (:u, :t, :p, :h)"),
                {"u": user_id, "t": tenant_id, "p": position, "h": self._backup_hash(user_id, code)},
            )
        await conn.execute(text("UPDATE auth.mfa SET backup_generated_at = now() WHERE user_id = :u"), {"u": user_id})
        return codes

    async def _failed(self, tenant_id: str, user_id: str, during: str) -> None:
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            await security_event(conn, "crm.auth.mfa.failed", user_id, {"userId": user_id, "during": during},
                                 tenant_id=tenant_id, actor_id=user_id)
