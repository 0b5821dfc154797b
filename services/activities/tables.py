"""The activities schema as SQLAlchemy Core tables (queries only; migrations define the DDL)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, LargeBinary, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.kernel.db import metadata

SCHEMA = "activities"
meta = metadata(SCHEMA)

activities = Table(
    "activities",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("type", Text, nullable=False),
    Column("subject", Text, nullable=False, server_default=""),
    Column("body", Text, nullable=False, server_default=""),
    Column("due_at", DateTime(timezone=True)),
    Column("start_at", DateTime(timezone=True)),
    Column("end_at", DateTime(timezone=True)),
    Column("duration_seconds", Integer, nullable=False, server_default="0"),
    Column("status", Text, nullable=False),
    Column("priority", Text, nullable=False, server_default="normal"),
    Column("location", Text, nullable=False, server_default=""),
    Column("direction", Text, nullable=False, server_default=""),
    Column("outcome", Text, nullable=False, server_default=""),
    Column("from_address", Text, nullable=False, server_default=""),
    Column("to_addresses", ARRAY(Text), nullable=False, server_default="{}"),
    Column("attendees", JSONB, nullable=False, server_default="[]"),
    Column("contact_id", UUID(as_uuid=True)),
    Column("account_id", UUID(as_uuid=True)),
    Column("deal_id", UUID(as_uuid=True)),
    Column("lead_id", UUID(as_uuid=True)),
    Column("owner_id", UUID(as_uuid=True)),
    Column("created_by", UUID(as_uuid=True)),
    Column("ical_uid", Text, nullable=False),
    Column("sequence", Integer, nullable=False, server_default="0"),
    Column("unverified_links", ARRAY(Text), nullable=False, server_default="{}"),
    Column("completed_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Generated: start, else due time, else creation; the timeline's order.
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    # Generated: lower-cased, unaccented subject, body, location and addresses.
    Column("search_text", Text, nullable=False),
)

# Users taking part in an event (the owner included), so availability is one indexed lookup.
participants = Table(
    "participants",
    meta,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("activity_id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), primary_key=True),
)

calendar_connections = Table(
    "calendar_connections",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("url", Text, nullable=False),
    Column("username", Text, nullable=False, server_default=""),
    Column("password_encrypted", LargeBinary),
    Column("sync_token", Text, nullable=False, server_default=""),
    Column("last_synced_at", DateTime(timezone=True)),
    Column("last_status", Text, nullable=False, server_default="never"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One row per event known on both sides: where it lives remotely and the versions last agreed.
calendar_items = Table(
    "calendar_items",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("connection_id", UUID(as_uuid=True), nullable=False),
    Column("activity_id", UUID(as_uuid=True)),  # NULL once the activity is deleted here
    Column("uid", Text, nullable=False),
    Column("href", Text, nullable=False),
    Column("etag", Text, nullable=False, server_default=""),
    Column("local_version", DateTime(timezone=True)),  # the activity's updated_at when last in step
    Column("local_deleted_at", DateTime(timezone=True)),
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
