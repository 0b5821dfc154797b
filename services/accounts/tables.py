"""The accounts schema as SQLAlchemy Core tables (queries only; migrations define the DDL)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, Numeric, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.kernel.db import metadata

SCHEMA = "accounts"
meta = metadata(SCHEMA)

accounts = Table(
    "accounts",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("domain", Text, nullable=False, server_default=""),
    Column("industry", Text, nullable=False, server_default=""),
    Column("parent_id", UUID(as_uuid=True)),
    Column("territory", Text),
    Column("owner_id", UUID(as_uuid=True)),
    Column("website", Text, nullable=False, server_default=""),
    Column("phone", Text, nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("employee_count", Integer, nullable=False, server_default="0"),
    Column("annual_revenue", Numeric(18, 2)),
    Column("currency", Text, nullable=False, server_default=""),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("address", JSONB, nullable=False, server_default="{}"),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    # Set while a merge job folds this account into `merged_into`: the account is gone for
    # every reader from the moment the merge is accepted, and comes back if the merge fails.
    Column("merged_into", UUID(as_uuid=True)),
    Column("created_by", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Generated: lower-cased, unaccented name, domain, industry and website for free-text search.
    Column("search_text", Text, nullable=False, server_default=""),
)

territories = Table(
    "territories",
    meta,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("search_text", Text, nullable=False, server_default=""),
)

merges = Table(
    "merges",
    meta,
    Column("job_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("target_id", UUID(as_uuid=True), nullable=False),
    Column("source_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    # [{name, status, moved, note}] in run order; a resumed job skips the completed steps.
    Column("steps", JSONB, nullable=False, server_default="[]"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Columns a client may write, in API order.
WRITABLE = (
    "name", "domain", "industry", "parent_id", "territory", "owner_id", "website", "phone", "description",
    "employee_count", "annual_revenue", "currency", "tags", "address", "custom_fields",
)
