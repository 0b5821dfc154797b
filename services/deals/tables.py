"""The deals schema as SQLAlchemy Core tables (queries only; migrations define the DDL)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Numeric, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.kernel.db import metadata

SCHEMA = "deals"
meta = metadata(SCHEMA)

deals = Table(
    "deals",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("amount", Numeric(18, 2, asdecimal=True), nullable=False, server_default="0"),
    Column("currency", Text, nullable=False),
    Column("pipeline_id", UUID(as_uuid=True), nullable=False),
    Column("stage_id", UUID(as_uuid=True), nullable=False),
    Column("account_id", UUID(as_uuid=True)),
    Column("contact_id", UUID(as_uuid=True)),
    Column("expected_close_date", Date),
    Column("status", Text, nullable=False),
    Column("forecast_category", Text, nullable=False, server_default=""),
    Column("lost_reason", Text, nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("owner_id", UUID(as_uuid=True), nullable=False),
    Column("created_by", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("stage_entered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_at", DateTime(timezone=True)),
    # Generated: lower-cased, unaccented name and description for free-text search.
    Column("search_text", Text, nullable=False, server_default=""),
)

history = Table(
    "stage_history",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("deal_id", UUID(as_uuid=True), nullable=False),
    Column("pipeline_id", UUID(as_uuid=True), nullable=False),
    Column("from_pipeline_id", UUID(as_uuid=True)),
    Column("from_stage_id", UUID(as_uuid=True)),
    Column("from_stage_name", Text, nullable=False, server_default=""),
    Column("to_stage_id", UUID(as_uuid=True), nullable=False),
    Column("to_stage_name", Text, nullable=False, server_default=""),
    Column("from_status", Text, nullable=False, server_default=""),
    Column("to_status", Text, nullable=False),
    Column("changed_by", UUID(as_uuid=True)),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("time_in_stage_seconds", BigInteger, nullable=False, server_default="0"),
)

snapshots = Table(
    "forecast_snapshots",
    meta,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("taken_on", Date, primary_key=True),
    Column("pipeline_id", UUID(as_uuid=True), primary_key=True),
    Column("owner_id", UUID(as_uuid=True), primary_key=True),
    Column("period_month", Date, primary_key=True),
    Column("currency", Text, primary_key=True),
    Column("open_deals", BigInteger, nullable=False),
    Column("pipeline_amount", Numeric(asdecimal=True), nullable=False),
    Column("weighted", Numeric(asdecimal=True), nullable=False),
    Column("commit_amount", Numeric(asdecimal=True), nullable=False),
    Column("best_case_amount", Numeric(asdecimal=True), nullable=False),
    Column("won_amount", Numeric(asdecimal=True), nullable=False),
)
