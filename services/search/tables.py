"""The search schema as SQLAlchemy Core tables (queries only; migrations define the DDL).

Reads go through the `tenant_*` views (see the migration: they keep the tenant predicate in the
database and let the GIN indexes serve full-text and trigram operators); writes go to the
tables, under row-level security.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

from services.kernel.db import metadata

SCHEMA = "search"
meta = metadata(SCHEMA)

documents = Table(
    "tenant_documents",
    meta,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("type", Text, nullable=False),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("owner_id", UUID(as_uuid=True)),
    Column("title", Text, nullable=False),
    Column("subtitle", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("tags", ARRAY(Text), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("tsv", TSVECTOR, nullable=False),
    Column("title_folded", Text, nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("indexed_at", DateTime(timezone=True), nullable=False),
)

terms = Table(
    "tenant_terms",
    meta,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("term", Text, nullable=False),
    Column("documents", Integer, nullable=False),
)
