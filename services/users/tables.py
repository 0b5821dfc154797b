"""The identity tables the users service reads and writes, as SQLAlchemy Core (queries only;
migrations define the DDL: auth.users, auth.roles and auth.login_index in services/auth, the
rest in services/users/migrations)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, LargeBinary, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.kernel.db import metadata

SCHEMA = "auth"
meta = metadata(SCHEMA)


def _uuid(name: str, **kw: object) -> Column[object]:
    return Column(name, UUID(as_uuid=True), **kw)  # type: ignore[arg-type]


def _text(name: str) -> Column[str]:
    return Column(name, Text, nullable=False, server_default="")


def _time(name: str, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable, server_default=None if nullable else func.now())


users = Table(
    "users", meta,
    _uuid("id", primary_key=True), _uuid("tenant_id", nullable=False), _text("email"),
    Column("password_hash", Text), _text("first_name"), _text("last_name"),
    Column("roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("email_verified", Boolean, nullable=False, server_default="false"),
    _time("created_at"), _time("updated_at"),
)

login_index = Table(
    "login_index", meta, _text("email"), _uuid("tenant_id", nullable=False), _uuid("user_id", nullable=False),
)

roles = Table(
    "roles", meta,
    _uuid("id", primary_key=True), _uuid("tenant_id", nullable=False), _text("key"), _text("name"),
    _text("description"), Column("permissions", ARRAY(Text), nullable=False, server_default="{}"),
    _time("created_at"), _time("updated_at"),
)

profiles = Table(
    "user_profiles", meta,
    _uuid("user_id", primary_key=True), _uuid("tenant_id", nullable=False),
    _text("title"), _text("department"), _text("phone"), _text("timezone"), _text("locale"), _text("bio"),
    _text("location"), Column("preferences", JSONB, nullable=False, server_default="{}"),
    _time("preferences_updated_at", nullable=True), _time("deleted_at", nullable=True), _uuid("deleted_by"),
    _time("updated_at"),
)

avatars = Table(
    "user_avatars", meta,
    _uuid("user_id", primary_key=True), _uuid("tenant_id", nullable=False),
    Column("image", LargeBinary, nullable=False), _text("content_type"), _text("etag"),
    Column("width", Integer, nullable=False), Column("height", Integer, nullable=False), _time("updated_at"),
)

teams = Table(
    "teams", meta,
    _uuid("id", primary_key=True), _uuid("tenant_id", nullable=False), _text("name"), _text("description"),
    _uuid("lead_id"), _uuid("created_by"), _time("created_at"), _time("updated_at"),
)

team_members = Table(
    "team_members", meta,
    _uuid("team_id", primary_key=True), _uuid("user_id", primary_key=True), _uuid("tenant_id", nullable=False),
    _uuid("added_by"), _time("added_at"),
)

PROFILE_FIELDS = ("title", "department", "phone", "timezone", "locale", "bio", "location")
