"""Activities, event participants, CalDAV connections and items, jobs, outbox, processed events;
an index for every offered filter and sort; owner scopes on activities.

Revision ID: activities_0001
Revises:
"""

from alembic import op

from services.kernel.consumers import create_processed_events
from services.kernel.migrations import create_jobs, create_outbox, enable_owner_scope, enable_tenant_isolation

revision = "activities_0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    # unaccent() is only STABLE; pinning the dictionary makes it usable in a generated column.
    op.execute(
        """
        CREATE FUNCTION activities.search_text(VARIADIC parts text[]) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, array_to_string(parts, ' '))) $$"""
    )
    # array_to_string is STABLE for arrays in general; for text[] it cannot vary.
    op.execute(
        """
        CREATE FUNCTION activities.join_text(parts text[]) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT array_to_string(parts, ' ') $$"""
    )
    op.execute(
        """
        CREATE TABLE activities.activities (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            type text NOT NULL CHECK (type IN ('task', 'event', 'call', 'email', 'note')),
            subject text NOT NULL DEFAULT '',
            body text NOT NULL DEFAULT '',
            due_at timestamptz,
            start_at timestamptz,
            end_at timestamptz,
            duration_seconds int NOT NULL DEFAULT 0,
            status text NOT NULL,
            priority text NOT NULL DEFAULT 'normal',
            location text NOT NULL DEFAULT '',
            direction text NOT NULL DEFAULT '',
            outcome text NOT NULL DEFAULT '',
            from_address text NOT NULL DEFAULT '',
            to_addresses text[] NOT NULL DEFAULT '{}',
            attendees jsonb NOT NULL DEFAULT '[]',
            contact_id uuid,
            account_id uuid,
            deal_id uuid,
            lead_id uuid,
            owner_id uuid,
            created_by uuid,
            ical_uid text NOT NULL,
            sequence int NOT NULL DEFAULT 0,
            unverified_links text[] NOT NULL DEFAULT '{}',
            completed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            occurred_at timestamptz GENERATED ALWAYS AS (coalesce(start_at, due_at, created_at)) STORED,
            search_text text GENERATED ALWAYS AS (activities.search_text(
                subject, left(body, 2000), location, from_address, activities.join_text(to_addresses))) STORED,
            CONSTRAINT ck_activities_end_after_start CHECK (end_at IS NULL OR end_at > start_at),
            CONSTRAINT uq_activities_tenant_id_id UNIQUE (tenant_id, id)
        )"""
    )
    enable_tenant_isolation(op, "activities.activities")
    enable_owner_scope(op, "activities.activities")
    for name, columns in (
        ("occurred", "tenant_id, occurred_at, id"),
        ("created", "tenant_id, created_at, id"),
        ("updated", "tenant_id, updated_at, id"),
        ("subject", "tenant_id, subject, id"),
        ("due", "tenant_id, due_at, id"),
        ("start", "tenant_id, start_at, id"),
        ("type", "tenant_id, type, occurred_at"),
        ("status", "tenant_id, status"),
        ("priority", "tenant_id, priority"),
        ("owner", "tenant_id, owner_id, occurred_at"),
        ("contact", "tenant_id, contact_id, occurred_at"),
        ("account", "tenant_id, account_id, occurred_at"),
        ("deal", "tenant_id, deal_id, occurred_at"),
        ("lead", "tenant_id, lead_id, occurred_at"),
        ("uid", "tenant_id, ical_uid"),
    ):
        op.execute(f"CREATE INDEX ix_activities_{name} ON activities.activities ({columns})")
    op.execute("CREATE INDEX ix_activities_search ON activities.activities USING gin (search_text gin_trgm_ops)")
    op.execute(
        """
        CREATE TABLE activities.participants (
            tenant_id uuid NOT NULL,
            activity_id uuid NOT NULL,
            user_id uuid NOT NULL,
            PRIMARY KEY (activity_id, user_id),
            CONSTRAINT fk_participants_activity FOREIGN KEY (tenant_id, activity_id)
                REFERENCES activities.activities (tenant_id, id) ON DELETE CASCADE
        )"""
    )
    op.execute("CREATE INDEX ix_participants_user ON activities.participants (tenant_id, user_id)")
    enable_tenant_isolation(op, "activities.participants")
    op.execute(
        """
        CREATE TABLE activities.calendar_connections (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            user_id uuid NOT NULL,
            url text NOT NULL,
            username text NOT NULL DEFAULT '',
            password_encrypted bytea,
            sync_token text NOT NULL DEFAULT '',
            last_synced_at timestamptz,
            last_status text NOT NULL DEFAULT 'never',
            last_error text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_calendar_connections_user UNIQUE (tenant_id, user_id),
            CONSTRAINT uq_calendar_connections_tenant_id_id UNIQUE (tenant_id, id)
        )"""
    )
    enable_tenant_isolation(op, "activities.calendar_connections")
    op.execute(
        """
        CREATE TABLE activities.calendar_items (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            connection_id uuid NOT NULL,
            activity_id uuid,
            uid text NOT NULL,
            href text NOT NULL,
            etag text NOT NULL DEFAULT '',
            local_version timestamptz,
            local_deleted_at timestamptz,
            synced_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT fk_calendar_items_connection FOREIGN KEY (tenant_id, connection_id)
                REFERENCES activities.calendar_connections (tenant_id, id) ON DELETE CASCADE,
            CONSTRAINT uq_calendar_items_href UNIQUE (connection_id, href)
        )"""
    )
    op.execute("CREATE INDEX ix_calendar_items_activity ON activities.calendar_items (tenant_id, activity_id)")
    enable_tenant_isolation(op, "activities.calendar_items")
    # When each connected calendar is next synced in the background: ids only, readable without a
    # tenant (like job_queue) so one scheduler serves every tenant.
    op.execute(
        """
        CREATE TABLE activities.calendar_sync_due (
            connection_id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            user_id uuid NOT NULL,
            next_at timestamptz NOT NULL
        )"""
    )
    op.execute("CREATE INDEX ix_calendar_sync_due_next ON activities.calendar_sync_due (next_at)")
    create_jobs(op, "activities")
    create_outbox(op, "activities")
    create_processed_events(op, "activities")


def downgrade() -> None:
    for table in ("processed_events", "outbox", "job_queue", "jobs", "calendar_sync_due", "calendar_items", "calendar_connections",
                  "participants", "activities"):
        op.execute(f"DROP TABLE activities.{table}")
    op.execute("DROP FUNCTION activities.outbox_notify()")
    op.execute("DROP FUNCTION activities.refuse_out_of_scope_delete()")
    op.execute("DROP FUNCTION activities.search_text(text[])")
    op.execute("DROP FUNCTION activities.join_text(text[])")
