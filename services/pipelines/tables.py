"""The pipelines schema as SQLAlchemy Core tables (queries only; migrations define the DDL)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.kernel.db import metadata

SCHEMA = "pipelines"
meta = metadata(SCHEMA)

pipelines = Table(
    "pipelines",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("is_default", Boolean, nullable=False, server_default="false"),
    Column("created_by", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("search_text", Text, nullable=False, server_default=""),
)

stages = Table(
    "stages",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("pipeline_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("probability", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("archived_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

rules = Table(
    "automation_rules",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("pipeline_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("trigger", JSONB, nullable=False),
    Column("actions", JSONB, nullable=False),
    Column("created_by", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

runs = Table(
    "automation_runs",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("rule_id", UUID(as_uuid=True), nullable=False),
    Column("deal_id", UUID(as_uuid=True), nullable=False),
    Column("event_id", Text, nullable=False, server_default=""),
    Column("dedupe_key", Text, nullable=False),
    Column("trigger_data", JSONB, nullable=False, server_default="{}"),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("outcomes", JSONB, nullable=False, server_default="[]"),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
)

idle_rules = Table(
    "idle_rules",
    meta,
    Column("rule_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("stage_id", UUID(as_uuid=True), nullable=False),
    Column("idle_hours", Integer, nullable=False),
    Column("checked_until", DateTime(timezone=True)),
)

run_queue = Table(
    "run_queue",
    meta,
    Column("run_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=False),
)

tenant_setup = Table(
    "tenant_setup",
    meta,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("default_created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
