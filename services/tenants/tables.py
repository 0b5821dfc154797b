"""The tables the tenants list reads, for the kernel's list machinery (migrations own the DDL)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Table, Text, Uuid

from services.kernel.db import metadata

SCHEMA = "auth"
META = metadata(SCHEMA)

tenants = Table(
    "tenants", META,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("plan", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

tenant_settings = Table(
    "tenant_settings", META,
    Column("tenant_id", Uuid, primary_key=True),
    Column("status_reason", Text, nullable=False),
    Column("suspended_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
)
