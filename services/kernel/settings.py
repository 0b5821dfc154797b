"""Process settings, read once from the environment and validated at start.

Unsafe combinations are refused outside development, so a deployment cannot run by accident
with a superuser database role or without token verification keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from services.kernel.errors import ConfigurationError

ENVIRONMENTS = ("development", "test", "production")


@dataclass(frozen=True)
class Settings:
    """Everything a service process needs to know about its surroundings."""

    environment: str
    # Runtime role: subject to row-level security (never a superuser or BYPASSRLS role).
    database_url: str
    # Role that owns the schemas and runs migrations; the runtime URL when not given.
    migration_database_url: str
    nats_url: str
    grpc_listen: str
    # Services this process hosts (package names under services/); all when empty.
    services: tuple[str, ...]
    # Where other services are reached: "crm.contacts.v1.ContactsService" -> "host:port".
    service_addresses: dict[str, str] = field(default_factory=dict)
    jwks_file: Path | None = None
    auth_signing_key_file: Path | None = None
    token_issuer: str = "crm-auth"
    token_audience: str = "crm-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    db_pool_size: int = 10
    # How often each process publishes its API call counts (tenants' usage statistics).
    usage_flush_seconds: float = 5.0
    # On SIGTERM: how long in-flight rpcs may take before they are cut (services/main.py).
    shutdown_grace_seconds: float = 10.0
    otel_exporter: str = ""
    log_level: str = "INFO"
    # Outgoing mail (services.kernel.mailer): smtp://[user:password@]host[:port][?starttls=required]
    # or smtps:// (implicit TLS); empty means mail cannot be sent.
    smtp_url: str = ""
    mail_from: str = "CRM <no-reply@localhost>"
    # Where people reach the product; links in mails point here.
    public_url: str = "http://127.0.0.1:8080"
    # 32 random bytes that encrypt the auth service's secrets at rest (TOTP seeds) and pepper
    # the hashes of low-entropy codes (MFA backup codes).
    auth_data_key_file: Path | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        environment = e.get("CRM_ENV", "development")
        if environment not in ENVIRONMENTS:
            raise ConfigurationError(f"CRM_ENV must be one of {ENVIRONMENTS}, not {environment!r}")
        database_url = e.get("CRM_DATABASE_URL", "")
        if not database_url:
            raise ConfigurationError("CRM_DATABASE_URL is required")
        addresses: dict[str, str] = {}
        for item in filter(None, e.get("CRM_SERVICE_ADDRESSES", "").split(",")):
            name, _, address = item.partition("=")
            addresses[name.strip()] = address.strip()
        settings = cls(
            environment=environment,
            database_url=database_url,
            migration_database_url=e.get("CRM_MIGRATION_DATABASE_URL") or database_url,
            nats_url=e.get("CRM_NATS_URL", "nats://127.0.0.1:4222"),
            grpc_listen=e.get("CRM_GRPC_LISTEN", "127.0.0.1:50051"),
            services=tuple(s for s in e.get("CRM_SERVICES", "").split(",") if s),
            service_addresses=addresses,
            jwks_file=Path(e["CRM_JWKS_FILE"]) if e.get("CRM_JWKS_FILE") else None,
            auth_signing_key_file=(
                Path(e["CRM_AUTH_SIGNING_KEY_FILE"]) if e.get("CRM_AUTH_SIGNING_KEY_FILE") else None
            ),
            access_token_ttl_seconds=int(e.get("CRM_ACCESS_TOKEN_TTL", "900")),
            refresh_token_ttl_seconds=int(e.get("CRM_REFRESH_TOKEN_TTL", str(30 * 24 * 3600))),
            db_pool_size=int(e.get("CRM_DB_POOL_SIZE", "10")),
            usage_flush_seconds=float(e.get("CRM_USAGE_FLUSH_SECONDS", "5")),
            shutdown_grace_seconds=float(e.get("CRM_SHUTDOWN_GRACE_SECONDS", "10")),
            otel_exporter=e.get("CRM_OTEL_EXPORTER", ""),
            log_level=e.get("CRM_LOG_LEVEL", "INFO"),
            smtp_url=e.get("CRM_SMTP_URL", ""),
            mail_from=e.get("CRM_MAIL_FROM", "CRM <no-reply@localhost>"),
            public_url=e.get("CRM_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/"),
            auth_data_key_file=Path(e["CRM_AUTH_DATA_KEY_FILE"]) if e.get("CRM_AUTH_DATA_KEY_FILE") else None,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.jwks_file is None and self.auth_signing_key_file is None:
            raise ConfigurationError("CRM_JWKS_FILE (or CRM_AUTH_SIGNING_KEY_FILE) is required")
        if not 60 <= self.access_token_ttl_seconds <= 3600:
            raise ConfigurationError("CRM_ACCESS_TOKEN_TTL must be between 60 and 3600 seconds")
        if self.environment == "production" and self.database_url.startswith("postgresql://postgres@"):
            raise ConfigurationError("refusing to run production as the postgres superuser")
        scheme = urlsplit(self.smtp_url).scheme if self.smtp_url else ""
        if scheme not in ("", "smtp", "smtps"):
            raise ConfigurationError(f"CRM_SMTP_URL must be smtp:// or smtps://, not {scheme}://")
        if urlsplit(self.public_url).scheme not in ("http", "https"):
            raise ConfigurationError("CRM_PUBLIC_URL must be an http(s) URL")
        if self.environment == "production" and not self.public_url.startswith("https://"):
            raise ConfigurationError("CRM_PUBLIC_URL must use https in production (mailed links carry tokens)")

    def address_of(self, service_full_name: str, default: str) -> str:
        """Where to reach another service; the local server when it is hosted here."""
        return self.service_addresses.get(service_full_name, default)
