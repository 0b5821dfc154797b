"""Accounts, territories, merges, jobs and the outbox, with an index for every offered filter and sort.

Revision ID: accounts_0001
Revises:
"""

from alembic import op

from services.kernel.migrations import create_jobs, create_outbox, enable_owner_scope, enable_tenant_isolation

revision = "accounts_0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    # unaccent() is only STABLE (its dictionary could change); pinning the dictionary makes it
    # safe to use in a generated column.
    op.execute(
        """
        CREATE FUNCTION accounts.search_text(VARIADIC parts text[]) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, array_to_string(parts, ' '))) $$"""
    )
    op.execute(
        """
        CREATE TABLE accounts.territories (
            tenant_id uuid NOT NULL,
            key text NOT NULL,
            name text NOT NULL,
            description text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            search_text text GENERATED ALWAYS AS (accounts.search_text(key, name)) STORED,
            CONSTRAINT pk_territories PRIMARY KEY (tenant_id, key)
        )"""
    )
    enable_tenant_isolation(op, "accounts.territories")
    op.execute("CREATE INDEX ix_territories_name ON accounts.territories (tenant_id, name, key)")
    op.execute("CREATE INDEX ix_territories_created ON accounts.territories (tenant_id, created_at, key)")
    op.execute("CREATE INDEX ix_territories_search ON accounts.territories USING gin (search_text gin_trgm_ops)")
    op.execute(
        """
        CREATE TABLE accounts.accounts (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            name text NOT NULL,
            domain text NOT NULL DEFAULT '',
            industry text NOT NULL DEFAULT '',
            parent_id uuid,
            territory text,
            owner_id uuid,
            website text NOT NULL DEFAULT '',
            phone text NOT NULL DEFAULT '',
            description text NOT NULL DEFAULT '',
            employee_count integer NOT NULL DEFAULT 0,
            annual_revenue numeric(18, 2),
            currency text NOT NULL DEFAULT '',
            tags text[] NOT NULL DEFAULT '{}',
            address jsonb NOT NULL DEFAULT '{}',
            custom_fields jsonb NOT NULL DEFAULT '{}',
            merged_into uuid,
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            search_text text GENERATED ALWAYS AS
                (accounts.search_text(name, domain, industry, website)) STORED,
            CONSTRAINT uq_accounts_tenant_id_id UNIQUE (tenant_id, id),
            -- Composite keys: a parent and a territory are always the account's own tenant's.
            -- No cascade: the service detaches children itself, with an event for each.
            CONSTRAINT fk_accounts_parent FOREIGN KEY (tenant_id, parent_id)
                REFERENCES accounts.accounts (tenant_id, id),
            CONSTRAINT fk_accounts_territory FOREIGN KEY (tenant_id, territory)
                REFERENCES accounts.territories (tenant_id, key),
            CONSTRAINT ck_accounts_not_own_parent CHECK (parent_id <> id),
            CONSTRAINT ck_accounts_employees CHECK (employee_count >= 0),
            CONSTRAINT ck_accounts_revenue CHECK (annual_revenue >= 0)
        )"""
    )
    enable_tenant_isolation(op, "accounts.accounts")
    enable_owner_scope(op, "accounts.accounts")
    for name, columns in (
        ("created", "tenant_id, created_at, id"),
        ("updated", "tenant_id, updated_at, id"),
        ("name", "tenant_id, name, id"),
        ("name_ci", "tenant_id, lower(name)"),
        ("domain", "tenant_id, domain, id"),
        ("domain_ci", "tenant_id, lower(domain)"),
        ("industry", "tenant_id, lower(industry)"),
        ("territory", "tenant_id, territory"),
        ("parent", "tenant_id, parent_id"),
        ("owner", "tenant_id, owner_id"),
    ):
        op.execute(f"CREATE INDEX ix_accounts_{name} ON accounts.accounts ({columns})")
    op.execute("CREATE INDEX ix_accounts_tags ON accounts.accounts USING gin (tenant_id, tags)")
    op.execute("CREATE INDEX ix_accounts_search ON accounts.accounts USING gin (search_text gin_trgm_ops)")
    op.execute(
        "CREATE INDEX ix_accounts_merged_into ON accounts.accounts (tenant_id, merged_into) WHERE merged_into IS NOT NULL"
    )
    create_jobs(op, "accounts")
    op.execute(
        """
        CREATE TABLE accounts.merges (
            job_id uuid PRIMARY KEY REFERENCES accounts.jobs (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL,
            target_id uuid NOT NULL,
            source_ids uuid[] NOT NULL,
            steps jsonb NOT NULL DEFAULT '[]',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    enable_tenant_isolation(op, "accounts.merges")
    create_outbox(op, "accounts")


def downgrade() -> None:
    for table in ("outbox", "merges", "job_queue", "jobs", "accounts", "territories"):
        op.execute(f"DROP TABLE accounts.{table}")
    op.execute("DROP FUNCTION accounts.refuse_out_of_scope_delete()")
    op.execute("DROP FUNCTION accounts.outbox_notify()")
    op.execute("DROP FUNCTION accounts.search_text(text[])")
