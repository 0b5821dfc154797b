"""OAuth clients and codes, session details, used refresh tokens, mailed tokens, MFA, throttling.

Revision ID: auth_0003
Revises: auth_0002
"""

from alembic import op

from services.kernel.consumers import create_processed_events
from services.kernel.migrations import enable_tenant_isolation

revision = "auth_0003"
down_revision = "auth_0002"

TENANT_TABLES = ("oauth_clients", "authorization_codes", "session_details", "refresh_tokens_used", "user_tokens",
                 "mfa", "mfa_backup_codes", "mfa_challenges")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE auth.oauth_clients (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES auth.tenants (id) ON DELETE CASCADE,
            name text NOT NULL,
            redirect_uris text[] NOT NULL DEFAULT '{}',
            grant_types text[] NOT NULL,
            permissions text[] NOT NULL,
            confidential boolean NOT NULL,
            secret_hash bytea,
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT ck_oauth_clients_secret CHECK (confidential = (secret_hash IS NOT NULL))
        )"""
    )
    # Which tenant a client_id belongs to: read at the token endpoint before any tenant is
    # known, so no row-level security, and nothing but the mapping.
    op.execute(
        """
        CREATE TABLE auth.oauth_client_index (
            client_id uuid PRIMARY KEY REFERENCES auth.oauth_clients (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL
        )"""
    )
    op.execute(
        """
        CREATE TABLE auth.authorization_codes (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            client_id uuid NOT NULL REFERENCES auth.oauth_clients (id) ON DELETE CASCADE,
            user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
            code_hash bytea NOT NULL,
            redirect_uri text NOT NULL,
            redirect_uri_given boolean NOT NULL,
            code_challenge text NOT NULL,
            scope text[] NOT NULL,
            expires_at timestamptz NOT NULL,
            used_at timestamptz,
            session_id uuid,
            created_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    # What a session was opened with: the OAuth client and scope it was granted to, whether a
    # second factor was checked. A session without a row is a first-party password session.
    op.execute(
        """
        CREATE TABLE auth.session_details (
            session_id uuid PRIMARY KEY REFERENCES auth.sessions (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL,
            client_id uuid,
            scope text[],
            mfa boolean NOT NULL DEFAULT false
        )"""
    )
    op.execute("CREATE INDEX ix_session_details_client ON auth.session_details (tenant_id, client_id)")
    # Hashes of rotated-out refresh tokens: a second use of one is a stolen token (the whole
    # session ends), whereas an unknown secret is a guess (nothing happens).
    op.execute(
        """
        CREATE TABLE auth.refresh_tokens_used (
            session_id uuid NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL,
            token_hash bytea NOT NULL,
            used_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (session_id, token_hash)
        )"""
    )
    # Single-use tokens sent by mail: password reset, email verification, invitation.
    op.execute(
        """
        CREATE TABLE auth.user_tokens (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
            purpose text NOT NULL CHECK (purpose IN ('password_reset', 'email_verify', 'invite')),
            token_hash bytea NOT NULL,
            expires_at timestamptz NOT NULL,
            used_at timestamptz,
            source_event text,
            created_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX ix_user_tokens_user ON auth.user_tokens (tenant_id, user_id, purpose)")
    op.execute(
        """
        CREATE TABLE auth.mfa (
            user_id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL,
            secret_enc bytea,
            pending_secret_enc bytea,
            enabled_at timestamptz,
            last_step bigint NOT NULL DEFAULT 0,
            backup_generated_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    op.execute(
        """
        CREATE TABLE auth.mfa_backup_codes (
            user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL,
            position int NOT NULL,
            code_hash bytea NOT NULL,
            used_at timestamptz,
            PRIMARY KEY (user_id, position)
        )"""
    )
    op.execute(
        """
        CREATE TABLE auth.mfa_challenges (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL,
            user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
            token_hash bytea NOT NULL,
            expires_at timestamptz NOT NULL,
            used_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now()
        )"""
    )
    for table in TENANT_TABLES:
        enable_tenant_isolation(op, f"auth.{table}")
    # Failure counters for throttling (login per account and per address, MFA codes per
    # user). Keyed by a hash, consulted before a tenant is known: no row-level security.
    op.execute(
        """
        CREATE TABLE auth.throttle (
            key bytea PRIMARY KEY,
            failures int NOT NULL DEFAULT 0,
            window_start timestamptz NOT NULL DEFAULT now(),
            blocked_until timestamptz
        )"""
    )
    # Event ids the auth service's durable consumers have handled (invitations).
    create_processed_events(op, "auth")


def downgrade() -> None:
    for table in ("processed_events", "throttle", "mfa_challenges", "mfa_backup_codes", "mfa", "user_tokens", "refresh_tokens_used",
                  "session_details", "authorization_codes", "oauth_client_index", "oauth_clients"):
        op.execute(f"DROP TABLE auth.{table}")
