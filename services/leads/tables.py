"""The leads schema as SQLAlchemy Core tables (queries only; migrations define the DDL)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from services.kernel.db import metadata

SCHEMA = "leads"
meta = metadata(SCHEMA)


def _text(name: str, default: str = "") -> Column[str]:
    return Column(name, Text, nullable=False, server_default=default)


leads = Table(
    "leads",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    _text("first_name"), _text("last_name"), _text("email"), _text("phone"), _text("company"), _text("title"),
    _text("website"), _text("source", "manual"), _text("status", "new"),
    Column("score", Integer, nullable=False, server_default="0"),
    Column("owner_id", UUID(as_uuid=True)),
    _text("territory"), _text("country"), _text("description"),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("enrichment", JSONB, nullable=False, server_default="{}"),
    _text("status_reason"),
    Column("qualified_at", DateTime(timezone=True)),
    Column("conversion_id", UUID(as_uuid=True)),
    Column("converted_contact_id", UUID(as_uuid=True)),
    Column("converted_account_id", UUID(as_uuid=True)),
    Column("converted_deal_id", UUID(as_uuid=True)),
    Column("converted_at", DateTime(timezone=True)),
    Column("capture", JSONB, nullable=False, server_default="{}"),
    _text("capture_ref"),
    Column("created_by", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _text("search_text"),  # generated: folded name, email, phone and company
)

score_history = Table(
    "score_history",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("lead_id", UUID(as_uuid=True), nullable=False),
    Column("previous_score", Integer, nullable=False),
    Column("score", Integer, nullable=False),
    _text("reason"), _text("source", "manual"),
    Column("changed_by", UUID(as_uuid=True)),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

conversions = Table(
    "conversions",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("lead_id", UUID(as_uuid=True), nullable=False),
    _text("state", "running"), _text("previous_status"),
    Column("options", JSONB, nullable=False, server_default="{}"),
    Column("contact_id", UUID(as_uuid=True)),
    Column("contact_undone", Boolean, nullable=False, server_default="false"),
    Column("account_id", UUID(as_uuid=True)),
    Column("account_created", Boolean, nullable=False, server_default="false"),
    Column("account_undone", Boolean, nullable=False, server_default="false"),
    Column("deal_id", UUID(as_uuid=True)),
    Column("deal_undone", Boolean, nullable=False, server_default="false"),
    Column("failure", JSONB),
    Column("started_by", UUID(as_uuid=True)),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("lease_until", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)

conversion_queue = Table(
    "conversion_queue",
    meta,
    Column("conversion_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

forms = Table(
    "forms",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    _text("name"), _text("key"), _text("source", "web-form"),
    Column("owner_id", UUID(as_uuid=True)),
    _text("honeypot_field", "_gotcha"),
    Column("rate_limit_per_minute", Integer, nullable=False, server_default="10"),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("submission_count", Integer, nullable=False, server_default="0"),
    Column("created_by", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

form_index = Table(
    "form_index",
    meta,
    Column("key", Text, primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("form_id", UUID(as_uuid=True), nullable=False),
)

assignment_rules = Table(
    "assignment_rules",
    meta,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    _text("name"),
    Column("priority", Integer, nullable=False, server_default="100"),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("sources", ARRAY(Text), nullable=False, server_default="{}"),
    Column("territories", ARRAY(Text), nullable=False, server_default="{}"),
    Column("countries", ARRAY(Text), nullable=False, server_default="{}"),
    Column("team_id", UUID(as_uuid=True)),
    Column("user_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
    Column("max_open_leads", Integer, nullable=False, server_default="0"),
    Column("last_assignee", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Columns a client may write, in API order.
WRITABLE = (
    "first_name", "last_name", "email", "phone", "company", "title", "website", "source", "status", "score",
    "owner_id", "territory", "country", "description", "tags", "custom_fields",
)
# Statuses a client may set; converting and converted belong to ConvertLead.
SETTABLE_STATUSES = ("new", "contacted", "qualified", "unqualified")
OPEN_STATUSES = ("new", "contacted", "qualified")
