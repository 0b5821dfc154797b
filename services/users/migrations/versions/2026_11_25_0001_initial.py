"""Profiles, preferences, avatars, teams and the list indexes of auth.users.

The users service shares the `auth` schema with the auth service (identity is one consistency
boundary) and keeps its own history in `auth.alembic_version_users`. It adds tables rather than
columns to the shared auth.users; only indexes and one key go on it.

Revision ID: users_0001
Revises:
"""

from alembic import op

from services.kernel.migrations import enable_tenant_isolation

revision = "users_0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    # unaccent() is only STABLE; pinning the dictionary makes it usable in an index expression.
    op.execute(
        """
        CREATE FUNCTION auth.search_text(VARIADIC parts text[]) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, array_to_string(parts, ' '))) $$"""
    )
    # Composite foreign keys (tenant_id, user_id) need this key: a team member or lead must be
    # a user of the team's own tenant, whatever the code does.
    op.execute("ALTER TABLE auth.users ADD CONSTRAINT uq_users_tenant_id_id UNIQUE (tenant_id, id)")
    for name, columns in (
        ("created", "tenant_id, created_at, id"),
        ("first_name", "tenant_id, first_name, id"),
        ("last_name", "tenant_id, last_name, id"),
        ("active", "tenant_id, active"),
    ):
        op.execute(f"CREATE INDEX ix_users_{name} ON auth.users ({columns})")
    op.execute("CREATE INDEX ix_users_roles ON auth.users USING gin (tenant_id, roles)")
    op.execute(
        "CREATE INDEX ix_users_search ON auth.users "
        "USING gin (auth.search_text(first_name, last_name, email) gin_trgm_ops)"
    )
    # One row per user that has a profile, preferences or was deleted. A deleted user keeps
    # the auth.users row (records in other services still name the id) with personal data erased.
    op.execute(
        """
        CREATE TABLE auth.user_profiles (
            user_id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            title text NOT NULL DEFAULT '',
            department text NOT NULL DEFAULT '',
            phone text NOT NULL DEFAULT '',
            timezone text NOT NULL DEFAULT '',
            locale text NOT NULL DEFAULT '',
            bio text NOT NULL DEFAULT '',
            location text NOT NULL DEFAULT '',
            preferences jsonb NOT NULL DEFAULT '{}',
            preferences_updated_at timestamptz,
            deleted_at timestamptz,
            deleted_by uuid,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT fk_user_profiles_user FOREIGN KEY (tenant_id, user_id)
                REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
        )"""
    )
    op.execute("CREATE INDEX ix_user_profiles_deleted ON auth.user_profiles (tenant_id) WHERE deleted_at IS NOT NULL")
    enable_tenant_isolation(op, "auth.user_profiles")
    op.execute(
        """
        CREATE TABLE auth.user_avatars (
            user_id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            image bytea NOT NULL,
            content_type text NOT NULL,
            etag text NOT NULL,
            width int NOT NULL,
            height int NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT fk_user_avatars_user FOREIGN KEY (tenant_id, user_id)
                REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
        )"""
    )
    enable_tenant_isolation(op, "auth.user_avatars")
    op.execute(
        """
        CREATE TABLE auth.teams (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES auth.tenants (id) ON DELETE CASCADE,
            name text NOT NULL,
            description text NOT NULL DEFAULT '',
            lead_id uuid,
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_teams_tenant_id_id UNIQUE (tenant_id, id),
            CONSTRAINT fk_teams_lead FOREIGN KEY (tenant_id, lead_id)
                REFERENCES auth.users (tenant_id, id) ON DELETE SET NULL (lead_id)
        )"""
    )
    op.execute("CREATE UNIQUE INDEX uq_teams_tenant_name ON auth.teams (tenant_id, lower(name))")
    op.execute("CREATE INDEX ix_teams_created ON auth.teams (tenant_id, created_at, id)")
    op.execute("CREATE INDEX ix_teams_name ON auth.teams (tenant_id, name, id)")
    op.execute("CREATE INDEX ix_teams_lead ON auth.teams (tenant_id, lead_id)")
    op.execute("CREATE INDEX ix_teams_search ON auth.teams USING gin (auth.search_text(name) gin_trgm_ops)")
    enable_tenant_isolation(op, "auth.teams")
    op.execute(
        """
        CREATE TABLE auth.team_members (
            team_id uuid NOT NULL,
            user_id uuid NOT NULL,
            tenant_id uuid NOT NULL,
            added_by uuid,
            added_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_team_members PRIMARY KEY (team_id, user_id),
            -- Composite keys: team and member must belong to the row's own tenant.
            CONSTRAINT fk_team_members_team FOREIGN KEY (tenant_id, team_id)
                REFERENCES auth.teams (tenant_id, id) ON DELETE CASCADE,
            CONSTRAINT fk_team_members_user FOREIGN KEY (tenant_id, user_id)
                REFERENCES auth.users (tenant_id, id) ON DELETE CASCADE
        )"""
    )
    # Serves the list filter `team` (members of a team) and a user's teams.
    op.execute("CREATE INDEX ix_team_members_team ON auth.team_members (tenant_id, team_id, user_id)")
    op.execute("CREATE INDEX ix_team_members_user ON auth.team_members (tenant_id, user_id)")
    enable_tenant_isolation(op, "auth.team_members")


def downgrade() -> None:
    for table in ("team_members", "teams", "user_avatars", "user_profiles"):
        op.execute(f"DROP TABLE auth.{table}")
    for index in ("search", "roles", "active", "last_name", "first_name", "created"):
        op.execute(f"DROP INDEX auth.ix_users_{index}")
    op.execute("ALTER TABLE auth.users DROP CONSTRAINT uq_users_tenant_id_id")
    op.execute("DROP FUNCTION auth.search_text(text[])")
