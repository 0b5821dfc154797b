"""The audit trail: append-only entries chained by hash per tenant, chain heads, retention
policies, export files, jobs, processed events and the outbox.

Revision ID: audit_0001
Revises:
"""

from alembic import op

from services.kernel.consumers import create_processed_events
from services.kernel.migrations import create_jobs, create_outbox, enable_tenant_isolation

revision = "audit_0001"
down_revision = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit.entries (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            seq bigint NOT NULL,
            event_id text NOT NULL,
            occurred_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            actor_id text NOT NULL DEFAULT '',
            actor_type text NOT NULL DEFAULT 'user',
            action text NOT NULL,
            entity_type text NOT NULL,
            entity_id text NOT NULL DEFAULT '',
            category text NOT NULL CHECK (category IN ('security', 'data', 'access', 'admin')),
            event_type text NOT NULL,
            source text NOT NULL DEFAULT '',
            changes jsonb NOT NULL DEFAULT '[]',
            related jsonb NOT NULL DEFAULT '[]',
            request_id text NOT NULL DEFAULT '',
            client_ip text NOT NULL DEFAULT '',
            user_agent text NOT NULL DEFAULT '',
            metadata jsonb NOT NULL DEFAULT '{}',
            prev_hash text NOT NULL,
            hash text NOT NULL,
            search_text text GENERATED ALWAYS AS (lower(action || ' ' || entity_type || ' ' || event_type)) STORED,
            CONSTRAINT uq_entries_tenant_seq UNIQUE (tenant_id, seq),
            CONSTRAINT uq_entries_tenant_event UNIQUE (tenant_id, event_id)
        )"""
    )
    enable_tenant_isolation(op, "audit.entries")
    for name, cols in (
        ("occurred", "tenant_id, occurred_at DESC, seq DESC"),
        ("actor", "tenant_id, actor_id, occurred_at DESC"),
        ("entity", "tenant_id, entity_type, entity_id, occurred_at"),
        ("action", "tenant_id, action, occurred_at DESC"),
        ("category", "tenant_id, category, occurred_at DESC"),
        ("event_type", "tenant_id, event_type, occurred_at DESC"),
    ):
        op.execute(f"CREATE INDEX ix_entries_{name} ON audit.entries ({cols})")
    op.execute("CREATE INDEX ix_entries_related ON audit.entries USING gin (related jsonb_path_ops)")
    op.execute("CREATE INDEX ix_entries_search ON audit.entries USING gin (search_text gin_trgm_ops)")
    # Append-only for the application: no update ever, deletes only inside a retention purge.
    op.execute(
        """
        CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND current_setting('app.audit_purge', true) = 'on' THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'audit entries are append-only' USING ERRCODE = 'insufficient_privilege';
        END $$"""
    )
    op.execute(
        "CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON audit.entries "
        "FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()"
    )
    op.execute("CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON audit.entries "
               "FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()")
    # The last link of each tenant's chain; `anchor_*` is where verification starts after a purge.
    op.execute(
        """
        CREATE TABLE audit.chain_heads (
            tenant_id uuid PRIMARY KEY,
            seq bigint NOT NULL,
            hash text NOT NULL,
            anchor_seq bigint NOT NULL DEFAULT 0,
            anchor_hash text NOT NULL DEFAULT ''
        )"""
    )
    enable_tenant_isolation(op, "audit.chain_heads")
    # What a purge leaves of an entry: its place and hash, so the chain stays verifiable.
    op.execute(
        """
        CREATE TABLE audit.tombstones (
            tenant_id uuid NOT NULL,
            seq bigint NOT NULL,
            hash text NOT NULL,
            category text NOT NULL,
            purged_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, seq)
        )"""
    )
    enable_tenant_isolation(op, "audit.tombstones")
    op.execute(
        """
        CREATE TABLE audit.retention_policies (
            tenant_id uuid NOT NULL,
            category text NOT NULL,
            retention_days int NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, category)
        )"""
    )
    enable_tenant_isolation(op, "audit.retention_policies")
    op.execute(
        """
        CREATE TABLE audit.export_files (
            job_id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            content_type text NOT NULL,
            data bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    enable_tenant_isolation(op, "audit.export_files")
    create_jobs(op, "audit")
    create_processed_events(op, "audit")
    create_outbox(op, "audit")


def downgrade() -> None:
    for table in ("outbox", "processed_events", "job_queue", "jobs", "export_files", "retention_policies", "tombstones",
                  "chain_heads", "entries"):
        op.execute(f"DROP TABLE audit.{table}")
    op.execute("DROP FUNCTION audit.refuse_change()")
    op.execute("DROP FUNCTION audit.outbox_notify()")
