"""Tenant settings, billing, plan changes, invoices, usage counters; the operators' read path.

Revision ID: tenants_0001
Revises:
"""

from alembic import op

from services.kernel.migrations import enable_tenant_isolation

revision = "tenants_0001"
down_revision = None

# Operators list tenants across the installation. The only way past the per-tenant policy is
# this read-only one, admitting rows while `app.platform` is on; services/kernel/db.py turns it
# on (transaction-local) only for a caller holding a `platform:` permission, and only when the
# code asks for it with `db.transaction(platform=True)`. Policies are permissive: a row is
# visible when either admits it.
PLATFORM_READ = "current_setting('app.platform', true) = 'on'"


def upgrade() -> None:
    op.execute(f"CREATE POLICY platform_read ON auth.tenants FOR SELECT USING ({PLATFORM_READ})")
    op.execute(
        """
        CREATE TABLE auth.tenant_settings (
            tenant_id uuid PRIMARY KEY REFERENCES auth.tenants (id) ON DELETE CASCADE,
            config jsonb NOT NULL DEFAULT '{}',
            features jsonb NOT NULL DEFAULT '{}',
            limits jsonb NOT NULL DEFAULT '{}',
            status_reason text NOT NULL DEFAULT '',
            suspended_at timestamptz,
            deleted_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT ck_tenant_settings_config_size CHECK (pg_column_size(config) <= 16384)
        )"""
    )
    enable_tenant_isolation(op, "auth.tenant_settings")
    op.execute(f"CREATE POLICY platform_read ON auth.tenant_settings FOR SELECT USING ({PLATFORM_READ})")
    op.execute(
        """
        CREATE TABLE auth.tenant_billing (
            tenant_id uuid PRIMARY KEY REFERENCES auth.tenants (id) ON DELETE CASCADE,
            company_name text NOT NULL,
            address jsonb NOT NULL,
            tax_id text NOT NULL DEFAULT '',
            billing_email text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    enable_tenant_isolation(op, "auth.tenant_billing")
    # Every plan change, with the seats and prorated amount fixed at the moment it took effect.
    op.execute(
        """
        CREATE TABLE auth.plan_changes (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES auth.tenants (id) ON DELETE CASCADE,
            from_plan text NOT NULL,
            to_plan text NOT NULL,
            seats int NOT NULL,
            effective_at timestamptz NOT NULL,
            period_start timestamptz NOT NULL,
            unit_price numeric(12, 2) NOT NULL,
            amount numeric(14, 2) NOT NULL,
            changed_by uuid
        )"""
    )
    op.execute("CREATE INDEX ix_plan_changes_tenant_period ON auth.plan_changes (tenant_id, period_start)")
    enable_tenant_isolation(op, "auth.plan_changes")
    # Issued invoices: one per tenant and period, written once (the unique key makes issuing idempotent).
    op.execute(
        """
        CREATE TABLE auth.invoices (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES auth.tenants (id) ON DELETE CASCADE,
            number text NOT NULL,
            period_start timestamptz NOT NULL,
            period_end timestamptz NOT NULL,
            currency text NOT NULL,
            lines jsonb NOT NULL,
            subtotal numeric(14, 2) NOT NULL,
            tax numeric(14, 2) NOT NULL,
            total numeric(14, 2) NOT NULL,
            bill_to text NOT NULL DEFAULT '',
            issued_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_invoices_tenant_id_period_start UNIQUE (tenant_id, period_start)
        )"""
    )
    enable_tenant_isolation(op, "auth.invoices")
    # The highest number of active users seen in a period: what the period's seats are billed on.
    op.execute(
        """
        CREATE TABLE auth.seat_peaks (
            tenant_id uuid NOT NULL,
            period_start timestamptz NOT NULL,
            seats int NOT NULL,
            PRIMARY KEY (tenant_id, period_start)
        )"""
    )
    enable_tenant_isolation(op, "auth.seat_peaks")
    # Usage counted from other services' events (records by type, stored bytes). No foreign key:
    # an event may name a tenant this store does not hold, and must still be consumed.
    op.execute(
        """
        CREATE TABLE auth.usage_counts (
            tenant_id uuid NOT NULL,
            metric text NOT NULL,
            value bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant_id, metric)
        )"""
    )
    enable_tenant_isolation(op, "auth.usage_counts")
    op.execute(
        """
        CREATE TABLE auth.api_calls (
            tenant_id uuid NOT NULL,
            day date NOT NULL,
            calls bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant_id, day)
        )"""
    )
    enable_tenant_isolation(op, "auth.api_calls")


def downgrade() -> None:
    for table in ("api_calls", "usage_counts", "seat_peaks", "invoices", "plan_changes",
                  "tenant_billing", "tenant_settings"):
        op.execute(f"DROP TABLE auth.{table}")
    op.execute("DROP POLICY platform_read ON auth.tenants")
