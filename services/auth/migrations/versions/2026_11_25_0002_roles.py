"""Custom roles: a tenant's own named sets of permissions (built-in roles live in code).

Revision ID: auth_0002
Revises: auth_0001
"""

from alembic import op

from services.kernel.migrations import enable_tenant_isolation

revision = "auth_0002"
down_revision = "auth_0001"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE auth.roles (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES auth.tenants (id) ON DELETE CASCADE,
            key text NOT NULL,
            name text NOT NULL,
            description text NOT NULL DEFAULT '',
            permissions text[] NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_roles_tenant_key UNIQUE (tenant_id, key)
        )"""
    )
    enable_tenant_isolation(op, "auth.roles")


def downgrade() -> None:
    op.execute("DROP TABLE auth.roles")
