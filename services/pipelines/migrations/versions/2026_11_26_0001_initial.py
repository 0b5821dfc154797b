"""Pipelines, stages, automation rules and their runs, the outbox and consumed events.

Revision ID: pipelines_0001
Revises:
"""

from alembic import op

from services.kernel.consumers import create_processed_events
from services.kernel.migrations import create_outbox, enable_tenant_isolation

revision = "pipelines_0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        """
        CREATE TABLE pipelines.pipelines (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            name text NOT NULL,
            description text NOT NULL DEFAULT '',
            is_default boolean NOT NULL DEFAULT false,
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            search_text text GENERATED ALWAYS AS (lower(name)) STORED,
            CONSTRAINT uq_pipelines_tenant_id_id UNIQUE (tenant_id, id)
        )"""
    )
    enable_tenant_isolation(op, "pipelines.pipelines")
    op.execute("CREATE UNIQUE INDEX uq_pipelines_name ON pipelines.pipelines (tenant_id, lower(name))")
    # At most one default per tenant; the domain keeps it at exactly one while pipelines exist.
    op.execute("CREATE UNIQUE INDEX uq_pipelines_default ON pipelines.pipelines (tenant_id) WHERE is_default")
    for name, columns in (("created", "tenant_id, created_at, id"), ("updated", "tenant_id, updated_at, id"),
                          ("name_sort", "tenant_id, name, id")):
        op.execute(f"CREATE INDEX ix_pipelines_{name} ON pipelines.pipelines ({columns})")
    op.execute("CREATE INDEX ix_pipelines_search ON pipelines.pipelines USING gin (search_text gin_trgm_ops)")

    # A stage being deleted is archived first (so no deal can enter it while its deals move
    # away) with a negative position, which keeps the active positions 0..n-1 free.
    op.execute(
        """
        CREATE TABLE pipelines.stages (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            pipeline_id uuid NOT NULL,
            name text NOT NULL,
            probability int NOT NULL CHECK (probability BETWEEN 0 AND 100),
            kind text NOT NULL CHECK (kind IN ('open', 'won', 'lost')),
            position int NOT NULL,
            archived_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT fk_stages_pipeline FOREIGN KEY (tenant_id, pipeline_id)
                REFERENCES pipelines.pipelines (tenant_id, id) ON DELETE CASCADE,
            CONSTRAINT uq_stages_position UNIQUE (pipeline_id, position) DEFERRABLE INITIALLY DEFERRED
        )"""
    )
    enable_tenant_isolation(op, "pipelines.stages")
    op.execute("CREATE INDEX ix_stages_pipeline ON pipelines.stages (tenant_id, pipeline_id, position)")
    op.execute(
        "CREATE UNIQUE INDEX uq_stages_name ON pipelines.stages (pipeline_id, lower(name)) WHERE archived_at IS NULL"
    )

    op.execute(
        """
        CREATE TABLE pipelines.automation_rules (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            pipeline_id uuid NOT NULL,
            name text NOT NULL,
            enabled boolean NOT NULL DEFAULT true,
            trigger jsonb NOT NULL,
            actions jsonb NOT NULL,
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_automation_rules_tenant_id_id UNIQUE (tenant_id, id),
            CONSTRAINT fk_automation_rules_pipeline FOREIGN KEY (tenant_id, pipeline_id)
                REFERENCES pipelines.pipelines (tenant_id, id) ON DELETE CASCADE
        )"""
    )
    enable_tenant_isolation(op, "pipelines.automation_rules")
    op.execute("CREATE INDEX ix_automation_rules_pipeline ON pipelines.automation_rules (tenant_id, pipeline_id, created_at, id)")

    # One row per (trigger occurrence, rule): the unique key is what makes automation run once
    # per event however often JetStream delivers it, and once per stay in a stage for idle rules.
    op.execute(
        """
        CREATE TABLE pipelines.automation_runs (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            rule_id uuid NOT NULL,
            deal_id uuid NOT NULL,
            event_id text NOT NULL DEFAULT '',
            dedupe_key text NOT NULL,
            trigger_data jsonb NOT NULL DEFAULT '{}',
            status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
            outcomes jsonb NOT NULL DEFAULT '[]',
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            CONSTRAINT fk_automation_runs_rule FOREIGN KEY (tenant_id, rule_id)
                REFERENCES pipelines.automation_rules (tenant_id, id) ON DELETE CASCADE,
            CONSTRAINT uq_automation_runs_dedupe UNIQUE (tenant_id, dedupe_key)
        )"""
    )
    enable_tenant_isolation(op, "pipelines.automation_runs")
    op.execute("CREATE INDEX ix_automation_runs_rule ON pipelines.automation_runs (tenant_id, rule_id, started_at DESC)")

    # Cross-tenant work lists read by the background loops (ids only, like the kernel's
    # job_queue): idle rules to check, and runs whose actions have not finished.
    op.execute(
        """
        CREATE TABLE pipelines.idle_rules (
            rule_id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            stage_id uuid NOT NULL,
            idle_hours int NOT NULL,
            -- Deals that entered the stage before this were already looked at.
            checked_until timestamptz
        )"""
    )
    op.execute(
        """
        CREATE TABLE pipelines.run_queue (
            run_id uuid PRIMARY KEY REFERENCES pipelines.automation_runs (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL,
            claimed_until timestamptz NOT NULL
        )"""
    )
    op.execute("CREATE INDEX ix_run_queue_claimed ON pipelines.run_queue (claimed_until)")

    # Whether the tenant's default pipeline was made (so deleting it does not bring it back).
    op.execute(
        """
        CREATE TABLE pipelines.tenant_setup (
            tenant_id uuid PRIMARY KEY,
            default_created_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    enable_tenant_isolation(op, "pipelines.tenant_setup")
    create_processed_events(op, "pipelines")
    create_outbox(op, "pipelines")


def downgrade() -> None:
    for table in ("outbox", "processed_events", "tenant_setup", "run_queue", "idle_rules", "automation_runs",
                  "automation_rules", "stages", "pipelines"):
        op.execute(f"DROP TABLE pipelines.{table}")
    op.execute("DROP FUNCTION pipelines.outbox_notify()")
