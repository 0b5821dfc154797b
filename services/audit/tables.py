"""The audit schema as SQLAlchemy Core tables (queries only; migrations define the DDL)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.kernel.db import metadata

SCHEMA = "audit"
meta = metadata(SCHEMA)

entries = Table(
    "entries",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("actor_type", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("entity_id", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("changes", JSONB, nullable=False),
    Column("related", JSONB, nullable=False),
    Column("request_id", Text, nullable=False),
    Column("client_ip", Text, nullable=False),
    Column("user_agent", Text, nullable=False),
    Column("metadata", JSONB, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Column("search_text", Text, nullable=False),
)
