"""Alembic migrations, one history per service schema, applied when the service starts.

A service's `migrations/env.py` only calls `run_env()`. Migrations run as the owner role and
then grant the runtime role what it needs; an advisory lock keeps replicas that start together
from migrating twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.kernel.db import sqlalchemy_url

TENANT_PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def upgrade(schema: str, migrations_dir: Path, migration_url: str, runtime_url: str,
            version_table: str = "alembic_version") -> None:
    """Bring `schema` to the newest revision (blocking; run it in a thread)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["crm_schema"] = schema
    cfg.attributes["crm_url"] = migration_url
    cfg.attributes["crm_version_table"] = version_table
    runtime_role = urlsplit(runtime_url).username or ""
    migration_role = urlsplit(migration_url).username or ""
    cfg.attributes["crm_runtime_role"] = runtime_role if runtime_role != migration_role else ""
    command.upgrade(cfg, "head")


def run_env() -> None:
    """Body of every service's env.py."""
    from alembic import context as alembic_context

    cfg = alembic_context.config
    schema: str = cfg.attributes["crm_schema"]
    url: str = cfg.attributes["crm_url"]
    runtime_role: str = cfg.attributes["crm_runtime_role"]

    def migrate(connection: Connection) -> None:
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"crm-migrate-{schema}"})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        alembic_context.configure(
            connection=connection,
            version_table_schema=schema,
            version_table=cfg.attributes.get("crm_version_table", "alembic_version"),
            include_schemas=True,
            transaction_per_migration=False,
        )
        with alembic_context.begin_transaction():
            alembic_context.run_migrations()
        if runtime_role:
            grant(connection, schema, runtime_role)

    async def run() -> None:
        engine = create_async_engine(sqlalchemy_url(url), poolclass=NullPool)
        async with engine.begin() as conn:
            await conn.run_sync(migrate)
        await engine.dispose()

    asyncio.run(run())


def grant(connection: Connection, schema: str, role: str) -> None:
    """Give the runtime role data access to the schema, nothing more (no DDL, no ownership)."""
    quoted = '"' + role.replace('"', '""') + '"'
    for statement in (
        f'GRANT USAGE ON SCHEMA "{schema}" TO {quoted}',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {quoted}',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {quoted}',
        f'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA "{schema}" TO {quoted}',
    ):
        connection.execute(text(statement))


def enable_tenant_isolation(op: Any, table: str) -> None:
    """Row-level security on a tenant table: rows are visible and writable only for app.tenant_id.

    FORCE makes the policy bind the table owner too.
    """
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})"
    )


def _owner_predicate(setting: str, column: str) -> str:
    # CASE, not OR: PostgreSQL may evaluate either side of an OR first, and '*' is no uuid.
    return (f"(CASE WHEN current_setting('{setting}', true) = '*' THEN true ELSE coalesce({column} = ANY("
            f"string_to_array(NULLIF(current_setting('{setting}', true), ''), ',')::uuid[]), false) END)")


def enable_owner_scope(op: Any, table: str, column: str = "owner_id") -> None:
    """Record scopes on top of tenant isolation: a caller holding only `x:read:own` (or `:team`)
    sees only those owners' rows, and one holding `x:write:own` creates and changes only those.

    Restrictive policies, so they narrow `tenant_isolation` and never widen it; the settings
    come from services/kernel/db.py on every transaction (`*` when the caller is unscoped).
    Changing or deleting a row one can see but not change fails loudly (SQLSTATE 42501, which
    the kernel answers with 403) instead of silently touching nothing.
    """
    schema, name = table.split(".")
    read, write = _owner_predicate("app.read_owners", column), _owner_predicate("app.write_owners", column)
    op.execute(f"CREATE POLICY owner_read ON {table} AS RESTRICTIVE FOR SELECT USING ({read})")
    op.execute(f"CREATE POLICY owner_insert ON {table} AS RESTRICTIVE FOR INSERT WITH CHECK ({write})")
    op.execute(f"CREATE POLICY owner_update ON {table} AS RESTRICTIVE FOR UPDATE USING ({read}) WITH CHECK ({write})")
    op.execute(f"CREATE POLICY owner_delete ON {table} AS RESTRICTIVE FOR DELETE USING ({read})")
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {schema}.refuse_out_of_scope_delete() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            owner uuid;
        BEGIN
            EXECUTE format('SELECT ($1).%I', TG_ARGV[0]) USING OLD INTO owner;
            IF current_setting('app.write_owners', true) <> '*' THEN
                IF owner IS NULL OR NOT owner = ANY(
                        string_to_array(NULLIF(current_setting('app.write_owners', true), ''), ',')::uuid[]) THEN
                    RAISE EXCEPTION 'row outside the caller''s write scope' USING ERRCODE = 'insufficient_privilege';
                END IF;
            END IF;
            RETURN OLD;
        END $$"""
    )
    op.execute(
        f"CREATE TRIGGER {name}_owner_scope BEFORE DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_out_of_scope_delete('{column}')"
    )


def create_outbox(op: Any, schema: str) -> None:
    """The transactional outbox of a service, with a trigger that wakes the relay on commit."""
    op.execute(
        f"""
        CREATE TABLE "{schema}".outbox (
            seq bigserial PRIMARY KEY,
            id uuid NOT NULL UNIQUE,
            subject text NOT NULL,
            payload bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute(
        f"""
        CREATE FUNCTION "{schema}".outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('crm_outbox', '{schema}'); RETURN NULL; END $$"""
    )
    op.execute(
        f"""CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
        FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".outbox_notify()"""
    )


def create_jobs(op: Any, schema: str) -> None:
    """The background jobs of a service (imports, exports, merges ...), tenant-isolated."""
    op.execute(
        f"""
        CREATE TABLE "{schema}".jobs (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            kind text NOT NULL,
            status text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'completed', 'failed')),
            progress int NOT NULL DEFAULT 0,
            total int NOT NULL DEFAULT 0,
            succeeded int NOT NULL DEFAULT 0,
            failed int NOT NULL DEFAULT 0,
            errors jsonb NOT NULL DEFAULT '[]',
            failure_reason text NOT NULL DEFAULT '',
            params jsonb NOT NULL DEFAULT '{{}}',
            input bytea,
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz
        )"""
    )
    enable_tenant_isolation(op, f'"{schema}".jobs')
    # Ids of unfinished jobs, readable without a tenant so a restarted process can resume them.
    op.execute(
        f"""
        CREATE TABLE "{schema}".job_queue (
            job_id uuid PRIMARY KEY REFERENCES "{schema}".jobs (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL,
            enqueued_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
