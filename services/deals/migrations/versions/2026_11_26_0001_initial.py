"""Deals, their stage history, forecast snapshots and the outbox, with an index for every offered
filter and sort and for the board and forecast aggregations.

Revision ID: deals_0001
Revises:
"""

from alembic import op

from services.kernel.migrations import create_outbox, enable_owner_scope, enable_tenant_isolation

revision = "deals_0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    # unaccent() is only STABLE; pinning the dictionary makes it usable in a generated column.
    op.execute(
        """
        CREATE FUNCTION deals.search_text(VARIADIC parts text[]) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, array_to_string(parts, ' '))) $$"""
    )
    op.execute(
        """
        CREATE TABLE deals.deals (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            name text NOT NULL,
            amount numeric(18, 2) NOT NULL DEFAULT 0 CHECK (amount >= 0),
            currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
            pipeline_id uuid NOT NULL,
            stage_id uuid NOT NULL,
            account_id uuid,
            contact_id uuid,
            expected_close_date date,
            status text NOT NULL CHECK (status IN ('open', 'won', 'lost')),
            forecast_category text NOT NULL DEFAULT ''
                CHECK (forecast_category IN ('', 'commit', 'best_case', 'pipeline', 'omitted')),
            lost_reason text NOT NULL DEFAULT '',
            description text NOT NULL DEFAULT '',
            custom_fields jsonb NOT NULL DEFAULT '{}',
            owner_id uuid NOT NULL,
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            stage_entered_at timestamptz NOT NULL DEFAULT now(),
            closed_at timestamptz,
            search_text text GENERATED ALWAYS AS (deals.search_text(name, description)) STORED,
            CONSTRAINT uq_deals_tenant_id_id UNIQUE (tenant_id, id),
            CONSTRAINT ck_deals_closed CHECK ((status = 'open') = (closed_at IS NULL))
        )"""
    )
    enable_tenant_isolation(op, "deals.deals")
    enable_owner_scope(op, "deals.deals")
    for name, columns in (
        ("created", "tenant_id, created_at, id"),
        ("updated", "tenant_id, updated_at, id"),
        ("name", "tenant_id, name, id"),
        ("amount", "tenant_id, amount, id"),
        ("owner", "tenant_id, owner_id"),
        ("account", "tenant_id, account_id"),
        ("contact", "tenant_id, contact_id"),
        ("currency", "tenant_id, currency"),
        ("category", "tenant_id, forecast_category"),
        ("expected_close", "tenant_id, expected_close_date"),
        # Stage filter, idle-deal checks and the stageEnteredAt sort.
        ("stage_entered", "tenant_id, stage_id, stage_entered_at, id"),
        # Closed deals by close time (win/loss, velocity, performance, forecast actuals).
        ("closed", "tenant_id, status, closed_at"),
    ):
        op.execute(f"CREATE INDEX ix_deals_{name} ON deals.deals ({columns})")
    # The board: the newest deals of each stage (top-N per stage) and per-stage totals, both
    # answered from the index (pipeline filter too).
    op.execute("CREATE INDEX ix_deals_board ON deals.deals (tenant_id, pipeline_id, stage_id, updated_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_deals_board_totals ON deals.deals (tenant_id, pipeline_id, stage_id, currency) "
               "INCLUDE (amount)")
    # The forecast: open deals by expected close date, index-only.
    op.execute("CREATE INDEX ix_deals_forecast ON deals.deals (tenant_id, status, expected_close_date) "
               "INCLUDE (currency, stage_id, forecast_category, amount, owner_id, pipeline_id)")
    op.execute("CREATE INDEX ix_deals_search ON deals.deals USING gin (search_text gin_trgm_ops)")

    op.execute(
        """
        CREATE TABLE deals.stage_history (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            deal_id uuid NOT NULL,
            pipeline_id uuid NOT NULL,
            from_pipeline_id uuid,
            from_stage_id uuid,
            from_stage_name text NOT NULL DEFAULT '',
            to_stage_id uuid NOT NULL,
            to_stage_name text NOT NULL DEFAULT '',
            from_status text NOT NULL DEFAULT '',
            to_status text NOT NULL,
            changed_by uuid,
            changed_at timestamptz NOT NULL DEFAULT now(),
            time_in_stage_seconds bigint NOT NULL DEFAULT 0,
            CONSTRAINT fk_stage_history_deal FOREIGN KEY (tenant_id, deal_id)
                REFERENCES deals.deals (tenant_id, id) ON DELETE CASCADE
        )"""
    )
    enable_tenant_isolation(op, "deals.stage_history")
    op.execute("CREATE INDEX ix_stage_history_deal ON deals.stage_history (tenant_id, deal_id, changed_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_stage_history_from ON deals.stage_history (tenant_id, from_stage_id, changed_at)")
    op.execute("CREATE INDEX ix_stage_history_to ON deals.stage_history (tenant_id, to_stage_id)")

    # What the forecast said, one row per day, pipeline, owner, month and currency. Written on
    # the first forecast request of a day; owner-scoped like the deals it sums.
    op.execute(
        """
        CREATE TABLE deals.forecast_snapshots (
            tenant_id uuid NOT NULL,
            taken_on date NOT NULL,
            pipeline_id uuid NOT NULL,
            owner_id uuid NOT NULL,
            period_month date NOT NULL,
            currency text NOT NULL,
            open_deals int NOT NULL,
            pipeline_amount numeric NOT NULL,
            weighted numeric NOT NULL,
            commit_amount numeric NOT NULL,
            best_case_amount numeric NOT NULL,
            won_amount numeric NOT NULL,
            PRIMARY KEY (tenant_id, taken_on, pipeline_id, owner_id, period_month, currency)
        )"""
    )
    enable_tenant_isolation(op, "deals.forecast_snapshots")
    enable_owner_scope(op, "deals.forecast_snapshots")
    op.execute("CREATE INDEX ix_forecast_snapshots_period ON deals.forecast_snapshots (tenant_id, period_month, taken_on)")
    op.execute(
        """
        CREATE TABLE deals.forecast_snapshot_days (
            tenant_id uuid NOT NULL,
            taken_on date NOT NULL,
            PRIMARY KEY (tenant_id, taken_on)
        )"""
    )
    enable_tenant_isolation(op, "deals.forecast_snapshot_days")
    create_outbox(op, "deals")


def downgrade() -> None:
    for table in ("outbox", "forecast_snapshot_days", "forecast_snapshots", "stage_history", "deals"):
        op.execute(f"DROP TABLE deals.{table}")
    op.execute("DROP FUNCTION deals.outbox_notify()")
    op.execute("DROP FUNCTION deals.refuse_out_of_scope_delete()")
    op.execute("DROP FUNCTION deals.search_text(text[])")
