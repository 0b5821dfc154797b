"""The contacts schema as SQLAlchemy Core tables (queries only; migrations define the DDL)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.kernel.db import metadata

SCHEMA = "contacts"
meta = metadata(SCHEMA)

contacts = Table(
    "contacts",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("first_name", Text, nullable=False, server_default=""),
    Column("last_name", Text, nullable=False, server_default=""),
    Column("email", Text, nullable=False, server_default=""),
    Column("phone", Text, nullable=False, server_default=""),
    Column("title", Text, nullable=False, server_default=""),
    Column("company", Text, nullable=False, server_default=""),
    Column("account_id", UUID(as_uuid=True)),
    Column("owner_id", UUID(as_uuid=True)),
    Column("lifecycle_stage", Text, nullable=False, server_default=""),
    Column("source", Text, nullable=False, server_default=""),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("address", JSONB, nullable=False, server_default="{}"),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("created_by", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Generated: lower-cased, unaccented name, email, phone and company for free-text search.
    Column("search_text", Text, nullable=False, server_default=""),
)

relationships = Table(
    "relationships",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("contact_id", UUID(as_uuid=True), nullable=False),
    Column("related_contact_id", UUID(as_uuid=True), nullable=False),
    Column("type", Text, nullable=False),
    Column("notes", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Columns a client may write, in the order exports list them.
WRITABLE = (
    "first_name", "last_name", "email", "phone", "title", "company", "account_id", "owner_id",
    "lifecycle_stage", "source", "tags", "address", "custom_fields",
)
