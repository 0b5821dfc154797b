"""Leads, their scoring history, conversions (the saga log), web forms, assignment rules, the
outbox and the consumers' processed events, with an index for every offered filter and sort.

Revision ID: leads_0001
Revises:
"""

from alembic import op

from services.kernel.consumers import create_processed_events
from services.kernel.migrations import create_outbox, enable_owner_scope, enable_tenant_isolation

revision = "leads_0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    # unaccent() is only STABLE; pinning the dictionary makes it usable in a generated column.
    op.execute(
        """
        CREATE FUNCTION leads.search_text(VARIADIC parts text[]) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, array_to_string(parts, ' '))) $$"""
    )
    op.execute(
        """
        CREATE TABLE leads.leads (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            first_name text NOT NULL DEFAULT '',
            last_name text NOT NULL DEFAULT '',
            email text NOT NULL DEFAULT '',
            phone text NOT NULL DEFAULT '',
            company text NOT NULL DEFAULT '',
            title text NOT NULL DEFAULT '',
            website text NOT NULL DEFAULT '',
            source text NOT NULL DEFAULT 'manual',
            status text NOT NULL DEFAULT 'new'
                CHECK (status IN ('new', 'contacted', 'qualified', 'unqualified', 'converting', 'converted')),
            score int NOT NULL DEFAULT 0 CHECK (score BETWEEN 0 AND 100),
            owner_id uuid,
            territory text NOT NULL DEFAULT '',
            country text NOT NULL DEFAULT '',
            description text NOT NULL DEFAULT '',
            tags text[] NOT NULL DEFAULT '{}',
            custom_fields jsonb NOT NULL DEFAULT '{}',
            enrichment jsonb NOT NULL DEFAULT '{}',
            status_reason text NOT NULL DEFAULT '',
            qualified_at timestamptz,
            -- The conversion holding the lead (status converting) or the one that converted it.
            conversion_id uuid,
            converted_contact_id uuid,
            converted_account_id uuid,
            converted_deal_id uuid,
            converted_at timestamptz,
            -- What the lead was captured from; capture_ref (an email's Message-ID, a profile URL)
            -- makes the same capture twice a conflict.
            capture jsonb NOT NULL DEFAULT '{}',
            capture_ref text NOT NULL DEFAULT '',
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            search_text text GENERATED ALWAYS AS
                (leads.search_text(first_name, last_name, email, phone, company)) STORED,
            CONSTRAINT uq_leads_tenant_id_id UNIQUE (tenant_id, id)
        )"""
    )
    enable_tenant_isolation(op, "leads.leads")
    enable_owner_scope(op, "leads.leads")
    for name, columns in (
        ("created", "tenant_id, created_at, id"),
        ("updated", "tenant_id, updated_at, id"),
        ("score", "tenant_id, score, id"),
        ("first_name", "tenant_id, first_name, id"),
        ("last_name", "tenant_id, last_name, id"),
        ("email", "tenant_id, lower(email)"),
        ("company", "tenant_id, lower(company)"),
        ("company_sort", "tenant_id, company, id"),
        ("status", "tenant_id, status, created_at"),
        ("source", "tenant_id, source, created_at"),
        ("owner", "tenant_id, owner_id, status"),
        ("territory", "tenant_id, territory"),
    ):
        op.execute(f"CREATE INDEX ix_leads_{name} ON leads.leads ({columns})")
    op.execute("CREATE INDEX ix_leads_search ON leads.leads USING gin (search_text gin_trgm_ops)")
    op.execute("CREATE UNIQUE INDEX uq_leads_capture_ref ON leads.leads (tenant_id, capture_ref) WHERE capture_ref <> ''")
    op.execute("CREATE INDEX ix_leads_unowned ON leads.leads (tenant_id, created_at) WHERE owner_id IS NULL")

    op.execute(
        """
        CREATE TABLE leads.score_history (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            lead_id uuid NOT NULL,
            previous_score int NOT NULL,
            score int NOT NULL,
            reason text NOT NULL DEFAULT '',
            source text NOT NULL DEFAULT 'manual',
            changed_by uuid,
            changed_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT fk_score_history_lead FOREIGN KEY (tenant_id, lead_id)
                REFERENCES leads.leads (tenant_id, id) ON DELETE CASCADE
        )"""
    )
    op.execute("CREATE INDEX ix_score_history_lead ON leads.score_history (tenant_id, lead_id, changed_at, id)")
    enable_tenant_isolation(op, "leads.score_history")

    # The saga log of conversions: which records each step made, so that a failure, or a crash
    # found later by the recovery pass, can undo exactly those.
    op.execute(
        """
        CREATE TABLE leads.conversions (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            lead_id uuid NOT NULL,
            state text NOT NULL DEFAULT 'running'
                CHECK (state IN ('running', 'completed', 'compensating', 'compensated')),
            previous_status text NOT NULL,
            options jsonb NOT NULL DEFAULT '{}',
            contact_id uuid,
            contact_undone boolean NOT NULL DEFAULT false,
            account_id uuid,
            account_created boolean NOT NULL DEFAULT false,
            account_undone boolean NOT NULL DEFAULT false,
            deal_id uuid,
            deal_undone boolean NOT NULL DEFAULT false,
            failure jsonb,
            started_by uuid,
            started_at timestamptz NOT NULL DEFAULT now(),
            lease_until timestamptz,
            finished_at timestamptz
        )"""
    )
    op.execute("CREATE INDEX ix_conversions_lead ON leads.conversions (tenant_id, lead_id, started_at)")
    enable_tenant_isolation(op, "leads.conversions")
    # Unfinished conversions, readable without a tenant so the recovery pass finds them all.
    op.execute(
        """
        CREATE TABLE leads.conversion_queue (
            conversion_id uuid PRIMARY KEY REFERENCES leads.conversions (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX ix_conversion_queue_started ON leads.conversion_queue (started_at)")

    op.execute(
        """
        CREATE TABLE leads.forms (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            name text NOT NULL,
            key text NOT NULL UNIQUE,
            source text NOT NULL DEFAULT 'web-form',
            owner_id uuid,
            honeypot_field text NOT NULL DEFAULT '_gotcha',
            rate_limit_per_minute int NOT NULL DEFAULT 10 CHECK (rate_limit_per_minute BETWEEN 1 AND 1000),
            active boolean NOT NULL DEFAULT true,
            submission_count int NOT NULL DEFAULT 0,
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX ix_forms_tenant ON leads.forms (tenant_id, created_at, id)")
    enable_tenant_isolation(op, "leads.forms")
    # Form key -> tenant, without row-level security: an unauthenticated capture learns its
    # tenant here (like auth.login_index), then works inside that tenant only.
    op.execute(
        """
        CREATE TABLE leads.form_index (
            key text PRIMARY KEY,
            tenant_id uuid NOT NULL,
            form_id uuid NOT NULL REFERENCES leads.forms (id) ON DELETE CASCADE
        )"""
    )
    # Per-form, per-client-address submission counts in one-minute windows (shared by replicas).
    op.execute(
        """
        CREATE TABLE leads.form_hits (
            tenant_id uuid NOT NULL,
            form_id uuid NOT NULL REFERENCES leads.forms (id) ON DELETE CASCADE,
            client text NOT NULL,
            window_start timestamptz NOT NULL,
            hits int NOT NULL DEFAULT 0,
            PRIMARY KEY (form_id, client, window_start)
        )"""
    )
    op.execute("CREATE INDEX ix_form_hits_window ON leads.form_hits (window_start)")
    enable_tenant_isolation(op, "leads.form_hits")

    op.execute(
        """
        CREATE TABLE leads.assignment_rules (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            name text NOT NULL,
            priority int NOT NULL DEFAULT 100,
            active boolean NOT NULL DEFAULT true,
            sources text[] NOT NULL DEFAULT '{}',
            territories text[] NOT NULL DEFAULT '{}',
            countries text[] NOT NULL DEFAULT '{}',
            team_id uuid,
            user_ids uuid[] NOT NULL DEFAULT '{}',
            max_open_leads int NOT NULL DEFAULT 0 CHECK (max_open_leads >= 0),
            -- Round robin position: the last assignee chosen.
            last_assignee uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX ix_assignment_rules_order ON leads.assignment_rules (tenant_id, priority, created_at, id)")
    enable_tenant_isolation(op, "leads.assignment_rules")
    create_outbox(op, "leads")
    create_processed_events(op, "leads")


def downgrade() -> None:
    for table in ("processed_events", "outbox", "assignment_rules", "form_hits", "form_index", "forms",
                  "conversion_queue", "conversions", "score_history", "leads"):
        op.execute(f"DROP TABLE leads.{table}")
    op.execute("DROP FUNCTION leads.outbox_notify()")
    op.execute("DROP FUNCTION leads.refuse_out_of_scope_delete()")
    op.execute("DROP FUNCTION leads.search_text(text[])")
