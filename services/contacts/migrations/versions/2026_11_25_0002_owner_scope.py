"""Record scopes: roles holding only `contacts:<action>:own` or `:team` reach only those owners' contacts.

Revision ID: contacts_0002
Revises: contacts_0001
"""

from alembic import op

from services.kernel.migrations import enable_owner_scope

revision = "contacts_0002"
down_revision = "contacts_0001"


def upgrade() -> None:
    enable_owner_scope(op, "contacts.contacts")


def downgrade() -> None:
    op.execute("DROP TRIGGER contacts_owner_scope ON contacts.contacts")
    op.execute("DROP FUNCTION contacts.refuse_out_of_scope_delete()")
    for name in ("owner_read", "owner_insert", "owner_update", "owner_delete"):
        op.execute(f"DROP POLICY {name} ON contacts.contacts")
