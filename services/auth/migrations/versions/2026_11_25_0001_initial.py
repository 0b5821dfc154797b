"""Tenants, users, the login index, sessions and the outbox.

Revision ID: auth_0001
Revises:
"""

from alembic import op

from services.kernel.migrations import create_outbox, enable_tenant_isolation

revision = "auth_0001"
down_revision = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE auth.tenants (
            id uuid PRIMARY KEY,
            name text NOT NULL,
            plan text NOT NULL DEFAULT 'standard',
            status text NOT NULL DEFAULT 'active',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    # A tenant row is its own tenant: visible only inside that tenant's transactions.
    op.execute("ALTER TABLE auth.tenants ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE auth.tenants FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON auth.tenants "
        "USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid) "
        "WITH CHECK (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
    )
    op.execute(
        """
        CREATE TABLE auth.users (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES auth.tenants (id) ON DELETE CASCADE,
            email text NOT NULL,
            password_hash text,
            first_name text NOT NULL DEFAULT '',
            last_name text NOT NULL DEFAULT '',
            roles text[] NOT NULL DEFAULT '{}',
            active boolean NOT NULL DEFAULT true,
            email_verified boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_users_tenant_email UNIQUE (tenant_id, email)
        )"""
    )
    enable_tenant_isolation(op, "auth.users")
    # Which tenants an address can sign in to. Read before any tenant is known, so it carries
    # no row-level security and holds nothing but the mapping.
    op.execute(
        """
        CREATE TABLE auth.login_index (
            email text NOT NULL,
            tenant_id uuid NOT NULL,
            user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
            PRIMARY KEY (email, tenant_id)
        )"""
    )
    op.execute(
        """
        CREATE TABLE auth.sessions (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
            refresh_hash bytea NOT NULL,
            generation int NOT NULL DEFAULT 1,
            user_agent text NOT NULL DEFAULT '',
            client_ip text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz
        )"""
    )
    op.execute("CREATE INDEX ix_sessions_tenant_user ON auth.sessions (tenant_id, user_id)")
    enable_tenant_isolation(op, "auth.sessions")
    create_outbox(op, "auth")


def downgrade() -> None:
    for table in ("outbox", "sessions", "login_index", "users", "tenants"):
        op.execute(f"DROP TABLE auth.{table}")
    op.execute("DROP FUNCTION auth.outbox_notify()")
