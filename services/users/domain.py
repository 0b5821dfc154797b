"""The users domain: accounts, roles, profiles, preferences, avatars and teams. No gRPC here.

Users are rows of the shared identity table auth.users. Three rules hold everywhere:
- nobody grants what they do not hold: assigning a role, creating or editing a custom role,
  and managing another user (editing, deactivating, deleting, changing roles) need every
  permission involved, checked against the caller's token *and* their current roles;
- nobody changes their own roles, and no change leaves a tenant without an active admin;
- every change that affects access ends the user's current tokens (identity.revoke_user_tokens)
  and is announced on the outbox for the audit trail.

Delete is a soft delete with erasure: the auth.users row stays (contacts, deals ... still name
the id as owner, and nothing they own is freed or reassigned), but the email address, names,
password, roles, profile, preferences, avatar and team memberships are erased, the address is
freed for a new account, sign-in ends and the user disappears from every answer (404).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, exists, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.auth import identity, passwords
from services.kernel import context, listing, preconditions
from services.kernel.authn import BUILTIN_ROLES, RevokedSessions
from services.kernel.db import Database
from services.kernel.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    validation,
)
from services.kernel.events import emit
from services.kernel.policy import permission_catalogue
from services.kernel.settings import Settings
from services.users import avatars, rules
from services.users.tables import (
    PROFILE_FIELDS,
    SCHEMA,
    login_index,
    profiles,
    team_members,
    teams,
)
from services.users.tables import avatars as avatar_table
from services.users.tables import roles as role_table
from services.users.tables import users as user_table

u, p, a, t, tm, r = user_table.c, profiles.c, avatar_table.c, teams.c, team_members.c, role_table.c

USER_LIST_SPEC = listing.ListSpec(
    fields={
        "email": listing.Field(u.email, "text", sortable=True),  # stored lower-cased
        "firstName": listing.Field(u.first_name, "text", sortable=True),
        "lastName": listing.Field(u.last_name, "text", sortable=True),
        "role": listing.Field(u.roles, "tags"),
        "active": listing.Field(u.active, "bool"),
        "createdAt": listing.Field(u.created_at, "time", sortable=True),
        "updatedAt": listing.Field(u.updated_at, "time"),
    },
    id_column=u.id,
    search_column=func.auth.search_text(u.first_name, u.last_name, u.email),
    default_sort="-createdAt",
)
_member_count = select(func.count()).where(tm.team_id == t.id).correlate(teams).scalar_subquery()
TEAM_LIST_SPEC = listing.ListSpec(
    fields={
        "name": listing.Field(t.name, "text", sortable=True),
        "leadId": listing.Field(t.lead_id, "uuid"),
        "createdAt": listing.Field(t.created_at, "time", sortable=True),
    },
    id_column=t.id,
    search_column=func.auth.search_text(t.name),
    default_sort="name",
)

_USER_SELECT: Select[Any] = (
    select(
        u.id, u.tenant_id, u.email, (u.password_hash.is_not(None)).label("has_password"), u.first_name,
        u.last_name, u.roles, u.active, u.email_verified, u.created_at, u.updated_at,
        func.coalesce(p.title, "").label("title"), a.etag.label("avatar_etag"),
    )
    .select_from(user_table.outerjoin(profiles, p.user_id == u.id).outerjoin(avatar_table, a.user_id == u.id))
    .where(p.deleted_at.is_(None))
)
_TEAM_SELECT: Select[Any] = select(*teams.c, _member_count.label("member_count"))


def parse_id(value: str, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        raise InvalidArgument(f"{name} must be a UUID", violations=[FieldViolation(name, "must be a UUID")]) from None


def avatar_url(user_id: Any) -> str:
    return f"/v1/users/{user_id}/avatar"


@dataclass(frozen=True)
class RoleView:
    """A role as the API shows it: built-in ones come from code, custom ones from auth.roles."""

    id: str
    key: str
    name: str
    description: str
    permissions: list[str]
    built_in: bool
    created_at: Any = None
    updated_at: Any = None


_BUILTIN_TEXT = {
    "admin": ("Administrator", "Every permission in the tenant, user and role management included."),
    "manager": ("Manager", "Full access to the CRM records and reports; reads users and teams."),
    "sales_rep": ("Sales representative", "Day-to-day sales work on the CRM records."),
    "read_only": ("Read only", "Reads the CRM records, users and teams."),
}


def builtin_role(key: str) -> RoleView:
    name, description = _BUILTIN_TEXT[key]
    return RoleView(key, key, name, description, sorted(BUILTIN_ROLES[key]), True)


def _custom_role(row: RowMapping) -> RoleView:
    return RoleView(str(row["id"]), row["key"], row["name"], row["description"], sorted(row["permissions"]), False,
                    row["created_at"], row["updated_at"])


TeamView = tuple[RowMapping, list[RowMapping]]


@dataclass
class UserView:
    row: RowMapping
    team_ids: list[str] = field(default_factory=list)


class UsersDomain:
    def __init__(self, db: Database, settings: Settings, revoked: RevokedSessions) -> None:
        self.db = db
        self.settings = settings
        self.revoked = revoked
        self.catalogue = permission_catalogue()

    # --- helpers -------------------------------------------------------------------------
    @staticmethod
    def _tenant() -> uuid.UUID:
        return uuid.UUID(context.tenant_id())

    async def _user(self, conn: AsyncConnection, user_id: uuid.UUID, *, lock: bool = False) -> RowMapping:
        stmt = _USER_SELECT.where(u.id == user_id, u.tenant_id == self._tenant())
        row = (await conn.execute(stmt.with_for_update(of=user_table) if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("user not found")
        return row

    async def _view(self, conn: AsyncConnection, row: RowMapping) -> UserView:
        ids = (await conn.execute(select(tm.team_id).where(tm.user_id == row["id"]).order_by(tm.team_id))).scalars()
        return UserView(row, [str(i) for i in ids])

    async def _missing(self, conn: AsyncConnection, wanted: Iterable[str]) -> list[str]:
        """Those of `wanted` the caller does not hold, both by their token and by their roles now
        (a token may predate a role change; the database may be ahead of a token)."""
        ctx = context.current()
        row = (
            await conn.execute(
                select(u.roles, u.active).where(u.id == uuid.UUID(ctx.user_id), u.tenant_id == self._tenant())
            )
        ).first() if ctx.user_id else None
        current = await identity.effective_permissions(conn, list(row.roles)) if row is not None and row.active else []
        wanted = list(wanted)
        return sorted(set(rules.not_held(ctx.permissions, wanted)) | set(rules.not_held(current, wanted)))

    async def _require_grantable(self, conn: AsyncConnection, wanted: Iterable[str], what: str) -> None:
        missing = await self._missing(conn, wanted)
        if missing:
            raise PermissionDenied(
                f"{what} would grant permissions you do not hold: {', '.join(missing)}",
                reason="PRIVILEGE_ESCALATION", metadata={"missing": ",".join(missing)[:500]},
            )

    async def _require_outranks(self, conn: AsyncConnection, target: RowMapping) -> None:
        """Managing another user needs every permission they have (a user-admin cannot take
        over an admin's account by changing its email, for example)."""
        if str(target["id"]) == context.current().user_id:
            return
        theirs = await identity.effective_permissions(conn, list(target["roles"]))
        if await self._missing(conn, theirs):
            raise PermissionDenied("this user has permissions you do not hold", reason="TARGET_OUTRANKS_CALLER")

    @staticmethod
    def _require_self_or(user_id: uuid.UUID, permission: str) -> None:
        ctx = context.current()
        if str(user_id) != ctx.user_id:
            ctx.require(permission)

    async def _require_other_admin(self, conn: AsyncConnection, target: RowMapping) -> None:
        """Refuse a change that would leave the tenant without an active admin."""
        if not target["active"] or rules.ADMIN_ROLE not in target["roles"]:
            return
        # One such change at a time per tenant: two admins removing each other at once must not
        # both see the other still active (row locks taken in two orders would deadlock instead).
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('crm-last-admin-' || :t))"),
                           {"t": str(self._tenant())})
        others = (
            await conn.execute(
                select(u.id).select_from(user_table.outerjoin(profiles, p.user_id == u.id))
                .where(u.tenant_id == self._tenant(), u.active.is_(True), u.roles.any(rules.ADMIN_ROLE),
                       p.deleted_at.is_(None), u.id != target["id"]).limit(1)
            )
        ).all()
        if not others:
            raise FailedPrecondition("the tenant's last active admin cannot lose admin access", reason="LAST_ADMIN")

    async def _end_tokens(self, conn: AsyncConnection, user_id: str, reason: str, *, end_sessions: bool) -> None:
        await identity.revoke_user_tokens(conn, self.settings, user_id=user_id, reason=reason,
                                          end_sessions=end_sessions)

    async def _team_changed(self, conn: AsyncConnection, team_id: uuid.UUID, also: Sequence[uuid.UUID] = ()) -> None:
        """Members' tokens carry their teammates (`team` claim, for `:team` record scopes): end
        the current ones so the next refresh carries the new circle."""
        members = list({m["user_id"] for m in await self._members(conn, team_id)} | set(also))
        rows = (await conn.execute(text("SELECT id, roles FROM auth.users WHERE id = ANY(:ids)"),
                                   {"ids": members})).all()
        for user_id, roles in rows:
            # Only a `:team`-scoped permission reads the claim; nobody else needs a new token.
            if any(p.endswith(":team") for p in await identity.effective_permissions(conn, list(roles))):
                await self._end_tokens(conn, str(user_id), "team_changed", end_sessions=False)

    def _revoke_here(self, user_id: str) -> None:
        """This process refuses the tokens at once; the others learn it from the event."""
        now = time.time()
        self.revoked.add_user(user_id, now, now + self.settings.access_token_ttl_seconds + 60)

    async def _resolve_role(self, conn: AsyncConnection, ref: str) -> RoleView | None:
        ref = ref.strip()
        if ref in rules.ASSIGNABLE_BUILTINS:
            return builtin_role(ref)
        try:
            where: ColumnElement[bool] = r.id == uuid.UUID(ref)
        except ValueError:
            if not rules.ROLE_KEY_RE.match(ref) or ref in BUILTIN_ROLES:
                return None
            where = r.key == ref
        row = (await conn.execute(select(role_table).where(where, r.tenant_id == self._tenant()))).mappings().first()
        return _custom_role(row) if row else None

    # --- users ---------------------------------------------------------------------------
    async def create_user(self, *, email: str, password: str, first_name: str, last_name: str,
                          roles: Sequence[str]) -> UserView:
        clean, problems = rules.check_user({"email": email, "first_name": first_name, "last_name": last_name})
        problems += rules.check_password(password)
        keys, role_problems = rules.check_role_keys(roles)
        problems += role_problems
        if problems:
            raise validation(problems)
        ctx = context.current()
        if keys:
            ctx.require("users:admin")  # handing out roles is role management
        keys = keys or list(rules.DEFAULT_ROLES)
        password_hash = await passwords.hash_password(password) if password else None
        user_id = uuid.uuid4()
        async with self.db.transaction() as conn:
            wanted: set[str] = set()
            for i, key in enumerate(keys):
                role = await self._resolve_role(conn, key)
                if role is None or role.key != key:
                    raise validation([FieldViolation(f"roles[{i}]", f"no role with key {key!r}", "UNKNOWN_ROLE")])
                wanted.update(role.permissions)
            await self._require_grantable(conn, wanted, "these roles")
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(user_table).values(
                        id=user_id, tenant_id=self._tenant(), email=clean["email"], password_hash=password_hash,
                        first_name=clean["first_name"], last_name=clean["last_name"], roles=keys))
            except IntegrityError:
                raise AlreadyExists("a user with this email exists", reason="EMAIL_TAKEN",
                                    violations=[FieldViolation("email", "is taken", "EMAIL_TAKEN")]) from None
            await conn.execute(insert(login_index).values(email=clean["email"], tenant_id=self._tenant(), user_id=user_id))
            invited = password_hash is None
            await emit(conn, SCHEMA, "crm.users.user.created", str(user_id),
                       {"userId": str(user_id), "email": clean["email"], "roles": keys, "invited": invited})
            if invited:
                # The auth service mails the set-password link; the users service sends no mail.
                await emit(conn, SCHEMA, "crm.auth.user.invited", str(user_id),
                           {"userId": str(user_id), "tenantId": ctx.tenant_id, "email": clean["email"]})
            return await self._view(conn, await self._user(conn, user_id))

    async def get_user(self, user_id: str) -> UserView:
        async with self.db.transaction() as conn:
            return await self._view(conn, await self._user(conn, parse_id(user_id)))

    async def update_user(self, user_id: str, values: Mapping[str, Any], mask: set[str] | None,
                          roles: Sequence[str]) -> UserView:
        key = parse_id(user_id)
        writable = {"first_name", "last_name", "email"}
        if mask is not None:
            unknown = mask - writable - {"roles"}
            if unknown:
                raise InvalidArgument("unknown field in updateMask", violations=[
                    FieldViolation("updateMask", f"not a writable field: {n}") for n in sorted(unknown)])
            values = {k: v for k, v in values.items() if k in mask}
        elif not values.get("email"):
            values = {k: v for k, v in values.items() if k != "email"}  # a full PUT without an address keeps it
        clean, problems = rules.check_user({k: v for k, v in values.items() if k in writable})
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            before = await self._user(conn, key, lock=True)
            preconditions.require_current(before["updated_at"])
            if (roles or (mask and "roles" in mask)) and sorted(set(roles)) != sorted(before["roles"]):
                raise InvalidArgument(
                    "roles change only through POST /v1/users/{id}/roles and DELETE /v1/users/{id}/roles/{roleId}",
                    reason="READ_ONLY_FIELD", violations=[FieldViolation("roles", "cannot be changed here", "READ_ONLY_FIELD")])
            await self._require_outranks(conn, before)
            changes = {k: {"from": before[k], "to": v} for k, v in clean.items() if before[k] != v}
            if changes:
                extra: dict[str, Any] = {}
                if "email" in changes:
                    extra["email_verified"] = False
                try:
                    async with conn.begin_nested():
                        await conn.execute(update(user_table).where(u.id == key)
                                           .values(**clean, **extra, updated_at=text("now()")))
                        if "email" in changes:
                            # The login index follows the address: sign-in uses the new one only.
                            await conn.execute(update(login_index).where(login_index.c.user_id == key)
                                               .values(email=clean["email"]))
                except IntegrityError:
                    raise AlreadyExists("a user with this email exists", reason="EMAIL_TAKEN",
                                        violations=[FieldViolation("email", "is taken", "EMAIL_TAKEN")]) from None
                camel = {"first_name": "firstName", "last_name": "lastName", "email": "email"}
                await emit(conn, SCHEMA, "crm.users.user.updated", str(key),
                           {"userId": str(key), "changes": {camel[k]: v for k, v in changes.items()}})
            return await self._view(conn, await self._user(conn, key))

    async def delete_user(self, user_id: str) -> None:
        key = parse_id(user_id)
        async with self.db.transaction() as conn:
            target = await self._user(conn, key, lock=True)
            preconditions.require_current(target["updated_at"])
            await self._require_outranks(conn, target)
            await self._require_other_admin(conn, target)
            await conn.execute(
                update(user_table).where(u.id == key).values(
                    email=f"deleted-{key}@deleted.invalid", first_name="Deleted user", last_name="",
                    password_hash=None, roles=[], active=False, email_verified=False, updated_at=text("now()")))
            await conn.execute(delete(login_index).where(login_index.c.user_id == key))
            await conn.execute(delete(avatar_table).where(a.user_id == key))
            await conn.execute(delete(team_members).where(tm.user_id == key))
            await conn.execute(update(teams).where(t.lead_id == key).values(lead_id=None, updated_at=text("now()")))
            erased = {name: "" for name in PROFILE_FIELDS}
            marker: dict[str, Any] = {"deleted_at": text("now()"), "deleted_by": _caller_uuid(), "preferences": {},
                      "updated_at": text("now()"), **erased}
            await conn.execute(pg_insert(profiles).values(user_id=key, tenant_id=self._tenant(), **marker)
                               .on_conflict_do_update(index_elements=[p.user_id], set_=marker))
            await self._end_tokens(conn, str(key), "deleted", end_sessions=True)
            await emit(conn, SCHEMA, "crm.users.user.deleted", str(key),
                       {"userId": str(key), "email": target["email"], "roles": list(target["roles"])})
        self._revoke_here(str(key))

    async def list_users(self, params: listing.ListParams, team: str) -> tuple[listing.Page, dict[str, list[str]]]:
        where: list[ColumnElement[bool]] = [u.tenant_id == self._tenant()]
        if team:
            team_key = parse_id(team, "team")
            where.append(exists().where(tm.user_id == u.id, tm.team_id == team_key))
        async with self.db.transaction() as conn:
            page = await listing.fetch_page(conn, _USER_SELECT, USER_LIST_SPEC, params, where)
            ids = [row.id for row in page.rows]
            memberships: dict[str, list[str]] = {}
            if ids:
                found = await conn.execute(select(tm.user_id, tm.team_id).where(tm.user_id.in_(ids)).order_by(tm.team_id))
                for user, team_id in found:
                    memberships.setdefault(str(user), []).append(str(team_id))
        return page, memberships

    async def set_active(self, user_id: str, active: bool, reason: str = "") -> UserView:
        key = parse_id(user_id)
        if len(reason) > 500:
            raise validation([FieldViolation("reason", "must be at most 500 characters", "TOO_LONG")])
        async with self.db.transaction() as conn:
            target = await self._user(conn, key, lock=True)
            await self._require_outranks(conn, target)
            if target["active"] != active:
                if not active:
                    await self._require_other_admin(conn, target)
                await conn.execute(update(user_table).where(u.id == key).values(active=active, updated_at=text("now()")))
                if not active:
                    # Access tokens are refused everywhere, and refresh tokens die with the sessions.
                    await self._end_tokens(conn, str(key), "deactivated", end_sessions=True)
                event = "activated" if active else "deactivated"
                await emit(conn, SCHEMA, f"crm.users.user.{event}", str(key), {"userId": str(key), "reason": reason})
            view = await self._view(conn, await self._user(conn, key))
        if not active:
            self._revoke_here(str(key))
        return view

    # --- role assignment -----------------------------------------------------------------
    async def assign_role(self, user_id: str, role_ref: str) -> UserView:
        key = parse_id(user_id)
        if not role_ref.strip():
            raise validation([FieldViolation("roleId", "is required", "REQUIRED")])
        if str(key) == context.current().user_id:
            raise PermissionDenied("you cannot change your own roles", reason="SELF_ROLE_CHANGE")
        async with self.db.transaction() as conn:
            target = await self._user(conn, key, lock=True)
            role = await self._resolve_role(conn, role_ref)
            if role is None:
                raise validation([FieldViolation("roleId", f"no role {role_ref!r}", "UNKNOWN_ROLE")])
            await self._require_outranks(conn, target)
            await self._require_grantable(conn, role.permissions, f"role {role.key!r}")
            if role.key not in target["roles"]:
                if len(target["roles"]) >= rules.MAX_ROLES_PER_USER:
                    raise validation([FieldViolation("roleId", f"a user holds at most {rules.MAX_ROLES_PER_USER} roles", "TOO_MANY")])
                await conn.execute(update(user_table).where(u.id == key)
                                   .values(roles=func.array_append(u.roles, role.key), updated_at=text("now()")))
                # Current tokens stop; the next refresh carries the new permissions.
                await self._end_tokens(conn, str(key), "roles_changed", end_sessions=False)
                await emit(conn, SCHEMA, "crm.users.user.role_assigned", str(key),
                           {"userId": str(key), "role": role.key, "permissions": role.permissions})
                changed = True
            else:
                changed = False
            view = await self._view(conn, await self._user(conn, key))
        if changed:
            self._revoke_here(str(key))
        return view

    async def remove_role(self, user_id: str, role_ref: str) -> UserView:
        key = parse_id(user_id)
        if str(key) == context.current().user_id:
            raise PermissionDenied("you cannot change your own roles", reason="SELF_ROLE_CHANGE")
        async with self.db.transaction() as conn:
            target = await self._user(conn, key, lock=True)
            role = await self._resolve_role(conn, role_ref)
            role_key = role.key if role else role_ref.strip()
            if role_key not in target["roles"]:
                raise NotFound("the user does not hold this role", reason="ROLE_NOT_HELD")
            await self._require_outranks(conn, target)
            if role_key == rules.ADMIN_ROLE:
                await self._require_other_admin(conn, target)
            await conn.execute(update(user_table).where(u.id == key)
                               .values(roles=func.array_remove(u.roles, role_key), updated_at=text("now()")))
            await self._end_tokens(conn, str(key), "roles_changed", end_sessions=False)
            await emit(conn, SCHEMA, "crm.users.user.role_removed", str(key), {"userId": str(key), "role": role_key})
            view = await self._view(conn, await self._user(conn, key))
        self._revoke_here(str(key))
        return view

    async def user_roles(self, user_id: str) -> list[RoleView]:
        key = parse_id(user_id)
        self._require_self_or(key, "users:read")
        async with self.db.transaction() as conn:
            target = await self._user(conn, key)
            out = []
            for role_key in target["roles"]:
                role = await self._resolve_role(conn, role_key)
                if role is not None:
                    out.append(role)
            return out

    async def user_permissions(self, user_id: str) -> tuple[list[str], list[str]]:
        """(roles, effective permissions): the same resolution the auth service puts in tokens."""
        key = parse_id(user_id)
        self._require_self_or(key, "users:read")
        async with self.db.transaction() as conn:
            target = await self._user(conn, key)
            return list(target["roles"]), await identity.effective_permissions(conn, list(target["roles"]))

    # --- profile, preferences, avatar ------------------------------------------------------
    async def _profile(self, conn: AsyncConnection, key: uuid.UUID) -> dict[str, Any]:
        user = await self._user(conn, key)
        row = (await conn.execute(select(profiles).where(p.user_id == key))).mappings().first()
        out: dict[str, Any] = {name: (row[name] if row else "") for name in PROFILE_FIELDS}
        out.update(user_id=str(key), first_name=user["first_name"], last_name=user["last_name"], email=user["email"],
                   avatar_url=avatar_url(key) if user["avatar_etag"] else "",
                   updated_at=row["updated_at"] if row else user["updated_at"],
                   preferences=dict(row["preferences"]) if row else {},
                   preferences_updated_at=(row["preferences_updated_at"] if row else None) or user["created_at"])
        return out

    async def _prepare_edit(self, conn: AsyncConnection, key: uuid.UUID) -> None:
        """Editing someone else's profile needs `users:write` and every permission they have."""
        self._require_self_or(key, "users:write")
        target = await self._user(conn, key, lock=True)
        await self._require_outranks(conn, target)

    async def get_profile(self, user_id: str) -> dict[str, Any]:
        key = parse_id(user_id)
        self._require_self_or(key, "users:read")
        async with self.db.transaction() as conn:
            return await self._profile(conn, key)

    async def update_profile(self, user_id: str, values: Mapping[str, Any], mask: set[str] | None) -> dict[str, Any]:
        key = parse_id(user_id)
        if mask is not None:
            unknown = mask - set(PROFILE_FIELDS)
            if unknown:
                raise InvalidArgument("unknown field in updateMask", violations=[
                    FieldViolation("updateMask", f"not a writable field: {n}") for n in sorted(unknown)])
            values = {k: v for k, v in values.items() if k in mask}
        clean, problems = rules.check_profile(values)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            await self._prepare_edit(conn, key)
            before = await self._profile(conn, key)
            await conn.execute(pg_insert(profiles).values(user_id=key, tenant_id=self._tenant(), **clean)
                               .on_conflict_do_update(index_elements=[p.user_id], set_={**clean, "updated_at": text("now()")}))
            changes = {k: {"from": before[k], "to": v} for k, v in clean.items() if before[k] != v}
            if changes:
                await emit(conn, SCHEMA, "crm.users.profile.updated", str(key), {"userId": str(key), "changes": changes})
            return await self._profile(conn, key)

    async def upload_avatar(self, user_id: str, data: bytes) -> dict[str, Any]:
        key = parse_id(user_id)
        self._require_self_or(key, "users:write")
        try:
            image = await asyncio.to_thread(avatars.process, data)
        except avatars.AvatarError as exc:
            err: DomainError = validation([FieldViolation("file", exc.message, exc.code)])
            if exc.status == 413:
                err = PayloadTooLarge(exc.message, violations=[FieldViolation("file", exc.message, exc.code)])
            raise err from None
        async with self.db.transaction() as conn:
            await self._prepare_edit(conn, key)
            values = {"image": image.data, "content_type": image.content_type, "etag": image.etag,
                      "width": image.width, "height": image.height, "updated_at": text("now()")}
            await conn.execute(pg_insert(avatar_table).values(user_id=key, tenant_id=self._tenant(), **values)
                               .on_conflict_do_update(index_elements=[a.user_id], set_=values))
            await emit(conn, SCHEMA, "crm.users.avatar.updated", str(key),
                       {"userId": str(key), "etag": image.etag, "contentType": image.content_type})
            return await self._profile(conn, key)

    async def get_avatar(self, user_id: str) -> RowMapping:
        key = parse_id(user_id)
        async with self.db.transaction() as conn:
            await self._user(conn, key)
            row = (await conn.execute(select(avatar_table).where(a.user_id == key))).mappings().first()
        if row is None:
            raise NotFound("this user has no avatar", reason="NO_AVATAR")
        return row

    async def get_preferences(self, user_id: str) -> dict[str, Any]:
        key = parse_id(user_id)
        self._require_self_or(key, "users:read")
        async with self.db.transaction() as conn:
            return await self._profile(conn, key)

    async def update_preferences(self, user_id: str, prefs: Mapping[str, Any]) -> dict[str, Any]:
        key = parse_id(user_id)
        clean, problems = rules.check_preferences(prefs)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            await self._prepare_edit(conn, key)
            values = {"preferences": clean, "preferences_updated_at": text("now()")}
            await conn.execute(pg_insert(profiles).values(user_id=key, tenant_id=self._tenant(), **values)
                               .on_conflict_do_update(index_elements=[p.user_id], set_=values))
            return await self._profile(conn, key)

    # --- custom roles --------------------------------------------------------------------
    async def list_roles(self) -> list[RoleView]:
        async with self.db.transaction() as conn:
            rows = (await conn.execute(select(role_table).where(r.tenant_id == self._tenant()).order_by(r.key))).mappings()
            return [builtin_role(k) for k in rules.ASSIGNABLE_BUILTINS] + [_custom_role(row) for row in rows]

    async def get_role(self, ref: str) -> RoleView:
        async with self.db.transaction() as conn:
            role = await self._resolve_role(conn, ref)
        if role is None:
            raise NotFound("role not found")
        return role

    async def create_role(self, values: Mapping[str, Any]) -> RoleView:
        clean, problems = rules.check_role(values, self.catalogue, creating=True)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            await self._require_grantable(conn, clean.get("permissions", []), "this role")
            try:
                async with conn.begin_nested():
                    row = (await conn.execute(insert(role_table).values(
                        id=uuid.uuid4(), tenant_id=self._tenant(), **clean).returning(role_table))).mappings().one()
            except IntegrityError:
                raise AlreadyExists("a role with this key exists", reason="ROLE_EXISTS",
                                    violations=[FieldViolation("key", "is taken", "ROLE_EXISTS")]) from None
            role = _custom_role(row)
            await emit(conn, SCHEMA, "crm.users.role.created", role.id,
                       {"roleId": role.id, "key": role.key, "permissions": role.permissions})
        return role

    async def _custom_for_change(self, conn: AsyncConnection, ref: str) -> RoleView:
        role = await self._resolve_role(conn, ref)
        if role is None:
            if ref.strip() in BUILTIN_ROLES:
                raise FailedPrecondition("built-in roles cannot be changed", reason="BUILT_IN_ROLE")
            raise NotFound("role not found")
        if role.built_in:
            raise FailedPrecondition("built-in roles cannot be changed", reason="BUILT_IN_ROLE")
        return role

    async def _holders(self, conn: AsyncConnection, key: str) -> list[str]:
        found = await conn.execute(select(u.id).where(u.tenant_id == self._tenant(), u.roles.any(key)))
        return [str(i) for i in found.scalars()]

    async def update_role(self, ref: str, values: Mapping[str, Any], mask: set[str] | None) -> RoleView:
        allowed = {"name", "description", "permissions"}
        if mask is not None:
            unknown = mask - allowed
            if unknown:
                raise InvalidArgument("unknown field in updateMask", violations=[
                    FieldViolation("updateMask", f"not a writable field: {n}") for n in sorted(unknown)])
        wanted = {k: v for k, v in values.items() if k in (mask if mask is not None else allowed)}
        clean, problems = rules.check_role(wanted, self.catalogue, creating=False)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            before = await self._custom_for_change(conn, ref)
            if values.get("key") and values["key"] != before.key:
                raise InvalidArgument("a role's key never changes", reason="IMMUTABLE_FIELD",
                                      violations=[FieldViolation("key", "cannot be changed", "IMMUTABLE_FIELD")])
            await self._require_grantable(conn, clean.get("permissions", []), "this role")
            row = (await conn.execute(update(role_table).where(r.id == uuid.UUID(before.id))
                                      .values(**clean, updated_at=text("now()")).returning(role_table))).mappings().one()
            role = _custom_role(row)
            if role.permissions != before.permissions:
                # Holders' tokens carry the old set: end them, the next refresh has the new one.
                holders = await self._holders(conn, role.key)
                for holder in holders:
                    await self._end_tokens(conn, holder, "role_changed", end_sessions=False)
            else:
                holders = []
            await emit(conn, SCHEMA, "crm.users.role.updated", role.id, {
                "roleId": role.id, "key": role.key, "permissions": role.permissions,
                "previousPermissions": before.permissions, "name": role.name})
        for holder in holders:
            self._revoke_here(holder)
        return role

    async def delete_role(self, ref: str) -> None:
        async with self.db.transaction() as conn:
            role = await self._custom_for_change(conn, ref)
            await self._require_grantable(conn, role.permissions, "this role")
            if await self._holders(conn, role.key):
                raise FailedPrecondition("the role is assigned to users; remove it from them first", reason="ROLE_IN_USE")
            await conn.execute(delete(role_table).where(r.id == uuid.UUID(role.id)))
            await emit(conn, SCHEMA, "crm.users.role.deleted", role.id,
                       {"roleId": role.id, "key": role.key, "permissions": role.permissions})

    # --- teams ---------------------------------------------------------------------------
    async def _team(self, conn: AsyncConnection, team_id: uuid.UUID, *, lock: bool = False) -> RowMapping:
        stmt = _TEAM_SELECT.where(t.id == team_id, t.tenant_id == self._tenant())
        row = (await conn.execute(stmt.with_for_update(of=teams) if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("team not found")
        return row

    async def _members(self, conn: AsyncConnection, team_id: uuid.UUID) -> list[RowMapping]:
        rows = await conn.execute(
            select(tm.user_id, tm.added_at, u.first_name, u.last_name, u.email)
            .select_from(team_members.join(user_table, u.id == tm.user_id))
            .where(tm.team_id == team_id).order_by(u.last_name, u.first_name, tm.user_id)
        )
        return list(rows.mappings())

    async def _team_view(self, conn: AsyncConnection, team_id: uuid.UUID) -> TeamView:
        return await self._team(conn, team_id), await self._members(conn, team_id)

    async def _existing_users(self, conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of `ids` are users of the caller's tenant that were not deleted."""
        found = await conn.execute(
            select(u.id).select_from(user_table.outerjoin(profiles, p.user_id == u.id))
            .where(u.id.in_(list(ids)), u.tenant_id == self._tenant(), p.deleted_at.is_(None)))
        return set(found.scalars())

    @staticmethod
    def _parse_user_ids(raw: Iterable[str], field_name: str) -> tuple[list[uuid.UUID], list[FieldViolation]]:
        out: list[uuid.UUID] = []
        problems = []
        for i, value in enumerate(raw):
            try:
                key = uuid.UUID(value)
            except ValueError:
                problems.append(FieldViolation(f"{field_name}[{i}]", "must be a user id"))
                continue
            if key not in out:
                out.append(key)
        return out, problems

    async def _add_members(self, conn: AsyncConnection, team_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> None:
        if ids:
            await conn.execute(pg_insert(team_members).values([
                {"team_id": team_id, "user_id": i, "tenant_id": self._tenant(), "added_by": _caller_uuid()} for i in ids
            ]).on_conflict_do_nothing())

    async def create_team(self, values: Mapping[str, Any], lead_id: str, member_ids: Sequence[str]) -> TeamView:
        clean, problems = rules.check_team(values, creating=True)
        members, bad = self._parse_user_ids(member_ids, "memberIds")
        problems += bad
        if len(members) > rules.MAX_TEAM_MEMBERS_AT_CREATE:
            problems.append(FieldViolation("memberIds", f"at most {rules.MAX_TEAM_MEMBERS_AT_CREATE}", "TOO_MANY"))
        lead = None
        if lead_id:
            lead, bad = self._parse_user_ids([lead_id], "leadId")
            problems += [dataclasses.replace(v, field="leadId") for v in bad]
        if problems:
            raise validation(problems)
        team_id = uuid.uuid4()
        async with self.db.transaction() as conn:
            everyone = members + [x for x in (lead or []) if x not in members]
            known = await self._existing_users(conn, everyone)
            missing = [FieldViolation(f"memberIds[{i}]", "no such user", "NOT_FOUND") for i, m in enumerate(members) if m not in known]
            if lead and lead[0] not in known:
                missing.append(FieldViolation("leadId", "no such user", "NOT_FOUND"))
            if missing:
                raise NotFound("user not found", violations=missing)
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(teams).values(id=team_id, tenant_id=self._tenant(), lead_id=lead[0] if lead else None,
                                                            created_by=_caller_uuid(), **clean))
            except IntegrityError:
                raise AlreadyExists("a team with this name exists", reason="TEAM_EXISTS",
                                    violations=[FieldViolation("name", "is taken", "TEAM_EXISTS")]) from None
            await self._add_members(conn, team_id, everyone)
            await self._team_changed(conn, team_id)
            await emit(conn, SCHEMA, "crm.users.team.created", str(team_id), {
                "teamId": str(team_id), "name": clean["name"], "leadId": str(lead[0]) if lead else "",
                "memberIds": [str(m) for m in everyone]})
            return await self._team_view(conn, team_id)

    async def get_team(self, team_id: str) -> TeamView:
        async with self.db.transaction() as conn:
            return await self._team_view(conn, parse_id(team_id))

    async def update_team(self, team_id: str, values: Mapping[str, Any], lead_id: str, mask: set[str] | None) -> TeamView:
        key = parse_id(team_id)
        allowed = {"name", "description", "lead_id"}
        if mask is not None:
            unknown = mask - allowed
            if unknown:
                raise InvalidArgument("unknown field in updateMask", violations=[
                    FieldViolation("updateMask", f"not a writable field: {n}") for n in sorted(unknown)])
        fields = mask if mask is not None else allowed
        clean, problems = rules.check_team({k: v for k, v in values.items() if k in fields}, creating=False)
        lead: uuid.UUID | None = None
        if "lead_id" in fields and lead_id:
            parsed, bad = self._parse_user_ids([lead_id], "leadId")
            problems += [dataclasses.replace(v, field="leadId") for v in bad]
            lead = parsed[0] if parsed else None
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            before = await self._team(conn, key, lock=True)
            if "lead_id" in fields:
                if lead is not None and lead not in await self._existing_users(conn, [lead]):
                    raise NotFound("user not found", violations=[FieldViolation("leadId", "no such user", "NOT_FOUND")])
                clean["lead_id"] = lead
            try:
                async with conn.begin_nested():
                    await conn.execute(update(teams).where(t.id == key).values(**clean, updated_at=text("now()")))
            except IntegrityError:
                raise AlreadyExists("a team with this name exists", reason="TEAM_EXISTS",
                                    violations=[FieldViolation("name", "is taken", "TEAM_EXISTS")]) from None
            if lead is not None:
                await self._add_members(conn, key, [lead])  # a lead is always a member
            changes = {k: {"from": _plain(before[k]), "to": _plain(v)} for k, v in clean.items() if before[k] != v}
            if changes:
                await emit(conn, SCHEMA, "crm.users.team.updated", str(key), {"teamId": str(key), "changes": changes})
            return await self._team_view(conn, key)

    async def delete_team(self, team_id: str) -> None:
        key = parse_id(team_id)
        async with self.db.transaction() as conn:
            team = await self._team(conn, key, lock=True)
            await self._team_changed(conn, key)
            await conn.execute(delete(teams).where(t.id == key))
            await emit(conn, SCHEMA, "crm.users.team.deleted", str(key), {"teamId": str(key), "name": team["name"]})

    async def list_teams(self, params: listing.ListParams, member_id: str) -> listing.Page:
        where: list[ColumnElement[bool]] = [t.tenant_id == self._tenant()]
        if member_id:
            member = parse_id(member_id, "memberId")
            where.append(exists().where(tm.team_id == t.id, tm.user_id == member))
        async with self.db.transaction() as conn:
            return await listing.fetch_page(conn, _TEAM_SELECT, TEAM_LIST_SPEC, params, where)

    async def add_member(self, team_id: str, user_id: str) -> RowMapping:
        key = parse_id(team_id)
        if not user_id:
            raise validation([FieldViolation("userId", "is required", "REQUIRED")])
        member = parse_id(user_id, "userId")
        async with self.db.transaction() as conn:
            await self._team(conn, key, lock=True)
            if member not in await self._existing_users(conn, [member]):
                raise NotFound("user not found", violations=[FieldViolation("userId", "no such user", "NOT_FOUND")])
            added = (await conn.execute(pg_insert(team_members).values(
                team_id=key, user_id=member, tenant_id=self._tenant(), added_by=_caller_uuid(),
            ).on_conflict_do_nothing().returning(tm.user_id))).first()
            if added is None:
                raise AlreadyExists("the user is already a member", reason="ALREADY_MEMBER",
                                    violations=[FieldViolation("userId", "is already a member", "ALREADY_MEMBER")])
            await emit(conn, SCHEMA, "crm.users.team.member_added", str(key), {"teamId": str(key), "userId": str(member)})
            await self._team_changed(conn, key)
            return next(m for m in await self._members(conn, key) if m["user_id"] == member)

    async def remove_member(self, team_id: str, user_id: str) -> None:
        key, member = parse_id(team_id), parse_id(user_id, "userId")
        async with self.db.transaction() as conn:
            await self._team(conn, key, lock=True)
            gone = (await conn.execute(delete(team_members).where(tm.team_id == key, tm.user_id == member)
                                       .returning(tm.user_id))).first()
            if gone is None:
                raise NotFound("the user is not a member of this team", reason="NOT_A_MEMBER")
            await conn.execute(update(teams).where(t.id == key, t.lead_id == member)
                               .values(lead_id=None, updated_at=text("now()")))
            await emit(conn, SCHEMA, "crm.users.team.member_removed", str(key), {"teamId": str(key), "userId": str(member)})
            await self._team_changed(conn, key, also=[member])


def _caller_uuid() -> uuid.UUID | None:
    ctx = context.current()
    return uuid.UUID(ctx.user_id) if ctx.user_id else None


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


