"""Contacts, relationships, jobs and the outbox, with an index for every offered filter and sort.

Revision ID: contacts_0001
Revises:
"""

from alembic import op

from services.kernel.migrations import create_jobs, create_outbox, enable_tenant_isolation

revision = "contacts_0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    # unaccent() is only STABLE (its dictionary could change); pinning the dictionary makes it
    # safe to use in a generated column.
    op.execute(
        """
        CREATE FUNCTION contacts.search_text(VARIADIC parts text[]) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, array_to_string(parts, ' '))) $$"""
    )
    op.execute(
        """
        CREATE TABLE contacts.contacts (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            first_name text NOT NULL DEFAULT '',
            last_name text NOT NULL DEFAULT '',
            email text NOT NULL DEFAULT '',
            phone text NOT NULL DEFAULT '',
            title text NOT NULL DEFAULT '',
            company text NOT NULL DEFAULT '',
            account_id uuid,
            owner_id uuid,
            lifecycle_stage text NOT NULL DEFAULT '',
            source text NOT NULL DEFAULT '',
            tags text[] NOT NULL DEFAULT '{}',
            address jsonb NOT NULL DEFAULT '{}',
            custom_fields jsonb NOT NULL DEFAULT '{}',
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            search_text text GENERATED ALWAYS AS
                (contacts.search_text(first_name, last_name, email, phone, company)) STORED,
            CONSTRAINT uq_contacts_tenant_id_id UNIQUE (tenant_id, id)
        )"""
    )
    enable_tenant_isolation(op, "contacts.contacts")
    for name, columns in (
        ("created", "tenant_id, created_at, id"),
        ("updated", "tenant_id, updated_at, id"),
        ("first_name", "tenant_id, first_name, id"),
        ("last_name", "tenant_id, last_name, id"),
        ("email", "tenant_id, email, id"),
        ("phone", "tenant_id, phone"),
        ("company", "tenant_id, lower(company)"),
        ("company_sort", "tenant_id, company, id"),
        ("owner", "tenant_id, owner_id"),
        ("account", "tenant_id, account_id"),
        ("stage", "tenant_id, lifecycle_stage"),
        ("source", "tenant_id, source"),
    ):
        op.execute(f"CREATE INDEX ix_contacts_{name} ON contacts.contacts ({columns})")
    op.execute("CREATE INDEX ix_contacts_tags ON contacts.contacts USING gin (tenant_id, tags)")
    op.execute("CREATE INDEX ix_contacts_search ON contacts.contacts USING gin (search_text gin_trgm_ops)")
    op.execute(
        """
        CREATE TABLE contacts.relationships (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            contact_id uuid NOT NULL,
            related_contact_id uuid NOT NULL,
            type text NOT NULL,
            notes text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            -- Composite keys: both ends must be contacts of the relationship's own tenant.
            CONSTRAINT fk_relationships_contact FOREIGN KEY (tenant_id, contact_id)
                REFERENCES contacts.contacts (tenant_id, id) ON DELETE CASCADE,
            CONSTRAINT fk_relationships_related FOREIGN KEY (tenant_id, related_contact_id)
                REFERENCES contacts.contacts (tenant_id, id) ON DELETE CASCADE,
            CONSTRAINT uq_relationships_pair UNIQUE (tenant_id, contact_id, related_contact_id, type),
            CONSTRAINT ck_relationships_not_self CHECK (contact_id <> related_contact_id)
        )"""
    )
    op.execute("CREATE INDEX ix_relationships_related ON contacts.relationships (tenant_id, related_contact_id)")
    enable_tenant_isolation(op, "contacts.relationships")
    create_jobs(op, "contacts")
    create_outbox(op, "contacts")


def downgrade() -> None:
    for table in ("outbox", "job_queue", "jobs", "relationships", "contacts"):
        op.execute(f"DROP TABLE contacts.{table}")
    op.execute("DROP FUNCTION contacts.outbox_notify()")
    op.execute("DROP FUNCTION contacts.search_text(text[])")
